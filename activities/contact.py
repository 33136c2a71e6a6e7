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

import threading
from datetime import UTC, datetime, timedelta

import requests
from temporalio import activity
from temporalio.exceptions import ApplicationError
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from activities.deps import Deps
from activities.provider_records import (
    FINAL_STATES,
    cleared_since,
    final_if_quick,
    is_this_send,
    poll_outcome,
    replayed_result,
)
from activities.records import apply_change
from domain.accounts import Channel, ContactOutcome, Language
from domain.effects import AWAIT_OUTCOME, SEND_CONTACT, OutcomeRequest, SendRequest, SendResult
from domain.gate import Allow, Audience, Defer, Deny, PlannedContact, decide
from domain.governor import RULE_REDIAL, rules_for_profile
from domain.outcomes import error_outcome
from domain.templates import MAX_QUOTED_CHARS, THIRD_PARTY_PLACEHOLDERS, render
from service.links import self_service_link
from store import notes
from store.accounts import account_snapshot
from store.audit import audit
from store.contacts import (
    attempt_exists,
    claimed_sids,
    clear_for_sending,
    holds_clearance,
    live_gate_inputs,
    mark_attempt,
    reserve_attempt,
    revoke_clearance,
    text_digest,
    third_party_gate_inputs,
    void_clearance,
)
from store.governor import voice_verdict
from store.pacing import NotAdmitted, provider_request, wait_for_slot
from store.rules import profile as pinned_profile

#: Context keys a notice may fill with a note reference (store/notes.py) instead of the text itself.
QUOTED_NOTES = ("reason",)

