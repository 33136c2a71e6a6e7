"""What one try of a send says, and to whom: the text rendered once, before the gate.

Its own module because the text is fixed before anything is decided: the clearance stores its
SHA-256 (``body_digest``), and a retry that reconciles a lost send adopts only a provider record of
that very body (:mod:`activities.contact_outcome`). So rendering must be deterministic for one try
and must never be repeated after the gate (the signed self-service link can differ from one
rendering to the next). It also holds what a third party may hear (no amount, no link) and the
quoting of typed text through note references, so Temporal never holds it.
"""

from __future__ import annotations

from activities.deps import Deps
from domain.effects import SendRequest
from domain.gate import Audience
from domain.templates import MAX_QUOTED_CHARS, THIRD_PARTY_PLACEHOLDERS, render
from service.links import self_service_link
from store import notes
from store.accounts import AccountSnapshot

#: Context keys a notice may fill with a note reference (store/notes.py) instead of the text itself.
QUOTED_NOTES = ("reason",)


def recipient(req: SendRequest, snap: AccountSnapshot) -> str:
    """Whom this goes to: the debtor, or (third party) the emergency contact on file, if any."""
    if req.audience == Audience.THIRD_PARTY:
        return snap.emergency_phone or ""
    return snap.phone


def context(deps: Deps, req: SendRequest, snap: AccountSnapshot) -> dict[str, str]:
    """The template's placeholders: settings, the live account's fields, then the workflow's own keys."""
    st = deps.settings
    return {
        "company": st.company_name,
        "callback_number": st.callback_number,
        "agent_name": st.agent_name,
        # a per-account signed, expiring link when COLLECT_LINK_SECRET is set (service/links.py)
        "self_service_url": self_service_link(st, req.account_id),
        "name": snap.name.split()[0] if snap.name else "",
        "due_date": snap.due_date.isoformat(),
        "stage": snap.stage or "",
        **req.context,
        **quoted_notes(deps, req),
    }


def quoted_notes(deps: Deps, req: SendRequest) -> dict[str, str]:
    """Typed text a notice quotes (a declined plan request's reason) reaches the workflow as a
    note reference (store/notes.py), so Temporal never holds it: the text is read back here,
    cut to what the message allows. A reference that no longer resolves is refused, never sent."""
    quoted: dict[str, str] = {}
    for key in QUOTED_NOTES:
        reference = req.context.get(key, "")
        if not notes.REFERENCE.match(reference):
            continue
        with deps.sessions.begin() as s:
            text = notes.text_of(s, req.account_id, reference)
        if not text or not text.strip():
            raise ValueError(f"context {key}: {reference} is not a note of account {req.account_id}")
        text = " ".join(text.split())
        if len(text) > MAX_QUOTED_CHARS:
            text = text[: MAX_QUOTED_CHARS - 1].rstrip() + "…"
        quoted[key] = text
    return quoted


def third_party_context(deps: Deps, req: SendRequest, snap: AccountSnapshot) -> dict[str, str]:
    """Only what a third party may hear: who asks, whom they look for, how to reach us."""
    full = context(deps, req, snap)
    return {k: v for k, v in full.items() if k in THIRD_PARTY_PLACEHOLDERS}


def render_text(deps: Deps, req: SendRequest, snap: AccountSnapshot) -> str:
    """The text of this try's SMS or call, rendered once, before the gate clears the send.

    Before the gate because the clearance stores its digest (reconciliation compares it); once
    because the signed link in it can differ from one rendering to the next.
    """
    st = deps.settings
    if req.audience == Audience.THIRD_PARTY:  # no amount, no link: only what a third party may hear
        return render(
            req.template,
            req.language.value,
            purpose=req.purpose,
            channel=req.channel,
            context=third_party_context(deps, req, snap),
            audience=Audience.THIRD_PARTY,
        ).text
    ctx = context(deps, req, snap)
    try:
        rendered = render(
            req.template, req.language.value, purpose=req.purpose, channel=req.channel, context=ctx
        )
    except ValueError:
        if ctx["self_service_url"] == st.self_service_url:
            raise
        # a signed link too long for this text (a very long account id): the bare address instead
        ctx["self_service_url"] = st.self_service_url
        rendered = render(
            req.template, req.language.value, purpose=req.purpose, channel=req.channel, context=ctx
        )
    return rendered.text
