"""The debtor's page says what being late means for their credit (issue 15, item 5): the grace period,
the frozen line and what restores it, what was added and how, whether and when the account may be
reported, and how long a record stays, in the debtor's language, from the same facts the workflow and
the monthly file use."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx

from domain.accounts import Account, Debtor
from domain.charge_view import ChargesAnswer
from domain.money import format_minor
from domain.timeline import AccountStatus
from store.accounts import upsert_account
from tests.service import test_selfservice as debtor_pages
from tests.service.conftest import random_phone
from tests.service.test_selfservice import AUDITOR, BORN, link_for, signed_in
from tests.workflows.conftest import NY, Harness, at_local

harness, web = debtor_pages.harness, debtor_pages.web
LINE = re.compile(r'<li class="(cq_\w+)">([^<]*)</li>')


def credit_section(html: str) -> dict[str, str]:
    """The section's sentences by string key."""
    return {key: text for key, text in LINE.findall(html)}


async def test_the_page_tells_grace_freeze_charges_reporting_and_how_long_a_record_stays(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    today = (await harness.now()).astimezone(NY).date() + timedelta(days=1)
    await harness.skip_to(at_local(today, 3))
    account = Account(
        account_id=f"CQ-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(
            name="Jane Doe", phone=random_phone(42), timezone="America/New_York", date_of_birth=BORN
        ),
        currency="USD",
        balance=50_000,
        due_date=today,
        policy="standard",  # penalty interest, late fees and credit reporting
    )
    with harness.sessions.begin() as s:
        upsert_account(s, account, await harness.now())
    await harness.start(account)
    due = account.due_date

    # inside the grace period: what will happen, and when
    await harness.skip_to(at_local(due + timedelta(days=2), 12))
    before = credit_section((await signed_in(web, link_for(account))).text)
    assert (due + timedelta(days=3)).isoformat() in before["cq_grace_until"]
    assert (due + timedelta(days=4)).isoformat() in before["cq_line_will_freeze"]
    assert (due + timedelta(days=4)).isoformat() in before["cq_charges_from"]
    notice_day = (due + timedelta(days=33)).isoformat()
    assert notice_day in before["cq_report_will_notice"] and "Equifax" in before["cq_report_will_notice"]
    assert "7 years" in before["cq_record_rule_first_delinquency"]

    # 40 days late: the line frozen on day 4, the charges so far, the notice given and the report day
    await harness.skip_to(at_local(due + timedelta(days=40), 12))
    page = await web.get("/me/account")
    late = credit_section(page.text)
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.charges is not None and status.charges.interest_added > 0
    assert (due + timedelta(days=3)).isoformat() in late["cq_grace_over"]
    assert (due + timedelta(days=4)).isoformat() in late["cq_line_frozen"]
    added = late["cq_charges_added"]
    assert format_minor(status.charges.interest_added, "USD") in added
    # the late fee on day 4 and again on day 34 (every 30 days, at most 3)
    assert format_minor(status.charges.fees_added, "USD") == "USD 30.00" and "USD 30.00" in added
    assert "10.00%" in late["cq_charges_formula"] and "36.00%" in late["cq_charges_formula"]
    first_report = (due + timedelta(days=47)).isoformat()  # the notice on day 33, then 14 days
    assert notice_day in late["cq_report_noticed"] and first_report in late["cq_report_noticed"]
    assert "FCRA" in late["cq_record_until"]
    assert "cq_report_will_notice" not in late and "cq_line_will_freeze" not in late

    # an auditor asks for each day's figure: they add up to what the page says was added
    asked = await web.get(
        f"/api/accounts/{account.account_id}/charges", headers={"Authorization": f"Bearer {AUDITOR}"}
    )
    assert asked.status_code == 200, asked.text
    answer = ChargesAnswer.model_validate(asked.json())
    assert (
        sum(d.interest for d in answer.days) == answer.summary.interest_added >= status.charges.interest_added
    )
    assert [d.fee for d in answer.days if d.fee] == [1_500, 1_500]
    assert answer.days[0].day == due + timedelta(days=4) and "USD" in answer.summary.formula["en"]

    # the same in Chinese
    chinese = credit_section((await web.get("/me/account", params={"lang": "zh-CN"})).text)
    assert (
        "冻结" in chinese["cq_line_frozen"]
        and (due + timedelta(days=4)).isoformat() in chinese["cq_line_frozen"]
    )
    assert "利息" in chinese["cq_charges_added"] and first_report in chinese["cq_report_noticed"]
    await harness.finish(account.workflow_id)
