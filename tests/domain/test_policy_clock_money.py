"""Policy files, the demo clock and money parsing: the edges where operators type things."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.clock import PolicyClock
from domain.masking import mask_name, mask_phone
from domain.money import format_minor, parse_major
from domain.policy import load_policy, parse_policy

POLICY_TEXT = (Path(__file__).resolve().parents[2] / "policies" / "default.toml").read_text(encoding="utf-8")


def test_default_policy_loads_and_stages_follow_dpd() -> None:
    p = load_policy()
    assert [p.stage_for(d, "credit_line").value for d in (-7, 0, 3, 4, 30, 31, 90, 91, 179, 180)] == [
        "pre_due",
        "pre_due",
        "pre_due",  # the last day of the 3-day grace period: not late yet
        "early",
        "early",
        "middle",
        "middle",
        "late",
        "late",
        "charged_off",
    ]
    assert p.stage_for(120, "closed_end").value == "charged_off"


def test_no_overdue_step_is_planned_inside_a_products_grace_period() -> None:
    """Issue 15: a cadence step inside the grace is never run, whatever the policy file says, and a
    policy that puts one inside every product's grace is refused, naming the step."""
    from domain.accounts import Product
    from domain.cadence import steps_for
    from domain.policy import parse_policy

    text = POLICY_TEXT.replace("[grace_days]\ncredit_line = 3", "[grace_days]\ncredit_line = 5")
    policy = parse_policy(text)
    assert policy.grace_for(Product.CREDIT_LINE) == 5 and policy.grace_for(Product.CLOSED_END) == 3
    lending = [s.dpd for s in steps_for(policy, Product.CREDIT_LINE) if s.dpd > 0][:3]
    instalments = [s.dpd for s in steps_for(policy, Product.CLOSED_END) if s.dpd > 0][:3]
    assert lending == [8, 12, 15] and instalments == [4, 5, 8]
    assert policy.early_start(Product.CREDIT_LINE) == 6 and policy.early_start(Product.CLOSED_END) == 4
    inside = POLICY_TEXT.replace("dpd = [4, 8, 15, 22, 29]", "dpd = [2, 8, 15, 22, 29]")
    with pytest.raises(ValueError, match=r"cadence\[1\]\.dpd: day 2 falls inside every product's grace"):
        parse_policy(inside)
    no_grace = POLICY_TEXT.replace("closed_end = 3\n\n[stages]", "\n[stages]")
    with pytest.raises(ValueError, match=r"cadence\[0\]\.template: 'courtesy_reminder_grace'"):
        parse_policy(no_grace)


def test_policy_errors_name_the_file_and_field() -> None:
    bad = 'name = "x"\n[[cadence]]\nchannel = "fax"\ntemplate = "t"\ndpd = [1]\n'
    with pytest.raises(ValueError, match=r"ops\.toml.*cadence\.0\.channel"):
        parse_policy(bad, source="ops.toml")
    with pytest.raises(ValueError, match="either dpd"):
        parse_policy(
            'name="x"\n[[cadence]]\nchannel="sms"\ntemplate="t"\ndpd=[1]\nfrom_dpd=1\nto_dpd=3\nevery_days=1\n'
        )
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_policy("name = ")


def test_demo_clock_runs_policy_days_in_seconds() -> None:
    epoch = datetime(2026, 11, 22, 12, tzinfo=UTC)
    clock = PolicyClock(epoch=epoch, day_seconds=2)
    assert clock.policy_now(epoch + timedelta(seconds=2)) == epoch + timedelta(days=1)
    assert clock.real_delay(epoch, epoch + timedelta(days=7)) == timedelta(seconds=14)
    real = PolicyClock(epoch=epoch)
    assert real.policy_now(epoch + timedelta(hours=5)) == epoch + timedelta(hours=5)
    with pytest.raises(ValueError, match="timezone-aware"):
        PolicyClock(epoch=datetime(2026, 1, 1))


def test_money_is_parsed_without_floats() -> None:
    assert parse_major("1234.5", "USD") == 123450
    assert parse_major("0.07", "USD") == 7
    assert parse_major("500", "JPY") == 500
    assert format_minor(123450, "CNY") == "CNY 1,234.50"
    for bad in ("12.345", "abc", "", "1.2.3"):
        with pytest.raises(ValueError):
            parse_major(bad, "USD")


def test_masking_hides_identity() -> None:
    assert mask_phone("+8613812341234") == "+86 138****1234"
    assert "5550142" not in mask_phone("+12125550142")
    assert mask_name("Jane Doe") == "J*** D**"
    assert mask_name("王小明") == "王**"


def test_payments_after_charge_off_are_taken_for_calendar_days_across_a_clock_change() -> None:
    """Charged off at 00:30 in New York on 2026-10-20: "30 days" ends on 2026-11-19 at 00:30 local,
    not at 23:30 the evening before (30 x 24 h across the 1 November change)."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from domain.accounts import AccountTerms, Product
    from domain.cadence import dpd_at, local_days_later

    terms = AccountTerms(
        account_id="A-1",
        product=Product.CLOSED_END,
        currency="USD",
        balance=1,
        due_date=date(2026, 6, 22),
        zones=["America/New_York"],
    )
    charged = datetime(2026, 10, 20, 0, 30, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    until = local_days_later(charged, terms, 30)
    assert until.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None) == datetime(
        2026, 11, 19, 0, 30
    )
    assert dpd_at(until, terms) - dpd_at(charged, terms) == 30
    assert until - charged == timedelta(days=30, hours=1)
