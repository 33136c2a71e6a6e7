"""Recording what became of a send attempt: a try's own word, and a retry's adoption of a lost send.

Its own module because both write the attempt row under the same fencing rule, and both are what
make a retry safe. :func:`finish` writes the attempt's new state and its audit line in one
transaction; a try that has lost its claim to a later try (``cleared_by``) no longer changes the
attempt, but an acceptance, a fact, is always recorded.

**Reconciliation.** A retry that finds a claim with no provider answer (the try died, or lost the
answer) revokes it and asks the provider for its messages or calls to that number from our sender.
It adopts only what can be this send: created by the REST API (``outbound-api``), dated at or after
the claim, owned by no attempt of ours and, for a text, with the very body the claiming try
rendered: the text is rendered before the gate and its SHA-256 stored with the claim
(``body_digest``), because a re-render can differ (the signed link). So an automatic reply the
service sent to the same number is never mistaken for the reminder. With nothing to adopt the claim
is voided and the retry gates and sends afresh. Only a crash we cannot reconcile leaves an attempt
indeterminate.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from activities.contact_text import recipient
from activities.deps import Deps
from activities.provider_records import cleared_since, is_this_send, replayed_result
from domain.accounts import Channel, ContactOutcome
from domain.effects import SendRequest, SendResult
from store.accounts import AccountSnapshot
from store.audit import audit
from store.contacts import claimed_sids, mark_attempt, revoke_clearance, void_clearance

#: How many of the provider's newest records to that number from our sender reconciliation reads
RECONCILE_LIST_LIMIT = 50


def finish(
    deps: Deps,
    req: SendRequest,
    now: datetime,
    *,
    state: str,
    outcome: ContactOutcome | None = None,
    rule: str | None = None,
    error_code: int | None = None,
    provider_sid: str | None = None,
    provider_status: str | None = None,
    decision: str | None = None,
    extra: dict[str, str] | None = None,
    cleared: bool = False,
) -> None:
    """The attempt's new state and its audit line, in one transaction.

    ``cleared``: written after this try cleared the send. If a later try has taken the send over
    meanwhile, this try's word no longer changes the attempt (but for an acceptance, a fact);
    the audit line still records what this try saw.
    """
    with deps.sessions.begin() as s:
        mark_attempt(
            s,
            req.dedupe_key,
            state=state,
            provider_sid=provider_sid,
            provider_status=provider_status,
            outcome=outcome,
            error_code=error_code,
            now=now,
            holder=activity.info().attempt if cleared else None,
        )
        audit(
            s,
            at=now,
            clock="policy",
            account_id=req.account_id,
            actor="send_contact",
            action="contact",
            decision=decision or (outcome.value if outcome else state),
            rule=rule,
            details={
                "key": req.dedupe_key,
                "channel": req.channel.value,
                "purpose": req.purpose.value,
                "template": req.template,
                "attempt": str(activity.info().attempt),
                **({"provider_sid": provider_sid} if provider_sid else {}),
                **({"error_code": str(error_code)} if error_code else {}),
                **(extra or {}),
            },
        )


def reconcile(deps: Deps, req: SendRequest, snap: AccountSnapshot, now: datetime) -> SendResult | None:
    """Did the provider take this send after all? Adopt its record, or void the clearance.

    First the clearance is revoked, so the try that held it, if it only stalled, is refused at
    its fence from now on (or passed it before this, and its request is already on its way).
    Then the provider's list for this number from our sender: a record is this send's only if
    it is an ``outbound-api`` one (what the REST API created, as our sends are), dated at or
    after the clearance (:func:`~activities.provider_records.cleared_since`), owned by no attempt of ours, and, for a text,
    of the very body the clearing try rendered (its SHA-256 is stored with the clearance; a
    re-render here could differ, e.g. in the signed link). So the service's automatic replies
    to the same number (HELP, STOP confirmation, plan answers, which own no attempt) and older
    sends are never taken for it. Calls have no body in the list: direction, time, sender,
    number and ownership decide. The oldest such record is adopted; with none, the clearance is
    voided and None returned, so the caller gates and sends afresh.

    Twilio's own list filters are not used for the time: ``DateSent``/``StartTime`` filter on
    when a message was sent or a call started, empty while it is still queued, which is exactly
    what a send lost a moment ago may be.
    """
    with deps.sessions.begin() as s:
        held = revoke_clearance(s, req.dedupe_key, now)
    if held is None or held.state != "reserved" or held.sent_at is None:
        return replayed_result(held)  # another try recorded the answer, or voided, meanwhile
    to = recipient(req, snap)
    sender = deps.settings.twilio_from_number
    api = deps.twilio.messages if req.channel == Channel.SMS else deps.twilio.calls
    since = cleared_since(req, held.sent_at)
    activity.heartbeat("reconcile")
    # newest first; a network error here: the clearance stays revoked, the next try asks again
    records = api.list(to=to, from_=sender, limit=RECONCILE_LIST_LIMIT)
    ours = [r for r in records if is_this_send(req, r, held, to=to, sender=sender, since=since)]
    with deps.sessions.begin() as s:
        owned = claimed_sids(s, [r.sid for r in ours])
        unclaimed = [r for r in ours if r.sid not in owned]
        if not unclaimed:
            return replayed_result(void_clearance(s, req.dedupe_key, now))
    found = unclaimed[-1]  # the oldest
    finish(
        deps,
        req,
        now,
        state="accepted",
        outcome=ContactOutcome.SENT,
        provider_sid=found.sid,
        provider_status=found.status,
        rule="provider.reconciled",
    )
    return SendResult(outcome=ContactOutcome.SENT, provider_sid=found.sid, replayed=True)
