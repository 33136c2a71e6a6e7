"""Contract with Twilio's own OpenAPI description (npm @twilio/cli-core, see scripts/fetch_twilio_spec.sh).

What we send must still exist upstream under the same name and type; what the simulator answers
must have Twilio's response shape. These tests need the spec: they skip locally without it and
fail in CI (``CI=true``).
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from carrier import SimulatorHandle
from carrier.contract import CALL, CALLS, MESSAGE, MESSAGES, TwilioSpec

from .conftest import ACCOUNT_SID, AUTH_TOKEN, SAY_FIRST, SENDER, Webhooks

#: the SDK keyword arguments the product uses (activities/contact_provider.py) and the form names they become
SMS_KWARGS = {"to": "To", "from_": "From", "body": "Body", "status_callback": "StatusCallback"}
CALL_KWARGS = {
    "to": "To",
    "from_": "From",
    "twiml": "Twiml",
    "url": "Url",
    "timeout": "Timeout",
    "machine_detection": "MachineDetection",
    "async_amd": "AsyncAmd",
    "status_callback": "StatusCallback",
    "status_callback_event": "StatusCallbackEvent",
    "async_amd_status_callback": "AsyncAmdStatusCallback",
}
UPDATE_KWARGS = {"status": "Status", "url": "Url", "twiml": "Twiml"}
#: the response fields the product reads
MESSAGE_FIELDS = {"sid", "status", "error_code", "to", "body"}
CALL_FIELDS = {"sid", "status", "answered_by", "duration", "to"}
#: the list filters reconciliation uses (activities/contact_outcome.py), as SDK arguments and query names,
#: and the fields it reads from each listed message or call
LIST_KWARGS = {"to": "To", "from_": "From", "limit": None}
LISTED_MESSAGE_FIELDS = {"sid", "status", "date_created", "direction", "body", "from", "to"}
LISTED_CALL_FIELDS = {"sid", "status", "date_created", "direction", "from", "to"}
#: a list page's links to itself and its neighbours
PAGE_LINKS = {"uri", "first_page_uri", "next_page_uri", "previous_page_uri"}


def test_the_spec_is_the_2010_api(twilio_spec: TwilioSpec) -> None:
    for path, method in [
        (MESSAGES, "post"),
        (MESSAGE, "get"),
        (CALLS, "post"),
        (CALL, "get"),
        (CALL, "post"),
    ]:
        assert twilio_spec.operation(path, method)
    assert twilio_spec.document["servers"][0]["url"] == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("path", "names"),
    [(MESSAGES, SMS_KWARGS.values()), (CALLS, CALL_KWARGS.values()), (CALL, UPDATE_KWARGS.values())],
)
def test_every_parameter_we_send_exists_in_the_spec(twilio_spec: TwilioSpec, path: str, names: Any) -> None:
    missing = set(names) - twilio_spec.request_parameters(path, "POST")
    assert not missing, f"Twilio's spec no longer has {sorted(missing)} on POST {path}"


def test_every_field_we_read_exists_in_the_spec(twilio_spec: TwilioSpec) -> None:
    assert MESSAGE_FIELDS <= twilio_spec.response_fields(MESSAGE, "GET")
    assert CALL_FIELDS <= twilio_spec.response_fields(CALL, "GET")


def test_the_list_filters_and_fields_reconciliation_uses_exist_in_the_spec(twilio_spec: TwilioSpec) -> None:
    filters = {name for name in LIST_KWARGS.values() if name}
    for path, fields in [(MESSAGES, LISTED_MESSAGE_FIELDS), (CALLS, LISTED_CALL_FIELDS)]:
        assert filters <= twilio_spec.query_parameters(path, "GET"), path
        assert fields <= twilio_spec.list_item_fields(path), path


def test_the_sdk_still_takes_our_keyword_arguments(twilio_client: Client) -> None:
    for method, kwargs in [
        (twilio_client.messages.create, SMS_KWARGS),
        (twilio_client.calls.create, CALL_KWARGS),
        (twilio_client.calls("CA" + "0" * 32).update, UPDATE_KWARGS),
        (twilio_client.messages.list, LIST_KWARGS),
        (twilio_client.calls.list, LIST_KWARGS),
    ]:
        accepted = set(inspect.signature(method).parameters)
        assert set(kwargs) <= accepted, f"{method.__qualname__} lost {sorted(set(kwargs) - accepted)}"


def test_what_the_sdk_sends_validates_against_the_spec(
    twilio_spec: TwilioSpec, twilio_client: Client, carrier_sim: SimulatorHandle, webhooks: Webhooks
) -> None:
    twilio_client.messages.create(
        to="+12025550101",
        from_=SENDER,
        body="Acme Finance: reply STOP to opt out",
        status_callback=webhooks.url("/sms"),
    )
    for instructions in ({"twiml": SAY_FIRST}, {"url": webhooks.url("/twiml")}):
        twilio_client.calls.create(
            to="+12025550102",
            from_=SENDER,
            timeout=25,
            machine_detection="DetectMessageEnd",
            async_amd="true",
            status_callback=webhooks.url("/call"),
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            async_amd_status_callback=webhooks.url("/amd"),
            **instructions,
        )
    assert carrier_sim.wait_idle()
    messages, calls = carrier_sim.store.message_list(), carrier_sim.store.call_list()
    assert len(messages) == 1 and len(calls) == 2  # the simulator (validating) accepted all three
    sent_sms = messages[0]["params"]
    assert set(sent_sms) == set(SMS_KWARGS.values())
    assert twilio_spec.validate_request(MESSAGES, "POST", sent_sms) == []
    for call in calls:
        form = call["params"]
        assert set(form) <= twilio_spec.request_parameters(CALLS, "POST")
        assert twilio_spec.validate_request(CALLS, "POST", form) == []
    assert calls[0]["params"]["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


def test_simulator_responses_have_twilios_shape(
    twilio_spec: TwilioSpec, carrier_sim: SimulatorHandle
) -> None:
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
    with httpx.Client(base_url=carrier_sim.url, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        created = http.post(
            f"{base}/Messages.json", data={"To": "+12025550101", "From": SENDER, "Body": "hi"}
        )
        call = http.post(
            f"{base}/Calls.json", data={"To": "+12025550101", "From": SENDER, "Twiml": SAY_FIRST}
        )
        carrier_sim.wait_idle()
        bodies = [
            (MESSAGES, "POST", created),
            (MESSAGE, "GET", http.get(f"{base}/Messages/{created.json()['sid']}.json")),
            (CALLS, "POST", call),
            (CALL, "GET", http.get(f"{base}/Calls/{call.json()['sid']}.json")),
            (
                CALL,
                "POST",
                http.post(f"{base}/Calls/{call.json()['sid']}.json", data={"Status": "completed"}),
            ),
        ]
    for path, method, response in bodies:
        assert response.status_code == (201 if path in (MESSAGES, CALLS) else 200)
        body = response.json()
        assert twilio_spec.validate_response(path, method, body) == [], (path, method)
        assert set(body) == twilio_spec.response_fields(path, method), (path, method)


def test_simulator_lists_have_twilios_shape_and_filters(
    twilio_spec: TwilioSpec, carrier_sim: SimulatorHandle
) -> None:
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
    other_sender = "+12025550199"
    with httpx.Client(base_url=carrier_sim.url, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        for sender, body in [(SENDER, "first"), (other_sender, "not ours"), (SENDER, "second")]:
            http.post(f"{base}/Messages.json", data={"To": "+12025550101", "From": sender, "Body": body})
        http.post(f"{base}/Messages.json", data={"To": "+12025550102", "From": SENDER, "Body": "elsewhere"})
        for sender in (SENDER, other_sender):
            http.post(f"{base}/Calls.json", data={"To": "+12025550101", "From": sender, "Twiml": SAY_FIRST})
        carrier_sim.wait_idle()
        mine = {"To": "+12025550101", "From": SENDER}
        messages = http.get(f"{base}/Messages.json", params=mine)
        calls = http.get(f"{base}/Calls.json", params=mine)
        refused = http.get(f"{base}/Messages.json", params={**mine, "DateSent>": "2026-01-01"})
    for path, response in [(MESSAGES, messages), (CALLS, calls)]:
        assert response.status_code == 200
        problems = twilio_spec.validate_response(path, "GET", response.json())
        # Twilio answers relative page links ("/2010-04-01/Accounts/..."), which its own spec's
        # ``format: uri`` does not allow: those are Twilio's shape, everything else must validate
        relative_links = [
            p for p in problems if p.split(":")[0] in PAGE_LINKS and p.endswith("is not a 'uri'")
        ]
        assert [p for p in problems if p not in relative_links] == [], path
        assert set(response.json()) == twilio_spec.response_fields(path, "GET"), path
    listed = messages.json()["messages"]
    assert [m["body"] for m in listed] == ["second", "first"]  # newest first, only To and From
    assert all(m["direction"] == "outbound-api" and m["date_created"] for m in listed)
    assert set(listed[0]) == twilio_spec.list_item_fields(MESSAGES)
    assert [(c["from"], c["direction"]) for c in calls.json()["calls"]] == [(SENDER, "outbound-api")]
    assert set(calls.json()["calls"][0]) == twilio_spec.list_item_fields(CALLS)
    # a time filter the simulator does not implement is refused, never silently ignored
    assert refused.status_code == 400 and "DateSent>" in refused.json()["message"]


def test_spec_violations_are_refused_naming_the_parameter(
    twilio_spec: TwilioSpec, twilio_client: Client, carrier_sim: SimulatorHandle
) -> None:
    assert carrier_sim.control("GET", "/_sim/config").json()["spec"], (
        "the simulator validates against the spec"
    )
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"timeout": "soon"}, 21208, "Timeout"),
        ({"status_callback": "not a url"}, 21609, "StatusCallback"),
        ({"twiml": "<Say>no Response root</Say>"}, 12100, "Twiml"),
        ({"to": "2025550101"}, 21211, "To"),
        ({"method": "PUT"}, 21209, "Method"),
        (
            {"status_callback_event": "answered", "recording_channels": ["mono", "dual"]},
            20001,
            "RecordingChannels",
        ),
    ]
    for override, code, param in cases:
        kwargs: dict[str, Any] = {"to": "+12025550101", "from_": SENDER, "twiml": SAY_FIRST, **override}
        with pytest.raises(TwilioRestException) as err:
            twilio_client.calls.create(**kwargs)
        assert (err.value.status, err.value.code) == (400, code), override
        assert param in err.value.msg
    assert carrier_sim.store.call_list() == []


def test_a_renamed_parameter_is_refused(twilio_spec: TwilioSpec, carrier_sim: SimulatorHandle) -> None:
    form = {"To": "+12025550101", "From": SENDER, "Body": "hi", "StatusCallbackUrl": "http://127.0.0.1/x"}
    assert [
        p.param for p in twilio_spec.validate_request(MESSAGES, "POST", {k: [v] for k, v in form.items()})
    ] == ["StatusCallbackUrl"]
    response = carrier_sim.control(
        "POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", data=form, auth=(ACCOUNT_SID, AUTH_TOKEN)
    )
    assert response.status_code == 400
    assert response.json()["code"] == 20001 and "StatusCallbackUrl" in response.json()["message"]
