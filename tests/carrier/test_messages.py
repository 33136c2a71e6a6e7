"""SMS through the real twilio SDK: outcomes, signed callbacks in Twilio's order, errors, faults."""

from __future__ import annotations

import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from carrier import SimulatorHandle

from .conftest import ACCOUNT_SID, SENDER, Webhooks


@pytest.mark.parametrize(
    ("to", "statuses", "error_code"),
    [
        ("+12025550101", ["queued", "sent", "delivered"], None),
        ("+12025550165", ["queued", "sent", "delivered"], None),
        ("+12025550191", ["queued", "sent", "undelivered"], 30003),
        ("+12025550196", ["queued", "sent", "undelivered"], 30006),
        ("+12025550198", ["queued", "failed"], 30005),
        ("+12025550199", ["queued", "sent", "undelivered"], 21610),
    ],
)
def test_status_callbacks_arrive_in_order_and_signed(
    twilio_client: Client,
    carrier_sim: SimulatorHandle,
    webhooks: Webhooks,
    to: str,
    statuses: list[str],
    error_code: int | None,
) -> None:
    message = twilio_client.messages.create(
        to=to, from_=SENDER, body="Acme Finance: a reminder", status_callback=webhooks.url("/sms-status")
    )
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_, message.account_sid) == (
        "queued",
        to,
        SENDER,
        ACCOUNT_SID,
    )
    assert carrier_sim.wait_idle()

    hooks = webhooks.at("/sms-status")
    assert [h.params["MessageStatus"] for h in hooks] == statuses
    assert all(h.valid for h in hooks), "every callback carries a valid X-Twilio-Signature"
    assert {h.params["MessageSid"] for h in hooks} == {message.sid}
    assert hooks[-1].params.get("ErrorCode") == (str(error_code) if error_code else None)
    assert all("ErrorCode" not in h.params for h in hooks[:-1])

    fetched = twilio_client.messages(message.sid).fetch()
    assert fetched.status == statuses[-1]
    assert fetched.error_code == error_code


def test_status_progresses_without_a_callback(twilio_client: Client, carrier_sim: SimulatorHandle) -> None:
    message = twilio_client.messages.create(to="+12025550191", from_=SENDER, body="poll me")
    assert carrier_sim.wait_idle()
    fetched = twilio_client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert carrier_sim.store.callback_list() == []


@pytest.mark.parametrize(
    ("to", "sender", "code"),
    [
        ("+15005550001", SENDER, 21211),
        ("+15005550002", SENDER, 21612),
        ("+15005550004", SENDER, 21610),
        ("+15005550009", SENDER, 21614),
        ("+12025550101", "+15005550001", 21212),
        ("+12025550101", "+15005550007", 21606),
        ("+12025550101", "+15005550008", 21611),
    ],
)
def test_magic_numbers_raise_the_twilio_error(
    twilio_client: Client, carrier_sim: SimulatorHandle, to: str, sender: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to=to, from_=sender, body="x")
    assert (err.value.status, err.value.code) == (400, code)
    assert carrier_sim.store.message_list() == []  # refused: nothing was sent
    assert [r.code for r in carrier_sim.store.rejected] == [code]


def test_required_parameters(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to="+12025550101", from_=SENDER)
    assert err.value.code == 21602  # no Body (nor MediaUrl)
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to="+12025550101", body="no sender")
    assert err.value.code == 21603
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to="+12025550101", from_=SENDER, body="x" * 1601)
    assert err.value.code == 21617


def test_duplicates_are_not_deduplicated_but_counted(
    twilio_client: Client, carrier_sim: SimulatorHandle
) -> None:
    first = twilio_client.messages.create(to="+12025550102", from_=SENDER, body="same text")
    second = twilio_client.messages.create(to="+12025550102", from_=SENDER, body="same text")
    twilio_client.messages.create(to="+12025550102", from_=SENDER, body="other text")
    assert first.sid != second.sid  # like Twilio: two requests, two messages
    stats = carrier_sim.control("GET", "/_sim/stats").json()
    assert stats["messages"] == 3
    assert stats["duplicates"] == [{"channel": "sms", "to": "+12025550102", "body": "same text", "count": 2}]


def test_fault_500_then_success(twilio_client: Client, carrier_sim: SimulatorHandle) -> None:
    carrier_sim.control("POST", "/_sim/faults", json={"status": 500, "count": 1}).raise_for_status()
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to="+12025550103", from_=SENDER, body="retry me")
    assert (err.value.status, err.value.code) == (500, 20500)
    assert carrier_sim.store.message_list() == []  # the failed request created nothing
    message = twilio_client.messages.create(to="+12025550103", from_=SENDER, body="retry me")
    assert message.status == "queued"
    stats = carrier_sim.control("GET", "/_sim/stats").json()
    assert (stats["messages"], stats["duplicates"], stats["faults_pending"]) == (1, [], 0)


def test_fault_429_and_lost_response(twilio_client: Client, carrier_sim: SimulatorHandle) -> None:
    carrier_sim.control(
        "POST", "/_sim/faults", json=[{"status": 429, "count": 1}, {"status": 500, "commit": True}]
    ).raise_for_status()
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages.create(to="+12025550104", from_=SENDER, body="lost")
    assert (err.value.status, err.value.code) == (429, 20429)
    # commit=True: Twilio accepted the message but the answer was lost; a blind retry sends twice
    with pytest.raises(TwilioRestException):
        twilio_client.messages.create(to="+12025550104", from_=SENDER, body="lost")
    twilio_client.messages.create(to="+12025550104", from_=SENDER, body="lost")
    stats = carrier_sim.control("GET", "/_sim/stats").json()
    assert stats["duplicates"] == [{"channel": "sms", "to": "+12025550104", "body": "lost", "count": 2}]


def test_fault_delay_only_for_matching_requests(twilio_client: Client, carrier_sim: SimulatorHandle) -> None:
    carrier_sim.control("POST", "/_sim/faults", json={"delay": 0.3, "path": "/Calls", "count": 1})
    started = time.monotonic()
    twilio_client.messages.create(to="+12025550105", from_=SENDER, body="fast")
    assert time.monotonic() - started < 0.3
    assert carrier_sim.control("GET", "/_sim/faults").json()[0]["remaining"] == 1


def test_unknown_message_is_a_twilio_404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as err:
        twilio_client.messages("SM" + "0" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_list_filters_by_recipient(twilio_client: Client, carrier_sim: SimulatorHandle) -> None:
    twilio_client.messages.create(to="+12025550106", from_=SENDER, body="a")
    twilio_client.messages.create(to="+12025550107", from_=SENDER, body="b")
    assert [m.body for m in twilio_client.messages.list(to="+12025550106")] == ["a"]
    assert [
        m["to"] for m in carrier_sim.control("GET", "/_sim/messages", params={"to": "+12025550107"}).json()
    ] == ["+12025550107"]
