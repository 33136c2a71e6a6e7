"""Calls through the real twilio SDK: every outcome class, signed callbacks, TwiML, machine detection.

The product's call shape is ``machine_detection='DetectMessageEnd'``, ``async_amd='true'`` and a
TwiML that speaks first: these tests show the simulator records a silent call whenever one of
those three is missing, and never when all three are there.
"""

from __future__ import annotations

import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from carrier import SimulatorHandle

from .conftest import SAY_FIRST, SENDER, Webhooks

EVENTS = ["initiated", "ringing", "answered", "completed"]


def place(client: Client, webhooks: Webhooks, to: str, **overrides: object):  # type: ignore[no-untyped-def]
    """A call exactly as the product places it, with callbacks to the test's receiver."""
    kwargs: dict[str, object] = {
        "to": to,
        "from_": SENDER,
        "twiml": SAY_FIRST,
        "timeout": 25,
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",
        "status_callback": webhooks.url("/call-status"),
        "status_callback_event": EVENTS,
        "async_amd_status_callback": webhooks.url("/amd"),
    }
    kwargs.update(overrides)
    return client.calls.create(**{k: v for k, v in kwargs.items() if v is not None})


@pytest.mark.parametrize(
    ("to", "statuses", "answered_by", "duration"),
    [
        ("+12025550101", ["initiated", "ringing", "in-progress", "completed"], "human", "35"),
        ("+12025550163", ["initiated", "ringing", "in-progress", "completed"], "machine_end_beep", "20"),
        ("+12025550172", ["initiated", "ringing", "in-progress", "completed"], "unknown", "1"),
        ("+12025550177", ["initiated", "ringing", "no-answer"], None, "0"),
        ("+12025550182", ["initiated", "ringing", "busy"], None, "0"),
        ("+12025550187", ["initiated", "failed"], None, "0"),
        ("+12025550191", ["initiated", "ringing", "no-answer"], None, "0"),
        ("+12025550196", ["initiated", "ringing", "in-progress", "completed"], "human", "35"),
    ],
)
def test_every_outcome_class_with_signed_callbacks_in_order(
    twilio_client: Client,
    carrier_sim: SimulatorHandle,
    webhooks: Webhooks,
    to: str,
    statuses: list[str],
    answered_by: str | None,
    duration: str,
) -> None:
    call = place(twilio_client, webhooks, to)
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    assert carrier_sim.wait_idle()

    hooks = webhooks.at("/call-status")
    assert [h.params["CallStatus"] for h in hooks] == statuses
    assert [h.params["SequenceNumber"] for h in hooks] == [str(i) for i in range(len(hooks))]
    assert hooks[-1].params["CallDuration"] == duration
    amd = webhooks.at("/amd")
    if answered_by is None:
        assert amd == []
    else:
        assert [(h.params["AnsweredBy"], h.params["CallSid"]) for h in amd] == [(answered_by, call.sid)]
        assert int(amd[0].params["MachineDetectionDuration"]) > 0
    assert all(h.valid for h in hooks + amd), "every callback carries a valid X-Twilio-Signature"

    fetched = twilio_client.calls(call.sid).fetch()
    assert (fetched.status, fetched.answered_by, fetched.duration) == (statuses[-1], answered_by, duration)
    record = carrier_sim.control("GET", "/_sim/calls", params={"to": to}).json()[0]
    assert record["silent"] is False and record["held_silent_seconds"] == 0
    if answered_by is not None:
        assert record["twiml"] == SAY_FIRST and record["speech_latency_seconds"] == 0


