"""Standard Webhooks signatures: the specification's published example, and what a receiver checks.

The vector is the one the specification's reference libraries test against (standard-webhooks,
libraries/python/tests/test_webhooks.py ``test_sign_function``; the same in the JavaScript, Go and Rust
libraries): secret ``whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw``, id ``msg_p5jXN8AQM9LWM0D4loKWxJek``,
timestamp 1614265330, body ``{"test": 2432232314}``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from runtime.webhook_signature import SignatureError, headers, new_secret, secret_key, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT = datetime.fromtimestamp(TIMESTAMP, UTC)


def test_the_specifications_example_signs_to_its_published_signature() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, BODY) == EXPECTED  # the prefix is optional
    assert headers([SECRET], MSG_ID, BODY, at=AT) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": EXPECTED,
    }


def test_a_receiver_accepts_the_example_and_refuses_any_change_to_it() -> None:
    sent = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": EXPECTED}
    assert verify(SECRET, BODY, sent, now=AT + timedelta(seconds=30)) == {"test": 2432232314}
    refused = [
        (SECRET, BODY + b" ", sent),  # one byte more in the body
        (SECRET, BODY, {**sent, "webhook-id": "msg_other"}),  # the id is signed
        (SECRET, BODY, {**sent, "webhook-timestamp": str(TIMESTAMP + 1)}),  # the timestamp is signed
        (new_secret(), BODY, sent),  # another secret
        (SECRET, BODY, {**sent, "webhook-signature": EXPECTED[:-2] + "A="}),
        (SECRET, BODY, {k: v for k, v in sent.items() if k != "webhook-signature"}),
    ]
    for secret, body, received in refused:
        with pytest.raises(SignatureError):
            verify(secret, body, received, now=AT)


def test_a_timestamp_outside_five_minutes_is_refused_either_way() -> None:
    sent = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": EXPECTED}
    verify(SECRET, BODY, sent, now=AT + timedelta(minutes=5))
    for off in (timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)):
        with pytest.raises(SignatureError, match="tolerance"):
            verify(SECRET, BODY, sent, now=AT + off)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    """The header is a space-separated list (zero-downtime rotation): the receiver tries each."""
    old, new = new_secret(), new_secret()
    sent = headers([new, old], MSG_ID, BODY, at=AT)
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verify(secret, BODY, sent, now=AT)
    with pytest.raises(SignatureError):
        verify(new_secret(), BODY, sent, now=AT)


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(secret_key(secret)) == 32
        assert base64.b64decode(secret.removeprefix("whsec_")) == secret_key(secret)
    with pytest.raises(ValueError, match="secret"):
        secret_key("whsec_not base64!")
    with pytest.raises(ValueError, match="msg_id"):
        sign(SECRET, "has.a.dot", TIMESTAMP, BODY)
