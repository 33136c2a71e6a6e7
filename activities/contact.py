"""Sending SMS and placing calls through the real twilio SDK, exactly once, and only if still lawful.

The order inside :meth:`ContactActivities.send_contact` is the whole point:
1. reserve the attempt under its dedupe key *before* calling the provider, so a retry finds it;
2. run the contact gate against the live database state, so a settlement or hold that landed a
   moment ago wins over a plan made minutes ago;
3. call Twilio; 429/5xx/network errors leave the attempt retryable (the provider did not take it),
   anything else is final.
A try that passes the gate claims the send in the same transaction (``sent_at``), so two tries of
one send, or two sends racing for one account's cap, are decided one after the other. The gate
uses the profile version the account runs (``SendRequest.profile_version``, ``store/rules.py``),
the same rules as its workflow, whatever the profile file says today.

**Fencing.** The claim records which try holds it (``cleared_by``, the activity attempt number),
and the try checks that it still does at the last moment, in the transaction that admits its
provider request (``store/pacing.py``), after a heartbeat and with nothing but the request after
it. Every wait of a try heartbeats (the send slot, the per-second window, reconciliation), so the
server times a try out only when it is truly stuck; a try stuck after its claim (a database lock,
say) may then be overtaken by its retry, which revokes the claim before anything else. When the
stuck try wakes, its fence refuses it: it calls nobody, changes nothing on the attempt, and returns
"in flight" (the server ignores it). Only the try holding the claim writes the attempt's
non-final states after the call; an acceptance is always recorded.

Everything else a send does has its own module, so that this one keeps only the order, the one
thing that must be read in one place: the text in :mod:`activities.contact_text`, the live gate and
the call governor in :mod:`activities.contact_checks`, the Twilio request in
:mod:`activities.contact_provider`, and the recording of each try's word and the reconciliation of
a claim with no provider answer in :mod:`activities.contact_outcome`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import requests
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from activities import contact_provider
from activities.contact_checks import governor, live_gate
from activities.contact_outcome import RECONCILE_LIST_LIMIT, finish, reconcile
from activities.contact_provider import VOICE_LANG, provider_call
from activities.contact_text import QUOTED_NOTES, recipient, render_text
from activities.deps import Deps
from activities.provider_records import FINAL_STATES, final_if_quick, poll_outcome
from activities.records import apply_change
from domain.accounts import Channel, ContactOutcome
from domain.effects import AWAIT_OUTCOME, SEND_CONTACT, OutcomeRequest, SendRequest, SendResult
from domain.gate import Defer, Deny
from domain.outcomes import error_outcome
from store.accounts import account_snapshot
from store.contacts import attempt_exists, holds_clearance, reserve_attempt, text_digest
from store.pacing import NotAdmitted, provider_request, wait_for_slot

#: What this module offers: the activities, and the constants that lived here before the split.
#: ``provider_request`` stays a name of this module: tests stall a try by replacing it here.


def cancelled_before_sending() -> ApplicationError:
    """What a send the workflow called off (a payment, a plan, a STOP, a shutdown) fails with: the same
    failure as always for the workflow, marked benign so the worker logs it at debug level, not as a
    warning with a traceback (an operator reading the log would take a called-off send for a fault)."""
    return ApplicationError(
        "cancelled before sending",
        type="Cancelled",
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


__all__ = [
    "FINAL_WAITERS",
    "QUOTED_NOTES",
    "RECONCILE_LIST_LIMIT",
    "VOICE_LANG",
    "ContactActivities",
    "provider_request",
]

#: Sends of one worker that may wait for their final status at the same time: half the contact
#: queue's slots (workers/setup.py), so the other half always sends at the old pace
FINAL_WAITERS = 4


def _now() -> datetime:
    return datetime.now(UTC)


class ContactActivities:
    def __init__(self, deps: Deps, *, final_waiters: int = FINAL_WAITERS) -> None:
        self.deps = deps
        # sends that may wait for their final status at once: the others answer at once, so the
        # wait never takes the slots sending needs (a slow delivery report must not slow the sender)
        self._final_waiters = threading.BoundedSemaphore(final_waiters)

    @activity.defn(name=SEND_CONTACT, no_thread_cancel_exception=True)
    def send_contact(self, req: SendRequest) -> SendResult:
        deps = self.deps
        me = activity.info().attempt  # which try this is: the clearance records it (cleared_by)
        # Policy time, never earlier than when the workflow decided (equal to real time in production;
        # ahead of the wall clock under a time-skipping test server or a sped-up demo).
        now = max(req.planned_at, req.clock.policy_now(_now()))
        with deps.sessions.begin() as s:
            snap = account_snapshot(s, req.account_id)
            if snap is None:
                raise ApplicationError(
                    f"account {req.account_id} is not in the database",
                    type="ConfigurationError",
                    non_retryable=True,
                )
            fresh = bool(req.changes) and not attempt_exists(s, req.dedupe_key)
            attempt, created = reserve_attempt(
                s,
                dedupe_key=req.dedupe_key,
                account_id=req.account_id,
                channel=req.channel,
                purpose=req.purpose.value,
                template=req.template,
                to_address=recipient(req, snap),
                now=now,
                audience=req.audience,
            )
            if fresh and created:
                # what the workflow noted since its last write (a stage entered on this wake) is
                # written with the reservation, once: a later try finds the reservation and skips it
                for change in req.changes:
                    apply_change(s, change)
        if attempt.state in FINAL_STATES:
            replayed = SendResult(
                outcome=attempt.outcome or ContactOutcome.SENT,
                provider_sid=attempt.provider_sid,
                error_code=attempt.error_code,
                replayed=True,
            )
            if req.fallback is not None and attempt.outcome == ContactOutcome.DENIED:
                # a try that was refused by the governor and died before its text: the text now
                # (under its own dedupe key: if it went already, this finds it and sends nothing)
                return replayed.model_copy(update={"fallback": self.send_contact(req.fallback)})
            return replayed
        if attempt.state == "reserved" and not created and attempt.sent_at is not None:
            # a previous try passed the gate and then died or lost the provider's answer: ask the
            # provider before anything else, so the debtor gets it once, neither twice nor never
            adopted = reconcile(deps, req, snap, now)
            if adopted is not None:
                return adopted
        # (a reservation the gate never cleared: nothing can have gone out, this try simply goes on)

        # The text this try sends, rendered before the gate so that the clearance stores its digest:
        # a retry that finds the clearance without a provider answer adopts only a record of it.
        text = render_text(deps, req, snap)

        # The sender's next send slot, shared by every worker (store/pacing.py), taken before the gate
        # so that the gate stays the last check before the provider: what lands while we wait wins.
        st = deps.settings
        slot = wait_for_slot(
            deps.sessions,
            st.twilio_from_number,
            st.sender_messages_per_second,
            heartbeat=lambda: activity.heartbeat("pacing"),
            cancelled=activity.is_cancelled,
        )
        if slot is None:
            finish(deps, req, now, state="retryable", rule="cancelled", decision="cancelled")
            raise cancelled_before_sending()
        activity.heartbeat("gate")
        verdict = live_gate(deps, req, now, text_digest(text))
        if verdict is None:  # another try of this same send cleared it a moment ago and is sending
            return SendResult(outcome=ContactOutcome.INDETERMINATE, rule="in_flight", replayed=True)
        if isinstance(verdict, Deny):
            finish(deps, req, now, state="denied", outcome=ContactOutcome.DENIED, rule=verdict.rule)
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule)
        if isinstance(verdict, Defer):
            finish(
                deps,
                req,
                now,
                state="retryable",
                rule=verdict.rule,
                decision="deferred",
                extra={"until": verdict.until.isoformat()},
            )
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule, deferred_until=verdict.until)
        if req.channel == Channel.VOICE:
            held = governor(deps, req, snap, now)
            if held is not None and req.fallback is not None and held.deferred_until is None:
                # voice paused for the campaign: the step goes by text, in this same activity
                return held.model_copy(update={"fallback": self.send_contact(req.fallback)})
            if held is not None:
                return held
        if activity.is_cancelled():
            finish(deps, req, now, state="retryable", rule="cancelled", decision="cancelled", cleared=True)
            raise cancelled_before_sending()

        try:
            # The exact per-second limit at the carrier, around the request itself (store/pacing.py),
            # heartbeating while it waits. Its admission is the fence: right after a heartbeat, with
            # nothing but the request after it, this try checks that it still holds the clearance.
            # A try that stalled after its clearance (a long wait, a database lock) may have been
            # timed out by the server, and its retry may have taken the send over and sent it.
            with provider_request(
                deps.sessions,
                st.twilio_from_number,
                st.sender_messages_per_second,
                heartbeat=lambda: activity.heartbeat("provider"),
                admit_if=lambda s: holds_clearance(s, req.dedupe_key, me),
            ):
                sid, status = provider_call(deps, req, snap, text)
        except NotAdmitted:
            # a later try revoked this one's clearance: it owns the send now, this try calls nobody
            # (the server has already timed this try out and will ignore what it returns)
            activity.logger.warning("send %s: try %d lost its clearance, not sending", req.dedupe_key, me)
            return SendResult(outcome=ContactOutcome.INDETERMINATE, rule="in_flight", replayed=True)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                finish(
                    deps,
                    req,
                    now,
                    state="retryable",
                    error_code=exc.code,
                    rule=f"provider.http_{exc.status}",
                    decision="retry",
                    cleared=True,
                )
                raise  # Temporal retries with backoff; the reservation lets the retry send
            outcome = error_outcome(exc.code)
            finish(
                deps,
                req,
                now,
                state="rejected",
                outcome=outcome,
                error_code=exc.code,
                rule=f"provider.error_{exc.code}",
                cleared=True,
            )
            return SendResult(outcome=outcome, error_code=exc.code)
        except requests.exceptions.ConnectionError as exc:
            # never reached the provider (refused, DNS, connect timeout): nothing was taken
            finish(
                deps,
                req,
                now,
                state="retryable",
                rule="provider.unreachable",
                decision="retry",
                extra={"error": type(exc).__name__},
                cleared=True,
            )
            raise
        except Exception as exc:
            # the request went out but no answer came back (read timeout, broken connection): the
            # provider may have taken it. The attempt stays reserved and cleared, so the retry asks
            # the provider (see _reconcile) instead of sending blind.
            finish(
                deps,
                req,
                now,
                state="reserved",
                rule="provider.unreachable",
                decision="retry",
                extra={"error": type(exc).__name__},
                cleared=True,
            )
            raise
        finish(
            deps,
            req,
            now,
            state="accepted",
            outcome=ContactOutcome.SENT,
            provider_sid=sid,
            provider_status=status,
            cleared=True,
        )
        return final_if_quick(
            self.deps, self._final_waiters, req, SendResult(outcome=ContactOutcome.SENT, provider_sid=sid)
        )

    def voice_twiml(self, req: SendRequest, text: str) -> VoiceResponse:
        """Speak at once: the identification is the first thing the callee hears (no silent call)."""
        return contact_provider.voice_twiml(self.deps, req, text)

    @activity.defn(name=AWAIT_OUTCOME, no_thread_cancel_exception=True)
    def await_outcome(self, req: OutcomeRequest) -> SendResult:
        """Poll the provider (and the database, which webhooks update) until the outcome is final."""
        return poll_outcome(self.deps, req)
