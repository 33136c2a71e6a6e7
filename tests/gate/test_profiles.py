"""Profiles: operators may tighten a jurisdiction's rules, never loosen them, and errors say where and why."""

from __future__ import annotations

import re
from datetime import time

import pytest

from domain.profiles import LEGAL_FLOORS, PROFILE_DIR, Profile, load_profile, parse_profile


def shipped(name: str) -> str:
    return (PROFILE_DIR / f"{name}.toml").read_text(encoding="utf-8")


def edited(name: str, key: str, value: str) -> str:
    """The shipped profile with one top-level ``key = value`` line replaced (or added)."""
    text = shipped(name)
    line = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
    if line.search(text):
        return line.sub(f"{key} = {value}", text, count=1)
    head, _, tail = text.partition("\n[")
    return f"{head}\n{key} = {value}\n[{tail}"


def without(name: str, key: str) -> str:
    return re.sub(rf"^{re.escape(key)} = .*\n", "", shipped(name), count=1, flags=re.MULTILINE)


@pytest.mark.parametrize("name", ["us", "uk", "cn"])
def test_shipped_profiles_load_and_meet_their_own_floors(name: str) -> None:
    profile = load_profile(name.upper())
    assert profile.legal_jurisdiction == name.upper()
    assert parse_profile(shipped(name), source=f"{name}.toml") == profile


# (profile, field, looser value, words the error must contain: the field and the rule it would break)
LOOSER = [
    ("us", "contact_start", '"07:59"', ["contact_start", "1006.6(b)(1)(i)", "08:00"]),
    ("us", "contact_end", '"21:01"', ["contact_end", "1006.6(b)(1)(i)", "21:00"]),
    ("us", "max_call_attempts_per_7_days", "8", ["max_call_attempts_per_7_days", "1006.14(b)(2)(i)"]),
    ("us", "min_days_after_conversation", "6", ["min_days_after_conversation", "1006.14(b)(2)(ii)"]),
    ("us", "max_abandoned_rate", "0.05", ["max_abandoned_rate", "64.1200"]),
    ("us", "retention_years", "2", ["retention_years", "1006.100"]),
    ("uk", "no_redial_after_abandoned_hours", "48", ["no_redial_after_abandoned_hours", "Ofcom", "72"]),
    ("uk", "max_abandoned_rate", "0.04", ["max_abandoned_rate", "Ofcom"]),
    ("uk", "contact_end", '"21:30"', ["contact_end", "21:00"]),
    ("uk", "contact_start", '"07:30"', ["contact_start", "08:00"]),
    ("cn", "max_connected_calls_per_day", "4", ["max_connected_calls_per_day", "NIFA", "3"]),
    ("cn", "contact_end", '"22:30"', ["contact_end", "NIFA", "22:00"]),
    ("cn", "contact_start", '"07:00"', ["contact_start", "NIFA", "08:00"]),
    ("cn", "retention_years", "4", ["retention_years", "NIFA", "5"]),
]


@pytest.mark.parametrize(
    ("name", "field", "value", "words"), LOOSER, ids=[f"{n}-{f}" for n, f, _, _ in LOOSER]
)
def test_each_legal_floor_refuses_a_looser_profile_naming_file_field_and_rule(
    name: str, field: str, value: str, words: list[str]
) -> None:
    with pytest.raises(ValueError) as err:
        parse_profile(edited(name, field, value), source=f"ops/{name}-acme.toml")
    message = str(err.value)
    assert message.startswith(f"ops/{name}-acme.toml: ")
    assert "loosens a legal minimum" in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("us", "max_call_attempts_per_7_days"),
        ("us", "min_days_after_conversation"),
        ("cn", "max_connected_calls_per_day"),
    ],
)
def test_leaving_a_limit_out_is_loosening_it(name: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"{field}: not set"):
        parse_profile(without(name, field), source="x.toml")


def test_massachusetts_override_cannot_be_loosened_explicitly() -> None:
    text = shipped("us").replace(
        "[region_overrides.US-MA]\nmax_communications_per_7_days = 2",
        "[region_overrides.US-MA]\nmax_communications_per_7_days = 3",
    )
    with pytest.raises(ValueError, match=r"region_overrides\.US-MA\.max_communications_per_7_days.*940 CMR"):
        parse_profile(text, source="us.toml")


