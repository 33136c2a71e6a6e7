"""Is this send still lawful, right now? The live contact gate and the campaign's call governor.

Its own module because these are the last checks before the provider, and they read the live
database, not the plan: a settlement, hold or opt-out that landed a moment ago wins over a plan
made minutes ago. Both judge by the profile version the account runs (``SendRequest.profile_version``,
``store/rules.py``), the same rules as its workflow, whatever the profile file says today. The gate
claims the send in the transaction that decides it (``sent_at``, ``cleared_by``), so two tries of
one send, or two sends racing for one account's cap, are decided one after the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity

from activities.contact_outcome import finish
from activities.contact_text import recipient
from activities.deps import Deps
from domain.accounts import ContactOutcome
from domain.effects import SendRequest, SendResult
from domain.gate import Allow, Audience, Defer, Deny, PlannedContact, decide
from domain.governor import RULE_REDIAL, rules_for_profile
from store.accounts import AccountSnapshot
from store.contacts import clear_for_sending, live_gate_inputs, third_party_gate_inputs
from store.governor import voice_verdict
from store.rules import profile as pinned_profile


def live_gate(deps: Deps, req: SendRequest, now: datetime, digest: str) -> Allow | Defer | Deny | None:
    """Decide against the live database and, if allowed, claim the send in the same transaction.

    The account row stays locked from the read to the claim, so two sends racing for one
    account (a reminder and a visit announcement, say) are decided one after the other, and the
    second counts the first: a cap of one text a day stays one. The rules are those of the
    profile version the account runs (``req.profile_version``; the file's current one for an
    account from before versions). The claim records this try (``cleared_by``) and ``digest``,
    the SHA-256 of the text it is about to send. None: another try of this same send claimed it.
    """
    contact = PlannedContact(
        channel=req.channel, purpose=req.purpose, template=req.template, at=now, audience=req.audience
    )
    with deps.sessions.begin() as s:
        if req.audience == Audience.THIRD_PARTY:  # every message ever sent to them: the total cap
            state, ledger = third_party_gate_inputs(s, req.account_id, now=now, exclude_key=req.dedupe_key)
        else:
            state, ledger = live_gate_inputs(
                s, req.account_id, since=now - timedelta(days=8), now=now, exclude_key=req.dedupe_key
            )
        profile = pinned_profile(s, req.profile_version, req.profile)
        verdict = decide(contact, state, ledger, now, profile)
        if isinstance(verdict, Allow) and not clear_for_sending(
            s, req.dedupe_key, now, attempt=activity.info().attempt, body_digest=digest
        ):
            return None
    return verdict


def governor(deps: Deps, req: SendRequest, snap: AccountSnapshot, now: datetime) -> SendResult | None:
    """The campaign's abandoned/silent-call governor: None when the call may be placed.

    Under the profile version the account runs (``req.profile_version``), like the live gate.
    ``now`` is policy time, the very instant this call would be stamped with (``sent_at``), so the
    windows are policy windows: under day scaling "24 hours" is one policy day. A rate pause
    says when the governor expects to allow calls again (``voice_paused_until``, policy time).
    A refusal is recorded on the attempt here (the try holds the clearance).
    """
    with deps.sessions.begin() as s:
        profile = pinned_profile(s, req.profile_version, req.profile)
        rules = rules_for_profile(
            profile.max_abandoned_rate,
            profile.no_redial_after_abandoned_hours,
            profile.legal_jurisdiction,
        )
        gov = voice_verdict(
            s, snap.policy, recipient(req, snap), now, rules=rules, exclude_key=req.dedupe_key
        )
    if gov.allowed:
        return None
    if gov.rule == RULE_REDIAL and gov.until is not None:  # 72-hour redial block: the same call, later
        finish(
            deps,
            req,
            now,
            state="retryable",
            rule=gov.rule,
            decision="deferred",
            extra={"until": gov.until.isoformat()},
            cleared=True,
        )
        return SendResult(outcome=ContactOutcome.DENIED, rule=gov.rule, deferred_until=gov.until)
    # the campaign is at its abandoned-call limit: voice paused, the workflow falls back to SMS
    until = gov.paused_until
    finish(
        deps,
        req,
        now,
        state="denied",
        outcome=ContactOutcome.DENIED,
        rule=gov.rule,
        extra={"paused_until": until.isoformat()} if until is not None else None,
        cleared=True,
    )
    return SendResult(outcome=ContactOutcome.DENIED, rule=gov.rule, voice_paused_until=until)
