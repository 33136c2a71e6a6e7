"""The payload codec: what a leaked Temporal database or an unauthorised UI user can (not) read."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, generate_key_entry, parse_keys
from runtime.temporal import data_converter

OLD = generate_key_entry("k1")
NEW = generate_key_entry("k2")
SECRET = {"account_id": "ACC-77001", "phone": "+12125550142", "balance": 125000}


def codec(spec: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keys(spec))


def plain(value: object) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


async def test_round_trip_hides_the_content_and_restores_it_exactly() -> None:
    c = codec(OLD)
    original = plain(SECRET)
    [sealed] = await c.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    for needle in (b"ACC-77001", b"2125550142", b"json/plain", b"125000"):
        assert needle not in sealed.SerializeToString()
    [opened] = await c.decode([sealed])
    assert opened == original


async def test_the_data_converter_seals_values_and_reads_them_back() -> None:
    converter = data_converter(OLD)
    [sealed] = await converter.encode([SECRET])
    assert b"ACC-77001" not in sealed.data
    assert await converter.decode([sealed], [dict]) == [SECRET]


async def test_rotation_new_payloads_use_the_first_key_and_old_ones_still_open() -> None:
    [from_before] = await codec(OLD).encode([plain("sealed last year")])
    rotated = codec(f"{NEW},{OLD}")
    [fresh] = await rotated.encode([plain("sealed today")])
    assert fresh.metadata[KEY_ID] == b"k2"
    assert [await rotated.decode([p]) for p in (from_before, fresh)] == [
        [plain("sealed last year")],
        [plain("sealed today")],
    ]
    with pytest.raises(CodecError, match=r"key id 'k2', which is not in codec_keys"):
        await codec(OLD).decode([fresh])  # a worker not yet given the new key says so, naming the key


async def test_tampered_ciphertext_is_rejected() -> None:
    c = codec(OLD)
    [sealed] = await c.encode([plain(SECRET)])
    flipped = bytearray(sealed.data)
    flipped[-20] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(CodecError, match="failed authentication"):
        await c.decode([tampered])


async def test_a_relabelled_key_id_is_rejected_not_tried_under_the_other_key() -> None:
    both = codec(f"{NEW},{OLD}")
    [sealed] = await codec(OLD).encode([plain(SECRET)])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(CodecError, match="failed authentication"):
        await both.decode([relabelled])


async def test_unencrypted_payloads_pass_through_untouched() -> None:
    """Histories written before encryption was switched on keep reading."""
    old = [plain(SECRET), plain(None), plain("text")]
    assert await codec(OLD).decode(old) == old


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (",", "empty"),
        ("nokeyid", "entry 1 must be 'kid:base64"),
        (f"{OLD},:{OLD.split(':', 1)[1]}", "entry 2 must be 'kid:base64"),
        ("k1:not base64!!", "key 'k1' is not valid base64"),
        (
            "k1:" + base64.b64encode(b"x" * 16).decode(),
            "key 'k1' decodes to 16 bytes; AES-256 needs exactly 32",
        ),
        (f"{OLD},{OLD}", "key id 'k1' is listed twice"),
    ],
    ids=[
        "empty",
        "no-key-id",
        "second-without-id",
        "not-base64",
        "16-bytes",
        "listed-twice",
    ],  # keys are random
)
def test_bad_key_configuration_fails_at_start_naming_the_setting(spec: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        data_converter(spec)
    message = str(caught.value)
    assert message.startswith("codec_keys (COLLECT_CODEC_KEYS): ")
    assert reason in message
    assert OLD.split(":", 1)[1] not in message  # key material never ends up in a log


def test_no_keys_means_no_codec() -> None:
    assert data_converter(None).payload_codec is None
    assert data_converter("  ").payload_codec is None


async def test_failure_messages_are_sealed_too() -> None:
    """An exception text can quote a number (a carrier error): with keys on, it is stored encrypted."""
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(OLD)
    failure = Failure()
    await converter.encode_failure(ApplicationError("The 'To' number +12125550142 is not valid"), failure)
    assert b"2125550142" not in failure.SerializeToString()
    restored = await converter.decode_failure(failure)
    assert str(restored) == "The 'To' number +12125550142 is not valid"
