"""When an account may go to a credit bureau, what it is reported as, and how long the record stays:
the profiles' rules (notice first, then the waiting period) and the CRRG codes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.accounts import Product
from domain.credit_reporting import (
    AccountFacts,
    AccountState,
    DisputeState,
    ReportingRules,
    earliest_report_date,
    metro2_status,
    record_stays_until,
    reportable,
)
from domain.profiles import PROFILE_DIR, load_profile, parse_profile
from domain.templates import LANGUAGES, load_pack

US = load_profile("US").credit_reporting
UK = load_profile("UK").credit_reporting
CN = load_profile("CN").credit_reporting
CYCLE = date(2026, 11, 30)


def facts(**changes: object) -> AccountFacts:
    base: dict[str, object] = {
        "account_id": "ACC-1", "product": Product.CREDIT_LINE, "currency": "USD", "cycle_date": CYCLE,
        "date_opened": date(2026, 9, 1), "due_date": date(2026, 9, 1), "original_minor": 50_000,
        "balance_minor": 50_000, "past_due_minor": 50_000, "days_past_due": 90, "state": AccountState.OPEN,
        "notice_delivered_at": datetime(2026, 11, 1, 12, tzinfo=UTC),
    }  # fmt: skip
    return AccountFacts.model_validate({**base, **changes})


# ---- the profiles ------------------------------------------------------------------------------------
def test_each_shipped_profile_reports_with_a_notice_that_exists_in_every_language() -> None:
    for path in sorted(PROFILE_DIR.glob("*.toml")):
        rules = load_profile(path.stem).credit_reporting
        assert rules is not None, path.stem
        for language in LANGUAGES:
            assert rules.notice_template in load_pack(language).templates, (path.stem, language)
    assert (US.format, US.waiting_days, US.retention_years, US.retention_extra_days) == ("metro2", 14, 7, 180)
    assert (UK.format, UK.waiting_days, UK.retention_years) == ("csv", 28, 6)
    assert (CN.format, CN.retention_years, CN.retention_from) == ("csv", 5, "end_of_default")


def test_a_profile_without_the_table_never_reports() -> None:
    text = (PROFILE_DIR / "us.toml").read_text(encoding="utf-8").split("[credit_reporting]")[0]
    assert parse_profile(text).credit_reporting is None


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ('format = "metro2"', ('format = "xml"', "credit_reporting.format")),
        ("waiting_days = 14", ("waiting_days = -1", "credit_reporting.waiting_days")),
        (
            'retention_from = "first_delinquency"',
            ('retention_from = "whenever"', "credit_reporting.retention_from"),
        ),
    ],
)
def test_a_bad_reporting_table_is_refused_naming_the_field(edit: str, words: tuple[str, str]) -> None:
    text = (PROFILE_DIR / "us.toml").read_text(encoding="utf-8").replace(edit, words[0])
    with pytest.raises(ValueError, match=words[1]):
        parse_profile(text, source="us.toml")


# ---- notice first, then the waiting period -----------------------------------------------------------
def test_no_report_before_the_notice_went_out() -> None:
    assert reportable(facts(notice_delivered_at=None), US, CYCLE) == (False, "no notice yet")


def test_no_report_until_the_waiting_period_has_passed() -> None:
    sent = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert earliest_report_date(sent.date(), US) == date(2026, 12, 4)
    # a notice sent early promises no date before the account is 30 days late
    assert earliest_report_date(date(2026, 9, 5), US, due_date=date(2026, 9, 1)) == date(2026, 10, 1)
    assert reportable(facts(notice_delivered_at=sent), US, CYCLE) == (
        False,
        "waiting period until 2026-12-04",
    )
    assert reportable(facts(notice_delivered_at=sent), US, date(2026, 12, 4)) == (True, "reported")
    # the UK waits 28 days after its notice
    assert (
        reportable(facts(notice_delivered_at=sent), UK, date(2026, 12, 17))[1]
        == "waiting period until 2026-12-18"
    )


def test_an_account_not_delinquent_or_not_30_days_late_is_not_reported() -> None:
    assert reportable(facts(days_past_due=0), US, CYCLE) == (False, "no delinquency")
    assert reportable(facts(days_past_due=29), US, CYCLE) == (False, "under 30 days past due")


def test_a_payoff_before_the_first_possible_report_is_never_reported_but_one_after_is() -> None:
    paid = {"state": AccountState.PAID, "balance_minor": 0, "past_due_minor": 0}
    early = facts(**paid, closed_on=date(2026, 11, 10), days_past_due=70)
    assert reportable(early, US, CYCLE) == (False, "paid before it could be reported")
    late = facts(**paid, closed_on=date(2026, 11, 20), days_past_due=80)
    assert reportable(late, US, CYCLE) == (True, "reported")  # its new status goes into the next file


def test_deceased_bankrupt_and_upheld_complaints_are_left_to_a_person() -> None:
    for state in (AccountState.DECEASED, AccountState.BANKRUPT, AccountState.COMPLAINT_UPHELD):
        ok, reason = reportable(facts(state=state), US, CYCLE)
        assert not ok and reason.startswith(state.value)


# ---- what it is reported as (CDIA Credit Reporting Resource Guide) -------------------------------------
@pytest.mark.parametrize(
    ("dpd", "status"),
    [(0, "11"), (29, "11"), (30, "71"), (59, "71"), (60, "78"), (90, "80"), (120, "82"), (150, "83"), (179, "83"),
     (180, "84"), (400, "84")],
)  # fmt: skip
def test_an_open_account_is_reported_by_its_days_past_due_band(dpd: int, status: str) -> None:
    assert metro2_status(facts(days_past_due=dpd)).account_status == status


def test_charge_off_settlement_payoff_and_disputes_have_their_codes() -> None:
    charged = facts(state=AccountState.CHARGED_OFF, charged_off_minor=50_000)
    assert metro2_status(charged).account_status == "97"
    paid_after = metro2_status(charged.model_copy(update={"balance_minor": 0}))
    assert (paid_after.account_status, paid_after.payment_rating) == ("64", "L")
    settled = metro2_status(
        facts(state=AccountState.SETTLED, balance_minor=0, settled_for_less=True, days_past_due=95)
    )
    assert (settled.account_status, settled.payment_rating, settled.special_comment) == ("13", "3", "AU")
    paid = metro2_status(facts(state=AccountState.PAID, balance_minor=0, days_past_due=40))
    assert (paid.account_status, paid.payment_rating, paid.special_comment) == ("13", "1", "")
    assert metro2_status(facts(dispute=DisputeState.OPEN)).compliance_condition == "XB"
    assert metro2_status(facts(dispute=DisputeState.RESOLVED)).compliance_condition == "XH"
    assert metro2_status(facts()).compliance_condition == ""


# ---- how long the record stays --------------------------------------------------------------------------
def test_us_record_stays_7_years_after_the_180_days_from_the_delinquency() -> None:
    # due 1 Sep 2026: the delinquency begins 2 Sep; +180 days = 1 Mar 2027; +7 years = 1 Mar 2034
    assert record_stays_until(facts(), US) == date(2034, 3, 1)
    assert reportable(facts(), US, date(2034, 3, 2)) == (False, "past retention (until 2034-03-01)")


def test_cn_record_stays_5_years_from_the_end_of_the_default_and_while_it_goes_on() -> None:
    assert record_stays_until(facts(currency="CNY"), CN) is None  # the default goes on
    ended = facts(currency="CNY", state=AccountState.PAID, balance_minor=0, closed_on=date(2027, 2, 28))
    assert record_stays_until(ended, CN) == date(2032, 2, 28)
    recovered = facts(currency="CNY", state=AccountState.CHARGED_OFF, balance_minor=0,
                      last_payment_on=date(2028, 2, 29))  # fmt: skip
    assert record_stays_until(recovered, CN) == date(2033, 2, 28)  # 29 February: never later than the law


def test_uk_record_stays_6_years_from_the_default_date() -> None:
    # notice 1 Nov + 28 days = 29 Nov (the account was 30 days late long before): the default date
    assert record_stays_until(facts(currency="GBP"), UK) == date(2032, 11, 29)
    assert record_stays_until(facts(currency="GBP", notice_delivered_at=None), UK) is None


def test_bad_facts_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="currency"):
        facts(currency="XYZ")
    with pytest.raises(ValueError, match="notice_delivered_at"):
        facts(notice_delivered_at=datetime(2026, 11, 1, 12))
    with pytest.raises(ValueError, match="balance_minor"):
        facts(balance_minor=-1)


def test_rules_need_an_english_bureau_name() -> None:
    data = US.model_dump() | {"bureau": {"zh-CN": "信用局"}}
    with pytest.raises(ValueError, match="bureau"):
        ReportingRules.model_validate(data)
