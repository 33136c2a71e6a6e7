"""Honest pages at every stage: a placed, charged-off, paid or closed account says who holds the debt, what
is still owed, how to pay and until when anyone may contact the debtor (never "nothing more to pay" while
an agency still collects it)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx

from domain.accounts import Mode
from service.standing import Agency, Kind, standing_of
from store import agencies
from tests.service import test_selfservice as debtor_pages
from tests.service.test_selfservice import csrf_of, link_for, overdue, signed_in
from tests.visits.conftest import eventually
from tests.workflows.conftest import NY, Harness, at_local

#: the linked debtor's harness and the web client of the self-service tests
harness, web = debtor_pages.harness, debtor_pages.web
SESSION = re.compile(r"/checkout/simulator/(cs_sim_[\w-]+)")
AGENCY = Agency(
    name="National Recovery Partners", number="+18005550123", since=date(2026, 6, 1), until=date(2027, 6, 1)
)


def _standing(**changes: object):  # type: ignore[no-untyped-def]
    facts: dict[str, object] = dict(
        mode=Mode.DUNNING, closing=None, close_reason=None, owed=50_000, currency="USD", run_open=True,
        agency=None, charged_off_on=date(2026, 6, 1), chargeoff_open_days=30,
    )  # fmt: skip
    facts.update(changes)
    return standing_of(**facts)  # type: ignore[arg-type]


def test_each_stage_says_who_holds_the_debt_and_what_is_owed() -> None:
    assert _standing().kind == Kind.COLLECTING
    placed = _standing(mode=Mode.CLOSED, closing="charged_off", close_reason="placed", agency=AGENCY)
    assert placed.kind == Kind.PLACED and placed.owed == 50_000 and placed.pay_here
    assert placed.contact_until == AGENCY.until and placed.agency == AGENCY
    open_off = _standing(mode=Mode.CLOSED, closing="charged_off", close_reason="charged_off")
    assert (
        open_off.kind == Kind.CHARGED_OFF
        and open_off.payments_until == date(2026, 7, 1)
        and open_off.pay_here
    )
    ended_off = _standing(mode=Mode.CLOSED, close_reason="charged_off", run_open=False)
    assert ended_off.kind == Kind.CHARGED_OFF_ENDED and ended_off.owed == 50_000 and not ended_off.pay_here
    assert _standing(mode=Mode.CLOSED, close_reason="paid", owed=0, run_open=False).kind == Kind.PAID
    settled = _standing(mode=Mode.CLOSED, close_reason="settled", owed=10_000, run_open=False)
    assert settled.kind == Kind.SETTLED and settled.owed == 0  # a settlement for less is not a debt
    for reason in ("written_off", "complaint_upheld", "deceased", "bankrupt"):
        closed = _standing(mode=Mode.CLOSED, close_reason=reason, run_open=False)
        assert closed.kind == Kind.NOT_COLLECTED and closed.owed == 0 and not closed.pay_here
    closing = _standing(closing="written_off")  # still dunning mode, closing: no new money asked
    assert closing.kind == Kind.NOT_COLLECTED and not closing.pay_here


async def _at_chargeoff(harness: Harness, balance: int):  # type: ignore[no-untyped-def]
    account = await overdue(harness, days=178, balance=balance)
    await harness.skip_to(at_local(account.due_date + timedelta(days=180), 12))
    return account


async def test_a_placed_account_names_its_agency_what_is_owed_and_until_when_it_may_call(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await _at_chargeoff(harness, 200_000)

    def placement() -> agencies.PlacementView | None:
        with harness.sessions.begin() as s:
            return agencies.active_placement(s, account.account_id)

    placed = await eventually(placement, "the account is placed at charge-off")
    page = await signed_in(web, link_for(account))
    html = page.text
    assert "nothing more to pay" not in html and "Where your account stands" in html
    assert "National Recovery Partners collects this debt for Acme Finance" in html
    assert "+18005550123" in html and "USD 2,000.00" in html
    until = (placed.placed_at.astimezone(NY) + timedelta(days=365)).date()
    assert f"may contact you until {until.isoformat()} at the latest" in html
    assert 'action="/me/pay"' in html  # a placed account still takes payments from the page

    chinese = await web.get("/me/account", params={"lang": "zh-CN"})
    assert "受 Acme Finance 委托催收此笔欠款" in chinese.text and until.isoformat() in chinese.text


async def test_a_charged_off_account_takes_payments_a_while_then_says_what_was_owed(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await _at_chargeoff(harness, 50_000)  # under the placement minimum: not placed
    chargeoff_day = account.due_date + timedelta(days=180)
    page = await signed_in(web, link_for(account))
    assert "has charged off this debt and no longer contacts you about it" in page.text
    assert f"pay it here until {(chargeoff_day + timedelta(days=30)).isoformat()}" in page.text
    assert "nothing more to pay" not in page.text and 'action="/me/pay"' in page.text

    await harness.skip_to(at_local(chargeoff_day + timedelta(days=32), 12))  # the run has ended
    await harness.handle(account).result()
    ended = await web.get("/me/account")
    assert ended.status_code == 200
    assert "Still owed at charge-off: USD 500.00" in ended.text and 'action="/me/pay"' not in ended.text
    late = await web.post("/me/pay", data={"lang": "en", "csrf": csrf_of(ended), "what": "balance"})
    assert late.status_code == 409  # money now would only go to the refund queue: not asked for


async def test_an_account_paid_from_the_page_says_paid_in_full_after_its_run_ends(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    account = await overdue(harness)
    csrf = csrf_of(await signed_in(web, link_for(account)))
    went = await web.post("/me/pay", data={"lang": "en", "csrf": csrf, "what": "balance"})
    session_id = SESSION.search(went.headers["location"]).group(1)  # type: ignore[union-attr]
    await web.post(f"/checkout/simulator/{session_id}/pay", data={"card": "4242424242424242"})
    await harness.skip_to(at_local((await harness.now()).astimezone(NY).date() + timedelta(days=1), 13))
    await harness.handle(account).result()
    page = await web.get("/me/account")
    assert page.status_code == 200 and "Paid in full. There is nothing more to pay" in page.text
    assert 'id="payments"' in page.text  # the receipt is still there
