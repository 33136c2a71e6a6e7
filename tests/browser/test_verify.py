"""Check who is at the door, in a real browser: the debtor sees the visit on their page with the agency,
its licence and the collector's ID, follows the link to ``/verify``, and a person there looks the ID up.

The visit is stored as the visit activity stores it and named through the store as the agency API
names it (the browser stack has no agency token); everything the browser touches is the real app.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from domain.agencies import load_agencies
from service import links
from store import agencies
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import BORN, LINK_SECRET, NY, Stack, today_ny

TIMEOUT_MS = 15_000
NATIONAL = "National Recovery Partners"


def visit_tomorrow(stack: Stack, account_id: str, collector: str) -> None:
    start = datetime.combine(today_ny() + timedelta(days=1), time(10), tzinfo=NY)
    visit_id = f"account-{account_id}-visit-1"
    with stack.sessions.begin() as s:
        agencies.create_visit(
            s,
            visit_id=visit_id,
            account_id=account_id,
            agency_id="national-recovery",
            window_start=start,
            window_end=start + timedelta(hours=3),
            report_due=start + timedelta(days=2),
            now=datetime.now(UTC),
        )
        agencies.update_visit(s, visit_id, datetime.now(UTC), status="announced")
        agencies.set_collector(s, visit_id, collector, datetime.now(UTC))


async def test_the_debtor_sees_who_visits_and_a_person_at_the_door_checks_the_id(
    stack: Stack, chromium: Any, shots: Any
) -> None:
    account = await stack.overdue_account(100)
    await stack.status(account)
    collector = f"NRP-{uuid.uuid4().hex[:5].upper()}"
    visit_tomorrow(stack, account.account_id, collector)
    licence = load_agencies(stack.settings.agencies_file).get("national-recovery").licence_number  # type: ignore[union-attr]

    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    token = links.issue(account.account_id, LINK_SECRET, now=datetime.now(UTC), ttl_days=14)
    await page.goto(f"{stack.base}/me/{token}")
    await page.fill("#born", BORN.isoformat())
    await page.click("#verify")
    await page.wait_for_selector("#contacts")
    listed = await page.inner_text("#contacts")
    assert f"{NATIONAL}, licence {licence}" in listed and f"Collector ID: {collector}" in listed
    assert f"{(today_ny() + timedelta(days=1)).isoformat()}, 10:00-13:00" in listed
    await page.locator("#contacts").scroll_into_view_if_needed()
    await shots(page, "1-contacts")
    await assert_accessible(page, "the account page with who contacts the debtor")

    # the page's link to the public check; a fresh context: whoever is at the door has no session
    assert await page.get_attribute("#check-link", "href") == "/verify?lang=en"
    door = await chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    check = await door.new_page()
    check.set_default_timeout(TIMEOUT_MS)
    await check.goto(f"{stack.base}/verify")
    assert await check.get_attribute("html", "lang") == "zh-CN"  # the browser's language
    await check.click("a[hreflang=en]")
    await check.wait_for_selector("html[lang=en]")
    await check.fill("#collector_id", collector.lower())
    await check.fill("#agency", NATIONAL)
    await check.click("#check")
    answer = check.locator("#check-answer")
    await answer.wait_for()
    assert await answer.get_attribute("data-answer") == "yes"
    said = await answer.inner_text()
    assert f"Yes: collector {collector} of {NATIONAL}" in said
    whole = await check.content()
    for leak in (account.account_id, "Jane", account.debtor.phone, "10:00", "USD"):
        assert leak not in whole, leak
    await shots(check, "2-yes")
    await assert_accessible(check, "/verify answering yes (zh-CN)")

    await check.fill("#collector_id", f"{collector}9")
    await check.click("#check")
    await check.wait_for_selector("#check-answer[data-answer=no]")
    assert "We cannot confirm this person" in await check.inner_text("#check-answer")
    await shots(check, "3-no")
    await assert_accessible(check, "/verify answering no (zh-CN)")
    await door.close()
    await context.close()
