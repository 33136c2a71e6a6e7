"""The agreed plan in writing, for the debtor: ``GET /me/agreement.pdf`` from their own verified session.

Why it is built this way:

* **Read from the record, not from the workflow** (``store/agreements.py``): the plan row, its
  schedule and the supervisor's waiver decision outlive the run, so a completed or broken plan can
  still be downloaded, and the download never waits on Temporal.
* **Gathering and printing apart.** :func:`agreement_of` turns the database into a checked
  :class:`domain.agreement.Agreement`; ``service/agreement_pdf.py`` turns that into bytes. Each is
  tested on its own, and the renderer cannot reach the database.
* **Only for a session verified by the date of birth** of that account (``service/debtor_signin.py``);
  it is a ``GET`` that changes nothing, so it carries no CSRF token (the cookie is ``SameSite=Lax``
  and the answer is an attachment another site cannot read). ``no-store`` and an audit line per
  download, as for every page of the debtor's.
* **The complaint route is the jurisdiction's** (``complaint_channel`` of the profile the account
  runs; an account pinned to a profile version from before the channel existed gets the file's).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from domain.accounts import Language
from domain.agreement import Agreement, AgreementInstalment, AgreementWaiver, LenderContact
from domain.plans import PlanKind
from domain.profiles import ComplaintChannel, load_profile
from runtime.settings import Settings
from service import debtor_signin, plans
from service import selfservice as pages
from service.agreement_pdf import render_agreement
from service.state import app_sessions, app_settings
from store import rules as rule_store
from store.accounts import AccountSnapshot, account_snapshot
from store.agreements import latest_plan
from store.audit import audit

router = APIRouter()

PATH = "/me/agreement.pdf"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lender_of(settings: Settings) -> LenderContact:
    """The name and number every text and call carries (``{company}``, ``{callback_number}``)."""
    return LenderContact(
        company=settings.company_name, phone=settings.callback_number, page=settings.self_service_url or None
    )


def _complaint_channel(s: Session, snap: AccountSnapshot) -> ComplaintChannel | None:
    pinned = rule_store.profile(s, snap.profile_version, snap.profile)
    if pinned.complaint_channel is not None:
        return pinned.complaint_channel
    try:  # a version pinned before profiles named their channel: the file's is still the right answer
        return load_profile(snap.profile).complaint_channel
    except ValueError:
        return None


def agreement_of(
    s: Session, snap: AccountSnapshot, language: Language, lender: LenderContact
) -> Agreement | None:
    """The account's latest agreed plan as the debtor's agreement (None: no plan was ever agreed).

    Dates are the debtor's own: the day of agreement and of a waiver's approval in the account's
    home zone, the zone every date on the page is in.
    """
    plan = latest_plan(s, snap.account_id)
    if plan is None:
        return None
    zone = ZoneInfo(snap.zones[0])
    waiver = None
    if plan.waived_minor > 0:
        decided = plan.waiver_decided_at
        waiver = AgreementWaiver(
            amount=plan.waived_minor,
            approver=plan.approver or plan.waiver_decided_by,
            approved_on=decided.astimezone(zone).date() if decided is not None else None,
        )
    return Agreement(
        plan_id=plan.plan_id,
        account_id=snap.account_id,
        language=language,
        kind=PlanKind(plan.kind),
        status=plan.status,  # type: ignore[arg-type]  # the table's CHECK holds it to the four states
        currency=plan.currency,
        total=plan.total_minor,
        agreed_on=plan.agreed_at.astimezone(zone).date(),
        instalments=[
            AgreementInstalment(seq=i.seq, due_date=i.due_date, amount=i.amount) for i in plan.instalments
        ],
        waiver=waiver,
        grace_days=plans.terms_of(s, snap).policy_rules.settlement.grace_days,
        lender=lender,
        complaint=_complaint_channel(s, snap),
    )


def filename(agreement: Agreement) -> str:
    return f"agreement-{_UNSAFE.sub('-', agreement.plan_id).strip('-') or 'plan'}.pdf"


def _gather(request: Request, account_id: str, lang: str | None) -> tuple[str, Agreement | None] | None:
    """(the language chosen, the agreement or None), or None for an account no longer on record."""
    lender = lender_of(app_settings(request))
    with app_sessions(request).begin() as s:
        snap = account_snapshot(s, account_id)
        if snap is None:
            return None
        chosen = Language(lang) if lang in pages.LANGS else snap.language
        found = agreement_of(s, snap, chosen, lender)
        if found is not None:
            audit(
                s,
                at=datetime.now(UTC),
                clock="wall",
                account_id=account_id,
                actor="debtor",
                action="self_service",
                decision="agreement_downloaded",
                details={"plan_id": found.plan_id, "language": chosen.value},
            )
        return chosen.value, found


@router.get(PATH, include_in_schema=False)
async def agreement_pdf(request: Request, lang: str | None = None) -> Response:
    """The agreement as an attachment; a friendly page when there is no session, no check, or no plan."""
    found = debtor_signin.current(request)
    if found is None:
        return pages.friendly(request, 401, "session_title", "session_body", lang or "")
    session = found[1]
    if not session.verified:  # nothing about a debt before the date of birth
        return pages.friendly(request, 403, "verify_title", "agreement_verify_body", lang or "")
    gathered = await asyncio.to_thread(_gather, request, session.account_id, lang)
    if gathered is None:
        return pages.friendly(request, 404, "missing_title", "missing_body", lang or "")
    chosen, agreement = gathered
    if agreement is None:
        return pages.friendly(request, 404, "agreement_none_title", "agreement_none_body", chosen)
    data = await asyncio.to_thread(render_agreement, agreement)
    headers = {
        **pages.NO_LEAK,
        "Content-Disposition": f'attachment; filename="{filename(agreement)}"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(data, media_type="application/pdf", headers=headers)
