"""What the provider's records say about our sends: is this record the send a lost try made, is a
status final, and what a settled attempt stands for.

Kept apart from the send itself because these answers are what make a retry safe: reconciliation
adopts a provider record only when :func:`is_this_send` says it can be ours, and a send that waits
for its final status reads it through :func:`poll_outcome`, webhooks first.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.deps import Deps
from domain.accounts import Channel, ContactOutcome
from domain.effects import OutcomeRequest, SendRequest, SendResult
from domain.outcomes import CALL_FINAL, MESSAGE_FINAL, call_outcome, message_outcome
from store.contacts import AttemptView, attempt_by_sid, text_digest, update_attempt_status_by_sid

FINAL_STATES = {"accepted", "rejected", "denied", "indeterminate"}
#: Twilio's ``direction`` of what the REST API created: what our sends are (not ``outbound-reply``,
#: a TwiML answer to an inbound text, nor ``inbound``)
OUTBOUND_API = "outbound-api"
#: How much earlier than our clearance a provider record of our send may be dated: the carrier's
#: clock against ours (NTP on both sides) and a workflow's planned time a hair ahead of the
#: worker's clock. Its ``date_created`` has whole seconds; the clearance is floored to match.
CLEARANCE_SLACK = timedelta(seconds=2)


def _now() -> datetime:
    return datetime.now(UTC)


def replayed_result(view: AttemptView | None) -> SendResult | None:
    """The result an attempt already settled stands for (None: not settled, go on)."""
    if view is None or view.state not in FINAL_STATES:
        return None
    return SendResult(
        outcome=view.outcome or ContactOutcome.SENT,
        provider_sid=view.provider_sid,
        error_code=view.error_code,
        replayed=True,
    )


def cleared_since(req: SendRequest, sent_at: datetime) -> datetime | None:
    """The earliest date the provider can have given a record of a send cleared at ``sent_at``.

    ``sent_at`` is policy time: ``max(planned_at, clock.policy_now(real))`` at the clearance. Mapped
    back to real time it is the real clearance (production, where the clocks are one, and the
    sped-up demo), less :data:`CLEARANCE_SLACK` for clock skew and whole seconds. None (no time
    bound) when it maps to a real instant still to come: the policy time was the workflow's
    planned time, ahead of the wall clock (a time-skipping test server), and says nothing of
    when the clearance really was.
    """
    real = req.clock.real_at(sent_at)
    if real > _now():
        return None
    return real.replace(microsecond=0) - CLEARANCE_SLACK


def is_this_send(
    req: SendRequest,
    record,  # type: ignore[no-untyped-def]
    held: AttemptView,
    *,
    to: str,
    sender: str,
    since: datetime | None,
) -> bool:
    """May this provider record (a message or call instance) be the send ``held`` cleared?"""
    # the SDK names ``from`` ``from_`` on a message and ``_from`` on a call
    record_from = getattr(record, "from_", None) or getattr(record, "_from", None)
    if str(record.direction or "") != OUTBOUND_API or record.to != to or record_from != sender:
        return False
    if since is not None and (record.date_created is None or record.date_created < since):
        return False
    if req.channel == Channel.SMS and held.body_digest is not None:
        # (a clearance from before digests were stored has none: ownership, time and sender decide)
        return text_digest(record.body or "") == held.body_digest
    return True


#: What a send that waits for its final status leaves of its start-to-close timeout (to answer in time)
FINAL_WAIT_MARGIN = timedelta(seconds=10)


def final_if_quick(
    deps: Deps, waiters: threading.BoundedSemaphore, req: SendRequest, sent: SendResult
) -> SendResult:
    """With ``req.wait_final_seconds``, wait here for the provider's final status (delivered,
    undelivered, …) instead of returning at once: one activity per contact instead of two, and one
    workflow task less. Bounded by what is left of this try's start-to-close timeout; a status
    not final by then, an error while asking, or a cancellation (the message is out, so this is
    no withdrawal) returns plain SENT, and the workflow asks again with ``await_outcome``."""
    if req.wait_final_seconds <= 0 or sent.provider_sid is None:
        return sent
    info = activity.info()
    budget = float(req.wait_final_seconds)
    if info.start_to_close_timeout is not None:
        deadline = info.started_time + info.start_to_close_timeout - FINAL_WAIT_MARGIN
        budget = min(budget, (deadline - _now()).total_seconds())
    if budget <= 0 or not waiters.acquire(blocking=False):
        return sent
    try:
        final = poll_outcome(
            deps,
            OutcomeRequest(
                dedupe_key=req.dedupe_key,
                provider_sid=sent.provider_sid,
                channel=req.channel,
                timeout_seconds=budget,
            ),
        )
    except Exception as exc:  # the send itself succeeded: never retry it for a status question
        activity.logger.warning("send %s: final status not read: %s", req.dedupe_key, type(exc).__name__)
        return sent
    finally:
        waiters.release()
    return final.model_copy(update={"replayed": sent.replayed})


def poll_outcome(deps: Deps, req: OutcomeRequest) -> SendResult:
    """The database (webhooks land there first), then the provider, until final, cancelled or
    ``req.timeout_seconds`` passed (then SENT), heartbeating all along."""
    deadline = _time.monotonic() + req.timeout_seconds
    pause = deps.settings.status_poll_first_seconds
    while True:
        activity.heartbeat()
        with deps.sessions.begin() as s:
            view = attempt_by_sid(s, req.provider_sid)
        if view is not None and view.outcome not in (None, ContactOutcome.SENT):
            return SendResult(outcome=view.outcome, provider_sid=req.provider_sid, error_code=view.error_code)
        outcome, status, code = fetch_status(deps, req)
        if outcome is not None:
            with deps.sessions.begin() as s:
                update_attempt_status_by_sid(
                    s,
                    req.provider_sid,
                    provider_status=status,
                    outcome=outcome,
                    error_code=code,
                    now=_now(),
                )
            return SendResult(outcome=outcome, provider_sid=req.provider_sid, error_code=code)
        if _time.monotonic() > deadline or activity.is_cancelled():
            return SendResult(outcome=ContactOutcome.SENT, provider_sid=req.provider_sid)
        _time.sleep(pause)
        pause = min(pause * 1.5, 5.0)


def fetch_status(deps: Deps, req: OutcomeRequest) -> tuple[ContactOutcome | None, str, int | None]:
    client = deps.twilio
    if req.channel == Channel.SMS:
        msg = client.messages(req.provider_sid).fetch()
        status = (msg.status or "").lower()
        code = int(msg.error_code) if msg.error_code else None
        if status in MESSAGE_FINAL:
            return message_outcome(status, code), status, code
        return None, status, code
    call = client.calls(req.provider_sid).fetch()
    status = (call.status or "").lower()
    if status in CALL_FINAL:
        duration = int(call.duration) if call.duration not in (None, "") else None
        return call_outcome(status, getattr(call, "answered_by", None), duration), status, None
    return None, status, None