def test_the_products_call_shape_never_makes_a_silent_call(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    for suffix in ("01", "42", "63", "68", "72", "96", "99"):
        place(twilio_client, webhooks, f"+120255501{suffix}")
    assert carrier_sim.wait_idle()
    stats = carrier_sim.control("GET", "/_sim/stats").json()
    assert stats["calls"] == 7
    assert (stats["silent_calls"], stats["held_silent_calls"]) == (0, 0)
    assert stats["max_speech_latency_seconds"] == 0


def test_synchronous_machine_detection_holds_the_callee_in_silence(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    call = place(twilio_client, webhooks, "+12025550101", async_amd=None, async_amd_status_callback=None)
    assert carrier_sim.wait_idle()
    record = carrier_sim.control("GET", "/_sim/calls").json()[0]
    assert record["held_silent_seconds"] > 2 and record["silent"] is True
    assert record["speech_latency_seconds"] == record["held_silent_seconds"]
    # synchronous detection: AnsweredBy rides on the status callbacks, no separate AMD callback
    answered = [h for h in webhooks.at("/call-status") if h.params["CallStatus"] == "in-progress"]
    assert answered[0].params["AnsweredBy"] == "human"
    assert webhooks.at("/amd") == []
    assert twilio_client.calls(call.sid).fetch().answered_by == "human"
    assert carrier_sim.control("GET", "/_sim/stats").json()["held_silent_calls"] == 1


@pytest.mark.parametrize(
    ("twiml", "latency"),
    [
        ('<Response><Pause length="3"/><Say>Hello</Say></Response>', 3.0),
        ("<Response><Hangup/></Response>", None),
        ('<Response><Gather numDigits="1"><Say>Press 1</Say></Gather></Response>', 0.0),
    ],
)
def test_twiml_that_does_not_speak_at_once_is_a_silent_call(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks, twiml: str, latency: float | None
) -> None:
    place(twilio_client, webhooks, "+12025550101", twiml=twiml)
    assert carrier_sim.wait_idle()
    record = carrier_sim.control("GET", "/_sim/calls").json()[0]
    assert record["speech_latency_seconds"] == latency
    assert record["silent"] is (latency is None or latency > 2)


def test_twiml_is_fetched_from_url_with_a_signed_request(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    document = '<?xml version="1.0"?><Response><Say>From the web.</Say></Response>'
    webhooks.twiml["/twiml"] = document
    call = place(twilio_client, webhooks, "+12025550150", twiml=None, url=webhooks.url("/twiml?account=A1"))
    assert carrier_sim.wait_idle()
    fetches = webhooks.at("/twiml")
    assert len(fetches) == 1 and fetches[0].valid and fetches[0].method == "POST"
    assert fetches[0].params["CallSid"] == call.sid
    assert (fetches[0].params["CallStatus"], fetches[0].params["Direction"]) == (
        "in-progress",
        "outbound-api",
    )
    record = carrier_sim.control("GET", "/_sim/calls").json()[0]
    assert (record["twiml"], record["twiml_source"], record["silent"]) == (document, "url", False)


def test_a_broken_twiml_url_is_recorded_as_silent(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    place(twilio_client, webhooks, "+12025550150", twiml=None, url=webhooks.url("/no-document"))
    assert carrier_sim.wait_idle()
    record = carrier_sim.control("GET", "/_sim/calls").json()[0]
    assert record["twiml"] is None and record["twiml_error"].startswith("12100")
    assert record["silent"] is True


def test_without_status_events_only_completed_is_reported(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    place(twilio_client, webhooks, "+12025550101", status_callback_event=None)
    assert carrier_sim.wait_idle()
    assert [h.params["CallStatus"] for h in webhooks.at("/call-status")] == ["completed"]


def test_a_short_ring_timeout_ends_unanswered(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    place(twilio_client, webhooks, "+12025550101", timeout=5)  # the human answers after 6 s of ringing
    assert carrier_sim.wait_idle()
    record = carrier_sim.control("GET", "/_sim/calls").json()[0]
    assert (record["status"], record["ring_seconds"], record["answered"]) == ("no-answer", 5, False)


def test_hang_up_a_live_call(twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks) -> None:
    carrier_sim.configure(talk_seconds=5)
    call = place(twilio_client, webhooks, "+12025550101")
    deadline = time.monotonic() + 5
    while twilio_client.calls(call.sid).fetch().status != "in-progress":
        assert time.monotonic() < deadline, "the call never got answered"
        time.sleep(0.01)
    updated = twilio_client.calls(call.sid).update(status="completed")
    assert updated.status == "completed"
    assert carrier_sim.wait_idle(timeout=2)  # well before talk_seconds: the hang-up ended it
    assert [h.params["CallStatus"] for h in webhooks.at("/call-status")][-1] == "completed"
    assert carrier_sim.control("GET", "/_sim/calls").json()[0]["ended_by_api"] == "completed"


def test_redirecting_a_finished_call_is_refused(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    call = place(twilio_client, webhooks, "+12025550182")
    assert carrier_sim.wait_idle()
    with pytest.raises(TwilioRestException) as err:
        twilio_client.calls(call.sid).update(twiml=SAY_FIRST)
    assert err.value.code == 21220
    assert twilio_client.calls(call.sid).update(status="completed").status == "busy"  # final stays final


@pytest.mark.parametrize(
    ("to", "sender", "code"),
    [
        ("+15005550001", SENDER, 21217),
        ("+15005550002", SENDER, 21214),
        ("+15005550003", SENDER, 21215),
        ("+15005550004", SENDER, 21216),
        ("+12025550101", "+15005550001", 21212),
    ],
)
def test_magic_numbers_refuse_the_call(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks, to: str, sender: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as err:
        place(twilio_client, webhooks, to, from_=sender)
    assert (err.value.status, err.value.code) == (400, code)
    assert carrier_sim.store.call_list() == []


def test_a_call_needs_instructions(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as err:
        twilio_client.calls.create(to="+12025550101", from_=SENDER)
    assert err.value.code == 21205


def test_fault_then_success_for_calls(
    twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    carrier_sim.control("POST", "/_sim/faults", json={"status": 503, "path": "/Calls.json"})
    with pytest.raises(TwilioRestException) as err:
        place(twilio_client, webhooks, "+12025550101")
    assert err.value.status == 503
    place(twilio_client, webhooks, "+12025550101")
    assert carrier_sim.wait_idle()
    assert len(carrier_sim.store.call_list()) == 1