def test_the_floors_are_in_code_so_editing_the_files_floors_does_not_lift_them() -> None:
    text = edited("us", "max_call_attempts_per_7_days", "10").replace(
        "max_call_attempts_per_7_days = 7\nmin_days_after_conversation = 7\nmax_abandoned_rate",
        "max_call_attempts_per_7_days = 10\nmin_days_after_conversation = 7\nmax_abandoned_rate",
    )
    assert "[floors]" in text and "max_call_attempts_per_7_days = 10\nmin_days" in text
    with pytest.raises(ValueError, match="max_call_attempts_per_7_days: 10 exceeds the legal maximum 7"):
        parse_profile(text, source="us.toml")
    no_floors = edited("us", "max_call_attempts_per_7_days", "9").split("\n[floors]")[0]
    with pytest.raises(ValueError, match="max_call_attempts_per_7_days"):
        parse_profile(no_floors, source="us.toml")


def test_a_files_own_floors_can_make_the_law_stricter() -> None:
    text = shipped("us") + "max_sms_per_7_days = 3\n"  # not a floor field: refused, by name
    with pytest.raises(ValueError, match=r"floors\.max_sms_per_7_days"):
        parse_profile(text, source="us.toml")
    stricter = shipped("us").replace("[floors]\n", "[floors]\nmax_connected_calls_per_day = 2\n")
    with pytest.raises(
        ValueError, match=r"max_connected_calls_per_day: not set \(no limit\), but the law allows at most 2"
    ):
        parse_profile(stricter, source="us.toml")


def test_tightening_is_welcome() -> None:
    text = shipped("us")
    for key, value in {
        "contact_start": '"09:00"',
        "contact_end": '"20:00"',
        "max_call_attempts_per_7_days": "3",
        "min_days_after_conversation": "10",
        "no_redial_after_abandoned_hours": "96",
        "retention_years": "7",
    }.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
    profile = parse_profile(text.replace('name = "US"', 'name = "US-ACME"'), source="acme.toml")
    assert (profile.contact_start, profile.max_call_attempts_per_7_days) == (time(9), 3)
    assert profile.legal_jurisdiction == "US"  # jurisdiction = "US" in the file, whatever its name


def test_a_profile_must_say_whose_law_it_follows() -> None:
    text = shipped("us").replace('jurisdiction = "US"\n', "").replace('name = "US"', 'name = "ACME"')
    with pytest.raises(ValueError, match=r"acme\.toml: .*jurisdiction"):
        parse_profile(text, source="acme.toml")
    other = parse_profile('name = "DE"\njurisdiction = "DE"\n', source="de.toml")
    assert other.legal_floors == LEGAL_FLOORS.get("DE", other.legal_floors)
    with pytest.raises(ValueError, match=r"contact_end.*21:00"):
        parse_profile('name = "DE"\njurisdiction = "DE"\ncontact_end = "22:00"\n', source="de.toml")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            'name = "US"\nmax_sms_per_day = -1\n',
            ["ops.toml", "max_sms_per_day", "greater than or equal to 0"],
        ),
        ('name = "US"\nmax_smss_per_day = 1\n', ["ops.toml", "max_smss_per_day", "Extra inputs"]),
        ('name = "US"\ncontact_start = "8am"\n', ["ops.toml", "contact_start"]),
        (
            'name = "US"\n[region_overrides.US-MA]\nmax_comms = 2\n',
            ["ops.toml", "region_overrides: US-MA", "unknown field(s) max_comms"],
        ),
        ('name = "US"\n[floors]\nlatest_end = "late"\n', ["ops.toml", "floors.latest_end"]),
        ('name = "US"\ncontact_end = "07:00"\n', ["ops.toml", "contact_end", "after contact_start"]),
        ("name = ", ["ops.toml", "not valid TOML"]),
        ("description = 'x'\n", ["ops.toml", "name", "Field required"]),
    ],
)
def test_parse_errors_name_the_file_and_the_field(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        parse_profile(text, source="ops.toml")
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_region_overrides_only_tighten_in_the_right_direction() -> None:
    profile = Profile.model_validate(
        {
            "name": "US",
            "max_call_attempts_per_7_days": 7,
            "min_days_after_conversation": 7,
            "retention_years": 3,
            "region_overrides": {
                "us-ny": {
                    "max_call_attempts_per_7_days": 9,
                    "min_days_after_conversation": 10,
                    "max_sms_per_day": 0,
                },
                "US-CA": {"min_days_after_conversation": 2},
            },
        }
    )
    ny = profile.for_region("US-NY")
    assert (ny.max_call_attempts_per_7_days, ny.min_days_after_conversation, ny.max_sms_per_day) == (7, 10, 0)
    assert profile.for_region("us-ca").min_days_after_conversation == 7  # a smaller minimum is not stricter
    assert (
        profile.for_region("US-MA").max_communications_per_7_days == 2
    )  # the law's, though the file is silent
    assert profile.for_region(None) is profile
