"""Credit consequences, walked day by day in each jurisdiction (issue 15): grace, the frozen line,
charges up to the law's cap, the notice before the first report, the waiting period, the first
report, the payment, the next report with the paid status and the restored line.

Real time-skipping Temporal server, real worker, real database, the real send activity through the
carrier simulator, and the furnishing file built by ``./collect credit-file``'s own function from
what the workflows wrote. The lender's contract in this test charges 48% a year penalty interest:
more than the United States' 36% (MLA) and China's 12% (4 x LPR) allow, so what accrues there is
the cap; the United Kingdom allows it (0.8% a day), and there the cap on default fees bites instead
(GBP 15 in all).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest

from domain.accounts import Account
from domain.charge_view import ChargesAnswer
from domain.credit_csv import read_csv
from domain.metro2 import Reporter, read_file
from domain.rules import RuleSource, read_source, rules_from, version_of
from domain.timeline import AccountStatus
from runtime.cli_reporting import build_credit_file
from store.audit import audit_entries
from store.outbox import account_events
from tests.workflows.conftest import Harness, at_local
from workflows.messages import PaymentIn

PRINCIPAL = 50_000
CONTRACT_RATE_BP = 4_800  # 48% a year: what the lender's contract says in this test


def profiles() -> list[pytest.param]:
    return [
        #            profile  currency zone                phone             rate  fee   2nd fee notice template     waits
        pytest.param("US", "USD", "America/New_York", "+12125550142", 3_600, 1_500, 1_500, "credit_report_notice", 14, id="US"),
        pytest.param("UK", "GBP", "Europe/London", "+447700900142", 4_800, 1_200, 300, "credit_default_notice", 28, id="UK"),
        pytest.param("CN", "CNY", "Asia/Shanghai", "+8613800000142", 1_200, 3_000, 3_000, "credit_report_notice", 14, id="CN"),
    ]  # fmt: skip


def contract_rules(profile: str):  # type: ignore[no-untyped-def]
    """The standard policy, with the contract's 48% in place of its 10%."""
    source = read_source("policy", "standard")
    text = source.text.replace("penalty_rate_bp = 1000", f"penalty_rate_bp = {CONTRACT_RATE_BP}")
    assert text != source.text
    policy = RuleSource(kind="policy", name="standard", version=version_of("standard", text), text=text)
    return rules_from(policy, read_source("profile", profile))


def interest(rate_bp: int, days: int) -> int:
    """Simple interest on the principal for ``days`` days, rounded half-up once (the stated rule)."""
    exact = Decimal(PRINCIPAL * rate_bp * days) / Decimal(10_000 * 365)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def told(harness: Harness, account: Account) -> list[str]:
    with harness.sessions.begin() as s:
        return [e.type for e in account_events(s, account.account_id)]


def furnished(harness: Harness, profile: str, cycle: date):  # type: ignore[no-untyped-def]
    reporter = Reporter(name="Northwind Finance", identification_number="NWF0001")
    with harness.sessions.begin() as s:
        return build_credit_file(s, profile=profile, cycle_date=cycle, reporter=reporter, created=cycle)


def record_of(made, account: Account) -> dict | None:  # type: ignore[no-untyped-def]
    if made.format == "metro2":
        rows = [b for b in read_file(made.text).bases if b["consumer_account_number"] == account.account_id]
    else:
        rows = [r for r in read_csv(made.text) if r["account_id"] == account.account_id]
    assert len(rows) <= 1
    return rows[0] if rows else None


