"""What an agent and a debtor do in a real browser, checked against what the workflow then says.

1. An agent logs in, finds an overdue account by stage and days past due, builds a deferral that
   breaks policy (beyond 13 months after becoming overdue) and sees the rule's name before sending
   anything, fixes the date, submits, and sees the account in settlement.
2. A debtor opens the self-service link the SMS carries, sees what is owed and when contact ends in
   their language, and asks for a plan: the workflow then holds dunning for the negotiation.
3. An agent proposes a fee waiver; it waits in the supervisors' queue until one approves it there. The
   debtor then opens their page and downloads the agreement: the PDF's text is the approved plan.
4. A debtor with no link at hand types their number at ``/me``, reads the code the carrier simulator
   received as a text, types it in, confirms the date of birth and sees the account.
5. An agent files and decides a complaint in the console.
6. A debtor gives a new number on their page and confirms it with the code the carrier received.
7. An agent records a new number the debtor gives on the phone and keys in the code the debtor reads out.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdf

from domain.accounts import HoldKind, Mode
from domain.masking import mask_phone
from domain.money import format_minor
from domain.plans import add_months
from service import links
from service.auth import COOKIE
from store.agreements import latest_plan
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import (
    AGENT_TOKEN,
    ARTIFACTS,
    BORN,
    LINK_SECRET,
    SUPERVISOR_TOKEN,
    Stack,
    today_ny,
)
from tests.conftest import random_phone

TIMEOUT_MS = 15_000


async def test_agent_finds_an_account_fixes_a_rejected_plan_and_settles_it(
    stack: Stack, chromium: Any, shots: Any
) -> None:
    account = await stack.overdue_account(40)
    await stack.status(account)  # the first workflow task ran: stage and DPD are searchable
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    # log in: the console sends us to the login form and back
    await page.goto(f"{stack.base}/console")
    assert "/console/login" in page.url
    await page.fill("input[name=token]", AGENT_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.base}/console")
    cookie = next(c for c in await context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # find it: middle stage, 35-45 days past due, no hold (visibility may lag a moment)
    for _ in range(40):
        await page.select_option("select[name=stage]", "middle")
        await page.select_option("select[name=hold]", "none")
        await page.fill("input[name=dpd_min]", "35")
        await page.fill("input[name=dpd_max]", "45")
        await page.click("form[aria-label=search] button[type=submit]")
        await page.wait_for_load_state()
        if await page.locator(f"#results a:text-is('{account.account_id}')").count():
            break
        await asyncio.sleep(0.25)
    await shots(page, "1-search")
    await page.click(f"#results a:text-is('{account.account_id}')")
    await page.wait_for_selector("#builder")
    assert "USD 1,200.00" in await page.inner_text("section[aria-label=status]")
    await shots(page, "2-account")

    # a deferral beyond 13 months after becoming overdue: the preview names the rule, nothing is sent
    too_late = add_months(account.due_date, 13) + timedelta(days=10)
    await page.select_option("#kind", "deferral")
    await page.fill("#first_due", too_late.isoformat())
    await page.click("#preview-button")
    verdict = page.locator("[data-verdict=rejected]")
    await verdict.wait_for()
    assert "deferral.max_months" in await verdict.inner_text()
    await shots(page, "3-rejected")
    assert (await stack.status(account)).mode == Mode.DUNNING

    # fixed: within the limit; the preview now says policy allows it, and the agent submits
    fixed = today_ny() + timedelta(days=30)
    await page.fill("#first_due", fixed.isoformat())
    await page.click("#preview-button")
    await page.locator("[data-verdict=acceptable]").wait_for()
    assert fixed.isoformat() in await page.inner_text("#schedule")
    await page.click("#submit-plan")
    await page.wait_for_selector("text=Plan agreed")
    assert (await page.inner_text("#mode")).strip() == "settlement"
    await shots(page, "4-settled")

    status = await stack.status(account)
    assert status.mode == Mode.SETTLEMENT
    assert status.plan is not None and status.plan.kind == "deferral" and status.plan.proposed_by == "alice"

    # the same page on a phone
    phone = await chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    await phone.add_cookies([cookie])
    small = await phone.new_page()
    await small.goto(f"{stack.base}/console/accounts/{account.account_id}")
    await shots(small, "5-account-phone")
    await phone.close()
    await context.close()


async def test_debtor_opens_the_link_and_requests_a_plan(stack: Stack, chromium: Any, shots: Any) -> None:
    account = await stack.overdue_account(50, language="zh-CN")
    token = links.issue(account.account_id, LINK_SECRET, now=datetime.now(UTC), ttl_days=14)
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    await page.goto(f"{stack.base}/me/{token}")
    # the link leaves the address bar, and nothing about a debt shows before the date of birth
    assert page.url.endswith("/me/account") and token not in page.url
    assert "1,200" not in await page.content()
    await assert_accessible(page, "the date-of-birth form")
    await page.fill("#born", "1984-03-08")
    await page.click("#verify")
    await page.wait_for_selector("#problems")
    assert "1,200" not in await page.content()
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    await page.wait_for_selector("#owed")
    assert await page.get_attribute("html", "lang") == "zh-CN"  # the account's language
    assert "CNY" not in await page.inner_text("#owed") and "USD 1,200.00" in await page.inner_text("#owed")
    chargeoff = account.due_date + timedelta(days=180)
    assert chargeoff.isoformat() in await page.inner_text("#contact-ends")
    assert account.debtor.phone not in await page.content()
    await shots(page, "1-zh")
    await assert_accessible(page, "the account page in Chinese, dunning")

    await page.click("a[hreflang=en]")
    await page.wait_for_selector("html[lang=en]")
    await shots(page, "2-en")
    await page.click("#request-plan")
    await page.wait_for_selector("#done")
    assert "An agent will contact you" in await page.inner_text("#done")
    await shots(page, "3-requested")

    status = await stack.status(account)
    assert HoldKind.NEGOTIATION.value in status.holds
    assert status.mode == Mode.DUNNING

    # a link that was tampered with gets a friendly page, not the account
    forged = await page.goto(f"{stack.base}/me/{token[:-3]}abc")
    assert forged is not None and forged.status == 403
    await shots(page, "4-forged")
    await assert_accessible(page, "the forged link's page")

    # signing out everywhere: the page and the link of the text open nothing any more
    await page.goto(f"{stack.base}/me/account?lang=en")
    await page.click("#sign-out-everywhere")
    await page.wait_for_selector("h1")
    again = await page.goto(f"{stack.base}/me/account")
    assert again is not None and again.status == 401
    old_link = await page.goto(f"{stack.base}/me/{token}")
    assert old_link is not None and old_link.status == 410
    await context.close()


async def test_a_fee_waiver_goes_to_the_supervisors_queue_and_is_approved_there(
    stack: Stack, chromium: Any, shots: Any
) -> None:
    account = await stack.overdue_account(70)
    agent = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await agent.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/console/accounts/{account.account_id}")
    await page.fill("input[name=token]", AGENT_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#builder")
    await page.select_option("#kind", "fee_waiver")
    await page.fill("#first_due", (today_ny() + timedelta(days=10)).isoformat())
    await page.fill("#periods", "4")
    await page.fill("#waiver", "45.00")
    await page.fill("#hardship_evidence", "medical certificate of 2026-10-30")
    await page.click("#preview-button")
    await page.locator("[data-verdict=needs_approval]").wait_for()
    await page.click("#submit-plan")
    await page.wait_for_selector("text=sent to a supervisor")
    await agent.close()
    assert (await stack.status(account)).mode == Mode.DUNNING  # nothing changes before approval

    boss = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await boss.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/console/approvals")
    await page.fill("input[name=token]", SUPERVISOR_TOKEN)
    await page.click("button[type=submit]")
    card = page.locator("section.card", has_text=account.account_id)
    await card.wait_for()
    assert "USD 45.00" in await card.inner_text()
    await shots(page, "1-queue")
    await card.locator("button:text-is('Approve')").click()
    await page.wait_for_selector("text=Approved")
    await shots(page, "2-approved")
    await boss.close()

    status = await stack.status(account)
    assert status.mode == Mode.SETTLEMENT
    assert status.plan is not None and status.plan.approver == "sam" and status.plan.waived == 4_500
    assert status.plan.total == 120_000 - 4_500

    # the debtor opens the page, finds the plan and downloads its agreement in writing
    for _ in range(100):  # the plan's record follows the workflow's answer
        with stack.sessions.begin() as s:
            if latest_plan(s, account.account_id) is not None:
                break
        await asyncio.sleep(0.1)
    token = links.issue(account.account_id, LINK_SECRET, now=datetime.now(UTC), ttl_days=14)
    debtor = await chromium.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = await debtor.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/me/{token}")
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    link = page.locator("#agreement")
    await link.wait_for()
    await link.scroll_into_view_if_needed()
    await shots(page, "3-debtor-plan")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == f"agreement-{status.plan.plan_id}.pdf"
    data = Path(await download.path()).read_bytes()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"agreement-{status.plan.plan_id}.pdf").write_bytes(data)
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    rows = [f"{i.seq} {i.due_date} {format_minor(i.amount, 'USD')}" for i in status.plan.instalments]
    assert len(rows) == 4 and " ".join([*rows, "Total USD 1,155.00"]) in text
    assert "Late fees of USD 45.00 are waived" in text and "Approved by sam on" in text
    assert f"Plan ID {status.plan.plan_id}" in text and "Consumer Financial Protection Bureau" in text
    await debtor.close()


async def test_debtor_promises_then_pays_the_instalment_through_the_checkout_simulator(
    stack: Stack, chromium: Any, shots: Any
) -> None:
    account = await stack.overdue_account(30)
    token = links.issue(account.account_id, LINK_SECRET, now=datetime.now(UTC), ttl_days=14)
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/me/{token}")
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    await page.wait_for_selector("#owed")
    await assert_accessible(page, "the account page")

    # a promise of 300.00 in ten days becomes a plan with one instalment; the page offers to pay it now
    await page.fill('form[action="/me/promise"] input[name=amount]', "300.00")
    await page.click("#promise")
    await page.wait_for_selector("#done")
    await page.wait_for_selector("#pay")
    assert "The next instalment: USD 300.00" in await page.inner_text("#pay")
    await shots(page, "1-pay-choices")
    await assert_accessible(page, "the account page with a plan and the payment choices")
    await page.click("#pay-button")
    await page.wait_for_selector("#card")
    assert "/checkout/simulator/" in page.url and "USD 300.00" in await page.inner_text("h1")
    await shots(page, "2-checkout-simulator")
    await assert_accessible(page, "the checkout simulator")

    await page.fill("#card", "4000 0000 0000 0002")  # the declining test card: nothing is taken
    await page.click("#pay")
    await page.wait_for_selector("#problems")
    assert (await stack.status(account)).paid_total == 0
    await page.fill("#card", "4242 4242 4242 4242")
    await page.click("#pay")
    await page.wait_for_selector("#receipt")
    assert "/me/paid/" in page.url
    assert await page.inner_text("#receipt-amount") == "USD 300.00"
    assert (await page.inner_text("#receipt-reference")).startswith("simulator:pi_sim_")
    assert await page.inner_text("#receipt-balance") == "USD 900.00"  # 1,200.00 owed, 300.00 paid
    await shots(page, "3-receipt")
    await assert_accessible(page, "the receipt")
    status = await stack.status(account)
    assert status.paid_total == 30_000 and status.balance == 90_000

    await page.click("text=Back to your account")
    await page.wait_for_selector("#payments")
    assert "USD 300.00" in await page.inner_text("#payments")
    await page.click("a[hreflang=zh-CN]")
    await page.wait_for_selector("html[lang=zh-CN]")
    await assert_accessible(page, "the account page in Chinese")


async def text_to(simulator: Any, phone: str, contains: str, within: float = 15.0) -> str:
    """The body of the first text to ``phone`` at the carrier simulator that contains ``contains``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        listed = await asyncio.to_thread(simulator.control, "GET", "/_sim/messages", params={"to": phone})
        for message in listed.json():
            if contains in message["body"]:
                return str(message["body"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no text containing {contains!r} reached the carrier")


async def test_debtor_signs_in_with_a_code_from_the_carrier(
    stack: Stack, chromium: Any, shots: Any, simulator: Any
) -> None:
    account = await stack.overdue_account(45, language="zh-CN")
    phone = account.debtor.phone
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    await page.goto(f"{stack.base}/me?lang=zh-CN")
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await shots(page, "1-landing")
    await assert_accessible(page, "the sign-in page (zh-CN)")
    # a number that is not one: the form says so, naming the field
    await page.fill("#phone", "12ab")
    await page.click("#send-code")
    await page.wait_for_selector("#problems")
    assert "手机号码" in await page.inner_text("#problems")
    await shots(page, "2-malformed")
    await assert_accessible(page, "the sign-in page with a form error")

    # the number as a debtor types it, in the country chosen (zh-CN pages start with China)
    assert await page.input_value("#country") == "CN"
    await page.select_option("#country", "US")
    digits = phone.removeprefix("+1")
    await page.fill("#phone", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    await page.check("#via-sms")
    await page.click("#send-code")
    await page.wait_for_selector("#code")
    assert page.url.endswith("/me/code?lang=zh-CN")
    assert "如果该号码在我们的记录中" in await page.inner_text("#code-sent")
    assert "1,200" not in await page.content() and digits[-4:] not in await page.content()
    await shots(page, "3-enter-code")
    await assert_accessible(page, "the code page")

    body = await text_to(simulator, phone, "验证码")  # the account's language
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)  # type: ignore[union-attr]
    await page.fill("#code", code)
    await page.click("#sign-in")
    await page.wait_for_selector("#born")  # the same right-party check a link leads to
    assert page.url.endswith("/me/account?lang=zh-CN") and code not in page.url
    assert "1,200" not in await page.content()
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    await page.wait_for_selector("#owed")
    assert "USD 1,200.00" in await page.inner_text("#owed")
    await shots(page, "4-account")

    # the code was used: typed again in the same browser it opens nothing
    await page.goto(f"{stack.base}/me/code?lang=zh-CN")
    assert page.url.endswith("/me?lang=zh-CN")  # no code asked for here any more: back to the form
    await context.close()


async def test_agent_files_and_decides_a_complaint_in_the_console(
    stack: Stack, chromium: Any, shots: Any
) -> None:
    """4. A debtor complains on the phone: the agent files it on the account page (contact stops at
    once), then decides it there; the hold lifts, and the page names the agent as who decided."""
    account = await stack.overdue_account(35)
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/console/accounts/{account.account_id}")
    await page.fill("input[name=token]", AGENT_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#act-complaint")

    await page.click("#act-complaint summary")
    await page.fill("#act-complaint textarea[name=reason]", "called at work twice")
    await page.select_option("#act-complaint select[name=source]", "debtor")
    await shots(page, "1-filing")
    await page.click("#file-complaint")
    await page.wait_for_selector("text=Complaint filed")
    assert "complaint" in await page.inner_text("h1")
    assert (await stack.status(account)).holds == [HoldKind.COMPLAINT.value]
    await shots(page, "2-filed")

    # the decision form is open on the page: sending it without a decision names the field
    decision = page.locator("#act-complaint-decision")
    assert await decision.get_attribute("open") is not None
    await decision.locator("textarea[name=note]").fill("calls were within hours; apologised")
    await page.click("#decide-complaint")
    await page.wait_for_selector("#refused")
    assert "decision: is required" in await page.inner_text("#refused")
    assert (await stack.status(account)).holds == [HoldKind.COMPLAINT.value]
    await shots(page, "3-refused")

    await page.check("#act-complaint-decision input[value=rejected]")
    await page.click("#decide-complaint")
    await page.wait_for_selector("text=Complaint decided, not upheld")
    assert "complaint" not in await page.inner_text("h1")
    first_decision = page.locator("#decisions tbody tr").first
    assert "alice" in await first_decision.inner_text() and "rejected" in await first_decision.inner_text()
    await shots(page, "4-decided")
    status = await stack.status(account)
    assert status.holds == [] and status.mode == Mode.DUNNING
    await context.close()


async def test_debtor_changes_their_number_with_a_code_from_the_carrier(
    stack: Stack, chromium: Any, shots: Any, simulator: Any
) -> None:
    """6. A debtor with a new phone tells us on their page: the new number gets a code (read here from
    the carrier simulator), and only the code keyed in puts it on file; the run then uses it."""
    account = await stack.overdue_account(25)
    new = random_phone(42)
    token = links.issue(account.account_id, LINK_SECRET, now=datetime.now(UTC), ttl_days=14)
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/me/{token}")
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    await page.wait_for_selector("#owed")

    await page.click("#change-number")
    await page.wait_for_selector("#phone")
    assert mask_phone(account.debtor.phone) in await page.inner_text("#on-file")
    await shots(page, "1-number")
    await assert_accessible(page, "the number page")
    await page.fill("#phone", "12ab")
    await page.click("#send-number-code")
    await page.wait_for_selector("#problems")
    assert "is not a phone number" in await page.inner_text("#problems")
    await assert_accessible(page, "the number page with a form error")

    digits = new.removeprefix("+1")
    await page.fill("#phone", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    await page.click("#send-number-code")
    await page.wait_for_selector("#code")
    assert mask_phone(new) in await page.inner_text("#pending") and new not in await page.content()
    await shots(page, "2-enter-code")
    await assert_accessible(page, "the number page waiting for its code")
    body = await text_to(simulator, new, "confirm this number")
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)  # type: ignore[union-attr]
    await page.fill("#code", f"{(int(code) + 1) % 10**6:06d}")
    await page.click("#confirm-number")
    await page.wait_for_selector("#code-problems")
    assert "Tries left: 4" in await page.inner_text("#code-problems")
    assert (await stack.status(account)).masked_phone == mask_phone(account.debtor.phone)
    await assert_accessible(page, "the number page with a wrong code")
    await page.fill("#code", code)
    await page.click("#confirm-number")
    await page.wait_for_selector("#done")
    assert f"Our messages now go to {mask_phone(new)}" in await page.inner_text("#done")
    await shots(page, "3-confirmed")
    for _ in range(100):  # the run takes the signal a moment after the page answered
        if (await stack.status(account)).masked_phone == mask_phone(new):
            break
        await asyncio.sleep(0.1)
    assert (await stack.status(account)).masked_phone == mask_phone(new)

    await page.goto(f"{stack.base}/me/number?lang=zh-CN")
    assert "您的电话号码" in await page.inner_text("h1")
    await assert_accessible(page, "the number page in Chinese")
    await context.close()


async def test_agent_records_a_number_and_keys_in_the_code_the_debtor_reads_out(
    stack: Stack, chromium: Any, shots: Any, simulator: Any
) -> None:
    """7. The debtor calls in with a new number: the agent records it (unverified: a code goes to it),
    the debtor reads the code out, the agent keys it in, and the page says how the number was confirmed."""
    account = await stack.overdue_account(15)
    new = random_phone(42)
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{stack.base}/console/accounts/{account.account_id}")
    await page.fill("input[name=token]", AGENT_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#act-number")
    assert "as given at intake (not confirmed by code)" in await page.inner_text("#number-how")

    await page.click("#act-number summary")
    await page.fill("#new-number", new)
    await page.click("#record-number")
    await page.wait_for_selector("#number-pending")
    assert mask_phone(new) in await page.inner_text("#number-pending") and new not in await page.content()
    assert (await stack.status(account)).masked_phone == mask_phone(account.debtor.phone)
    await shots(page, "1-pending")
    await assert_accessible(page, "the console's account page with a number waiting for its code")

    body = await text_to(simulator, new, "confirm this number")
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)  # type: ignore[union-attr]
    await page.fill("#number-code", code)
    await page.click("#confirm-number")
    await page.wait_for_selector("text=Number confirmed")
    how = await page.inner_text("#number-how")
    assert how.startswith("confirmed by code on ") and how.endswith("via agent alice; recorded by alice")
    assert await page.locator("#number-pending").count() == 0
    await shots(page, "2-confirmed")
    for _ in range(100):
        if (await stack.status(account)).masked_phone == mask_phone(new):
            break
        await asyncio.sleep(0.1)
    assert (await stack.status(account)).masked_phone == mask_phone(new)
    await context.close()