VOICE_LANG = {Language.EN: "en-US", Language.ZH_CN: "cmn-CN"}
#: Sends of one worker that may wait for their final status at the same time: half the contact
#: queue's slots (workers/setup.py), so the other half always sends at the old pace
FINAL_WAITERS = 4
#: How many of the provider's newest records to that number from our sender reconciliation reads
RECONCILE_LIST_LIMIT = 50


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
                to_address=self._to(req, snap),
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
            adopted = self._reconcile(req, snap, now)
            if adopted is not None:
                return adopted
        # (a reservation the gate never cleared: nothing can have gone out, this try simply goes on)

        # The text this try sends, rendered before the gate so that the clearance stores its digest:
        # a retry that finds the clearance without a provider answer adopts only a record of it.
        text = self._render(req, snap)

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
            self._finish(req, now, state="retryable", rule="cancelled", decision="cancelled")
            raise ApplicationError("cancelled before sending", type="Cancelled", non_retryable=True)
        activity.heartbeat("gate")
        verdict = self._live_gate(req, now, text_digest(text))
        if verdict is None:  # another try of this same send cleared it a moment ago and is sending
            return SendResult(outcome=ContactOutcome.INDETERMINATE, rule="in_flight", replayed=True)
        if isinstance(verdict, Deny):
            self._finish(req, now, state="denied", outcome=ContactOutcome.DENIED, rule=verdict.rule)
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule)
        if isinstance(verdict, Defer):
            self._finish(
                req,
                now,
                state="retryable",
                rule=verdict.rule,
                decision="deferred",
                extra={"until": verdict.until.isoformat()},
            )
            return SendResult(outcome=ContactOutcome.DENIED, rule=verdict.rule, deferred_until=verdict.until)
        if req.channel == Channel.VOICE:
            held = self._governor(req, snap, now)
            if held is not None and req.fallback is not None and held.deferred_until is None:
                # voice paused for the campaign: the step goes by text, in this same activity
                return held.model_copy(update={"fallback": self.send_contact(req.fallback)})
            if held is not None:
                return held
        if activity.is_cancelled():
            self._finish(req, now, state="retryable", rule="cancelled", decision="cancelled", cleared=True)
            raise ApplicationError("cancelled before sending", type="Cancelled", non_retryable=True)

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
                sid, status = self._provider_call(req, snap, text)
        except NotAdmitted:
            # a later try revoked this one's clearance: it owns the send now, this try calls nobody
            # (the server has already timed this try out and will ignore what it returns)
            activity.logger.warning("send %s: try %d lost its clearance, not sending", req.dedupe_key, me)
            return SendResult(outcome=ContactOutcome.INDETERMINATE, rule="in_flight", replayed=True)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                self._finish(
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
            self._finish(
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
            self._finish(
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
            self._finish(
                req,
                now,
                state="reserved",
                rule="provider.unreachable",
                decision="retry",
                extra={"error": type(exc).__name__},
                cleared=True,
            )
            raise
        self._finish(
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

    def _finish(
        self,
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
        with self.deps.sessions.begin() as s:
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

    @staticmethod
    def _to(req: SendRequest, snap) -> str:  # type: ignore[no-untyped-def]
        """Whom this goes to: the debtor, or (third party) the emergency contact on file, if any."""
        if req.audience == Audience.THIRD_PARTY:
            return snap.emergency_phone or ""
        return snap.phone

    def _governor(self, req: SendRequest, snap, now: datetime) -> SendResult | None:  # type: ignore[no-untyped-def]
        """The campaign's abandoned/silent-call governor: None when the call may be placed.

        Under the profile version the account runs (``req.profile_version``), like the live gate.
        ``now`` is policy time, the very instant this call would be stamped with (``sent_at``), so the
        windows are policy windows: under day scaling "24 hours" is one policy day. A rate pause
        says when the governor expects to allow calls again (``voice_paused_until``, policy time).
        """
        with self.deps.sessions.begin() as s:
            profile = pinned_profile(s, req.profile_version, req.profile)
            rules = rules_for_profile(
                profile.max_abandoned_rate,
                profile.no_redial_after_abandoned_hours,
                profile.legal_jurisdiction,
            )
            gov = voice_verdict(
                s, snap.policy, self._to(req, snap), now, rules=rules, exclude_key=req.dedupe_key
            )
        if gov.allowed:
            return None
        if gov.rule == RULE_REDIAL and gov.until is not None:  # 72-hour redial block: the same call, later
            self._finish(
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
        self._finish(
            req,
            now,
            state="denied",
            outcome=ContactOutcome.DENIED,
            rule=gov.rule,
            extra={"paused_until": until.isoformat()} if until is not None else None,
            cleared=True,
        )
        return SendResult(outcome=ContactOutcome.DENIED, rule=gov.rule, voice_paused_until=until)

    def _reconcile(self, req: SendRequest, snap, now: datetime) -> SendResult | None:  # type: ignore[no-untyped-def]
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
        with self.deps.sessions.begin() as s:
            held = revoke_clearance(s, req.dedupe_key, now)
        if held is None or held.state != "reserved" or held.sent_at is None:
            return replayed_result(held)  # another try recorded the answer, or voided, meanwhile
        to = self._to(req, snap)
        sender = self.deps.settings.twilio_from_number
        api = self.deps.twilio.messages if req.channel == Channel.SMS else self.deps.twilio.calls
        since = cleared_since(req, held.sent_at)
        activity.heartbeat("reconcile")
        # newest first; a network error here: the clearance stays revoked, the next try asks again
        records = api.list(to=to, from_=sender, limit=RECONCILE_LIST_LIMIT)
        ours = [r for r in records if is_this_send(req, r, held, to=to, sender=sender, since=since)]
        with self.deps.sessions.begin() as s:
            owned = claimed_sids(s, [r.sid for r in ours])
            unclaimed = [r for r in ours if r.sid not in owned]
            if not unclaimed:
                return replayed_result(void_clearance(s, req.dedupe_key, now))
        found = unclaimed[-1]  # the oldest
        self._finish(
            req,
            now,
            state="accepted",
            outcome=ContactOutcome.SENT,
            provider_sid=found.sid,
            provider_status=found.status,
            rule="provider.reconciled",
        )
        return SendResult(outcome=ContactOutcome.SENT, provider_sid=found.sid, replayed=True)

    def _live_gate(self, req: SendRequest, now: datetime, digest: str):  # type: ignore[no-untyped-def]
        """Decide against the live database and, if allowed, claim the send in the same transaction.

        The account row stays locked from the read to the claim, so two sends racing for one
        account (a reminder and a visit announcement, say) are decided one after the other, and the
        second counts the first: a cap of one text a day stays one. The rules are those of the
        profile version the account runs (``req.profile_version``; the file's current one for an
        account from before versions). The claim records this try (``cleared_by``) and ``digest``,
        the SHA-256 of the text it is about to send.
        """
        contact = PlannedContact(
            channel=req.channel, purpose=req.purpose, template=req.template, at=now, audience=req.audience
        )
        with self.deps.sessions.begin() as s:
            if req.audience == Audience.THIRD_PARTY:  # every message ever sent to them: the total cap
                state, ledger = third_party_gate_inputs(
                    s, req.account_id, now=now, exclude_key=req.dedupe_key
                )
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

    def _context(self, req: SendRequest, snap) -> dict[str, str]:  # type: ignore[no-untyped-def]
        st = self.deps.settings
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
            **self._quoted_notes(req),
        }

    def _quoted_notes(self, req: SendRequest) -> dict[str, str]:
        """Typed text a notice quotes (a declined plan request's reason) reaches the workflow as a
        note reference (store/notes.py), so Temporal never holds it: the text is read back here,
        cut to what the message allows. A reference that no longer resolves is refused, never sent."""
        quoted: dict[str, str] = {}
        for key in QUOTED_NOTES:
            reference = req.context.get(key, "")
            if not notes.REFERENCE.match(reference):
                continue
            with self.deps.sessions.begin() as s:
                text = notes.text_of(s, req.account_id, reference)
            if not text or not text.strip():
                raise ValueError(f"context {key}: {reference} is not a note of account {req.account_id}")
            text = " ".join(text.split())
            if len(text) > MAX_QUOTED_CHARS:
                text = text[: MAX_QUOTED_CHARS - 1].rstrip() + "…"
            quoted[key] = text
        return quoted

    def _third_party_context(self, req: SendRequest, snap) -> dict[str, str]:  # type: ignore[no-untyped-def]
        """Only what a third party may hear: who asks, whom they look for, how to reach us."""
        full = self._context(req, snap)
        return {k: v for k, v in full.items() if k in THIRD_PARTY_PLACEHOLDERS}

    def _callback(self, path: str) -> str | None:
        base = self.deps.settings.public_base_url
        return f"{base.rstrip('/')}{path}" if base else None

    def _render(self, req: SendRequest, snap) -> str:  # type: ignore[no-untyped-def]
        """The text of this try's SMS or call, rendered once, before the gate clears the send.

        Before the gate because the clearance stores its digest (reconciliation compares it); once
        because the signed link in it can differ from one rendering to the next.
        """
        st = self.deps.settings
        if req.audience == Audience.THIRD_PARTY:  # no amount, no link: only what a third party may hear
            return render(
                req.template,
                req.language.value,
                purpose=req.purpose,
                channel=req.channel,
                context=self._third_party_context(req, snap),
                audience=Audience.THIRD_PARTY,
            ).text
        ctx = self._context(req, snap)
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

    def _provider_call(self, req: SendRequest, snap, text: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        st = self.deps.settings
        client = self.deps.twilio
        if req.audience == Audience.THIRD_PARTY:
            return self._third_party_call(req, snap, text)
        if req.channel == Channel.SMS:
            kwargs: dict[str, object] = {
                "to": snap.phone,
                "from_": st.twilio_from_number,
                "body": text,
            }
            if cb := self._callback("/webhooks/twilio/message-status"):
                kwargs["status_callback"] = cb
            msg = client.messages.create(**kwargs)
            return msg.sid, msg.status
        twiml = self.voice_twiml(req, text)
        kwargs = {
            "to": snap.phone,
            "from_": st.twilio_from_number,
            "twiml": str(twiml),
            "timeout": 25,  # ring at least 15 s (Ofcom/FCC), not forever
            "machine_detection": "DetectMessageEnd",
            "async_amd": "true",  # never hold a live person in silence while deciding
        }
        if cb := self._callback("/webhooks/twilio/call-status"):
            kwargs["status_callback"] = cb
            kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
            kwargs["async_amd_status_callback"] = self._callback("/webhooks/twilio/amd")
        call = client.calls.create(**kwargs)
        return call.sid, call.status

    def _third_party_call(self, req: SendRequest, snap, text: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        """The locate message to the emergency contact (``text``: :meth:`_render`'s, no amount, no
        link), and no keypad menu."""
        st = self.deps.settings
        to = self._to(req, snap)
        if req.channel == Channel.SMS:
            kwargs: dict[str, object] = {"to": to, "from_": st.twilio_from_number, "body": text}
            if cb := self._callback("/webhooks/twilio/message-status"):
                kwargs["status_callback"] = cb
            msg = self.deps.twilio.messages.create(**kwargs)
            return msg.sid, msg.status
        twiml = VoiceResponse()
        twiml.say(text, language=VOICE_LANG.get(req.language, "en-US"))
        call = self.deps.twilio.calls.create(
            to=to,
            from_=st.twilio_from_number,
            twiml=str(twiml),
            timeout=25,
            machine_detection="DetectMessageEnd",
            async_amd="true",
        )
        return call.sid, call.status

    def voice_twiml(self, req: SendRequest, text: str) -> VoiceResponse:
        """Speak at once: the identification is the first thing the callee hears (no silent call)."""
        response = VoiceResponse()
        lang = VOICE_LANG.get(req.language, "en-US")
        response.say(text, language=lang)
        if action := self._callback("/webhooks/twilio/gather"):
            gather = response.gather(num_digits=1, action=action, timeout=6)
            prompt = (
                "Press 1 to talk about a plan, 2 to hear your balance, 9 to stop these calls."
                if req.language == Language.EN
                else "协商还款请按1，查询余额请按2，停止来电请按9。"
            )
            gather.say(prompt, language=lang)
        return response

    @activity.defn(name=AWAIT_OUTCOME, no_thread_cancel_exception=True)
    def await_outcome(self, req: OutcomeRequest) -> SendResult:
        """Poll the provider (and the database, which webhooks update) until the outcome is final."""
        return poll_outcome(self.deps, req)