@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    ("profile", "currency", "zone", "phone", "rate_bp", "fee", "second_fee", "notice", "waits"), profiles()
)
async def test_an_account_walks_from_grace_to_report_to_paid_in_each_jurisdiction(
    harness: Harness,
    profile: str,
    currency: str,
    zone: str,
    phone: str,
    rate_bp: int,
    fee: int,
    second_fee: int,
    notice: str,
    waits: int,
) -> None:
    tz = ZoneInfo(zone)
    # taken in at 03:00 on its due date, so the day's steps are all ahead of it
    today = (await harness.now()).astimezone(tz).date() + timedelta(days=1)
    await harness.skip_to(at_local(today, 3, tz))
    account = await harness.open_account(
        due_in_days=0,
        phone=phone,
        zone=zone,
        profile=profile,
        currency=currency,
        balance=PRINCIPAL,
        fees=0,
        policy="standard",
        rules=contract_rules(profile),
    )
    handle = harness.handle(account)
    due = account.due_date

    def day(n: int, hour: int = 12) -> datetime:
        return at_local(due + timedelta(days=n), hour, tz)

    async def status() -> AccountStatus:  # as of the test server's clock, as the service asks
        return await handle.query("status", await harness.now(), result_type=AccountStatus)

    # 1. grace: three days after the due date nothing is late, nothing is charged, the line is open
    await harness.skip_to(day(3))
    assert [c["template"] for c in harness.sent(account)] == []
    assert told(harness, account) == []
    now = await status()
    assert now.balance == PRINCIPAL and now.charges is not None and now.charges.through is None
    assert now.charges.starts == due + timedelta(days=4)

    # 2. the day after it: the first overdue text, and the lender is told to freeze the line
    await harness.skip_to(day(4))
    assert [c["template"] for c in harness.sent(account)] == ["early_reminder"]
    assert told(harness, account) == ["line_frozen"]

    # 3. charges of each ended day: the late fee on day 4, interest at the rate the law allows
    await harness.skip_to(day(33))
    now = await status()
    assert now.charges is not None and now.charges.through == due + timedelta(days=32)
    accrued_days = 29  # days 4..32
    assert now.charges.interest_added == interest(rate_bp, accrued_days)
    assert now.charges.fees_added == fee
    assert now.balance == PRINCIPAL + interest(rate_bp, accrued_days) + fee
    every = await handle.query("charges", await harness.now(), result_type=ChargesAnswer)
    figures = [d for d in every.days if d.day >= due + timedelta(days=4)]
    assert len(figures) == accrued_days
    assert sum(d.interest for d in figures) == now.charges.interest_added  # each day's figure adds up
    assert [d.fee for d in figures][:2] == [fee, 0]
    capped = [d for d in figures if any(n.startswith("capped:annual_rate") for n in d.notes)]
    assert (len(capped) == accrued_days) == (rate_bp < CONTRACT_RATE_BP)  # the law's rate, every day
    assert "%" in every.summary.formula["en"] and every.summary.formula["zh-CN"]
    with harness.sessions.begin() as s:  # the audit says what each catch-up added, and at what rate
        lines = [
            e.details.get("detail", "") for e in audit_entries(s, account.account_id) if e.action == "charges"
        ]
    assert lines and all(f"{rate_bp // 100}.00% a year" in line for line in lines), lines
    assert all(("48.00% capped" in line) == (rate_bp < CONTRACT_RATE_BP) for line in lines)

    # 4. the notice before the first report: through the gate, recorded, naming the first report day
    sent = harness.sent(account)
    assert [c["template"] for c in sent].count(notice) == 1
    first_report = due + timedelta(days=33 + waits)
    texts = [m.get("body", "") for m in await harness.carrier_log(phone)]
    assert any(first_report.isoformat() in t for t in texts), texts

    # 5. the waiting period: a file made before it ends leaves the account out, and says why
    made = furnished(harness, profile, due + timedelta(days=33 + waits - 1))
    assert record_of(made, account) is None
    assert made.held_back.get(f"waiting period until {first_report.isoformat()}", 0) >= 1

    # 6. the first report, once it has passed
    await harness.skip_to(day(33 + waits + 1))
    now = await status()
    assert now.charges is not None
    if profile == "UK":  # the second default fee is cut to what is left of GBP 15
        assert now.charges.fees_added == fee + second_fee == 1_500
    report = record_of(furnished(harness, profile, due + timedelta(days=33 + waits + 1)), account)
    assert report is not None
    if profile == "US":
        assert report["account_status"] in ("71", "78")  # 30-59 or 60-89 days past due
        assert report["compliance_condition_code"] == ""
        assert report["date_of_first_delinquency"] == due + timedelta(days=30)
    else:
        assert report["status"] == "open" and int(report["days_past_due"]) == 33 + waits + 1
        assert report["notice_delivered_on"] == (due + timedelta(days=33)).isoformat()

    # 7. the debtor pays the balance the page shows: paid in full, the line restored
    owed = now.balance
    await handle.signal(
        "payment_received", PaymentIn(amount=owed, currency=currency, reference=f"pay-{profile}")
    )
    assert (await handle.result()).state == "closed_paid"
    assert told(harness, account)[0] == "line_frozen"
    assert told(harness, account)[-3:] == ["payment_applied", "closed", "line_restored"]

    # 8. the next file carries the paid status
    after = record_of(furnished(harness, profile, due + timedelta(days=33 + waits + 2)), account)
    assert after is not None
    if profile == "US":
        assert after["account_status"] == "13" and after["current_balance"] == 0
    else:
        assert after["status"] == "paid" and after["balance_minor"] == "0"


async def test_the_pre_due_reminder_names_the_grace_periods_last_day(harness: Harness) -> None:
    account = await harness.open_account(due_in_days=5, phone="+12125550142", fees=0)
    await harness.skip_to(at_local(account.due_date - timedelta(days=3), 12))
    [text] = [m for m in await harness.carrier_log("+12125550142") if "body" in m][-1:]  # the latest text
    assert [c["template"] for c in harness.sent(account)] == ["courtesy_reminder_grace"]
    last_day = (account.due_date + timedelta(days=3)).isoformat()
    assert f"does not count as late before the end of {last_day}" in text["body"]
    assert account.due_date.isoformat() in text["body"]
    await harness.finish(account.workflow_id)
