"""make_twilio_client: the real SDK, every Twilio host rerouted to the configured base URL."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.twilio_client import RedirectingHttpClient, TracingHttpClient, make_twilio_client
from carrier import SimulatorHandle

from .conftest import ACCOUNT_SID, AUTH_TOKEN, SENDER


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
            "http://127.0.0.1:8099/2010-04-01/Accounts/AC1/Messages.json",
        ),
        (
            "https://messaging.twilio.com/v1/Services?PageSize=5",
            "http://127.0.0.1:8099/v1/Services?PageSize=5",
        ),
        (
            "https://api.sydney.au1.twilio.com/2010-04-01/Calls.json",
            "http://127.0.0.1:8099/2010-04-01/Calls.json",
        ),
        ("https://example.com/2010-04-01/Calls.json", "https://example.com/2010-04-01/Calls.json"),
        ("https://twilio.com.evil.example/x", "https://twilio.com.evil.example/x"),
    ],
)
def test_reroutes_twilio_hosts_only(url: str, expected: str) -> None:
    assert RedirectingHttpClient("http://127.0.0.1:8099").reroute(url) == expected


def test_base_url_path_prefix_is_kept() -> None:
    client = RedirectingHttpClient("http://127.0.0.1:4010/mock/")
    assert client.reroute("https://api.twilio.com/2010-04-01/Calls.json") == (
        "http://127.0.0.1:4010/mock/2010-04-01/Calls.json"
    )


def test_rejects_a_base_url_that_is_not_absolute() -> None:
    with pytest.raises(ValueError):
        make_twilio_client(ACCOUNT_SID, AUTH_TOKEN, "127.0.0.1:8099")


def test_without_base_url_it_is_a_plain_client_for_twilio() -> None:
    client = make_twilio_client(ACCOUNT_SID, AUTH_TOKEN, None)
    assert isinstance(client, Client)
    # the SDK's own HTTP client, each request a span of the activity's trace; nothing rerouted
    assert type(client.http_client) is TracingHttpClient and isinstance(client.http_client, TwilioHttpClient)
    assert client.http_client.timeout is not None  # an activity must not hang forever


def test_requests_really_reach_the_base_url_even_with_an_edge(carrier_sim: SimulatorHandle) -> None:
    client = make_twilio_client(ACCOUNT_SID, AUTH_TOKEN, carrier_sim.url)
    client.edge = "sydney"  # the SDK rewrites the host to api.sydney.us1.twilio.com: still rerouted
    message = client.messages.create(to="+12025550101", from_=SENDER, body="edge")
    assert message.sid.startswith("SM")
    assert [m["sid"] for m in carrier_sim.store.message_list()] == [message.sid]


def test_wrong_credentials_are_refused_like_twilio(carrier_sim: SimulatorHandle) -> None:
    client = make_twilio_client(ACCOUNT_SID, "wrong-token", carrier_sim.url)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+12025550101", from_=SENDER, body="x")
    assert (err.value.status, err.value.code) == (401, 20003)
    raw = carrier_sim.control(
        "POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", data={"To": "+12025550101"}
    )
    assert raw.status_code == 401
    assert raw.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert carrier_sim.store.message_list() == []
