"""Sending SMS and placing calls through the real twilio SDK, exactly once, and only if still lawful.

The order inside :meth:`ContactActivities.send_contact` is the whole point:
1. reserve the attempt under its dedupe key *before* calling the provider, so a retry finds it;
2. run the contact gate against the live database state, so a settlement or hold that landed a
   moment ago wins over a plan made minutes ago;
3. call Twilio; 429/5xx/network errors leave the attempt retryable (the provider did not take it),
   anything else is final.
A try that passes the gate claims the send in the same transaction (``sent_at``), so two tries of
one send, or two sends racing for one account's cap, are decided one after the other. A retry that
finds a claimed reservation with no provider answer asks the provider (messages or calls to that
number from our sender that no attempt of ours owns): it adopts what it finds, and sends only if
the provider has nothing. Only a crash we cannot reconcile leaves an attempt indeterminate.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta

import requests
from temporalio import activity
from temporalio.exceptions import ApplicationError
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from activities.deps import Deps
from domain.accounts import Channel, ContactOutcome, Language
from domain.effects import AWAIT_OUTCOME, SEND_CONTACT, OutcomeRequest, SendRequest, SendResult
from domain.gate import Allow, Audience, Defer, Deny, PlannedContact, decide
from domain.governor import rules_for_profile
from domain.outcomes import CALL_FINAL, MESSAGE_FINAL, call_outcome, error_outcome, message_outcome
from domain.profiles import load_profile
from domain.templates import THIRD_PARTY_PLACEHOLDERS, render
from service.links import self_service_link
from store import repo
from store.governor import voice_verdict
from store.pacing import provider_request, wait_for_slot

FINAL_STATES = {"accepted", "rejected", "denied", "indeterminate"}
VOICE_LANG = {Language.EN: "en-US", Language.ZH_CN: "cmn-CN"}


def _now() -> datetime:
    return datetime.now(UTC)


class ContactActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=SEND_CONTACT, no_thread_cancel_exception=True)
    def send_contact(self, req: SendRequest) -> SendResult:
        deps = self.deps
        # Policy time, never earlier than when the workflow decided (equal to real time in production;
        # ahead of the wall clock under a time-skipping test server or a sped-up demo).
        now = max(req.planned_at, req.clock.policy_now(_now()))
        with deps.sessions.begin() as s:
            snap = repo.account_snapshot(s, req.account_id)
            if snap is None:
                raise ApplicationError(
                    f"account {req.account_id} is not in the database",
                    type="ConfigurationError",
                    non_retryable=True,
                )
            attempt, created = repo.reserve_attempt(
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
        if attempt.state in FINAL_STATES:
            return SendResult(
                outcome=attempt.outcome or ContactOutcome.SENT,
                provider_sid=attempt.provider_sid,
                error_code=attempt.error_code,
                replayed=True,
            )
        if attempt.state == "reserved" and not created and attempt.sent_at is not None:
            # a previous try passed the gate and then died or lost the provider's answer: ask the
            # provider before anything else, so the debtor gets it once, neither twice nor never
            adopted = self._reconcile(req, snap, now)
            if adopted is not None:
                return adopted
        # (a reservation the gate never cleared: nothing can have gone out, this try simply goes on)

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
        verdict = self._live_gate(req, now)
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
            if held is not None:
                return held
        if activity.is_cancelled():
            self._finish(req, now, state="retryable", rule="cancelled", decision="cancelled")
            raise ApplicationError("cancelled before sending", type="Cancelled", non_retryable=True)

        try:
            # the exact per-second limit at the carrier, around the request itself (store/pacing.py)
            with provider_request(deps.sessions, st.twilio_from_number, st.sender_messages_per_second):
                sid, status = self._provider_call(req, snap)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                self._finish(
                    req,
                    now,
                    state="retryable",
                    error_code=exc.code,
                    rule=f"provider.http_{exc.status}",
                    decision="retry",
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
            )
            raise
        self._finish(
            req, now, state="accepted", outcome=ContactOutcome.SENT, provider_sid=sid, provider_status=status
        )
        return SendResult(outcome=ContactOutcome.SENT, provider_sid=sid)

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
    ) -> None:
        """The attempt's new state and its audit line, in one transaction."""
        with self.deps.sessions.begin() as s:
            repo.mark_attempt(
                s,
                req.dedupe_key,
                state=state,
                provider_sid=provider_sid,
                provider_status=provider_status,
                outcome=outcome,
                error_code=error_code,
                now=now,
            )
            repo.audit(
                s,
                at=now,
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
        """The campaign's abandoned/silent-call governor: None when the call may be placed."""
        profile = load_profile(req.profile)
        rules = rules_for_profile(
            profile.max_abandoned_rate, profile.no_redial_after_abandoned_hours, profile.legal_jurisdiction
        )
        with self.deps.sessions.begin() as s:
            gov = voice_verdict(
                s, snap.policy, self._to(req, snap), now, rules=rules, exclude_key=req.dedupe_key
            )
        if gov.allowed:
            return None
        if gov.until is not None:  # 72-hour redial block: the same call, later
            self._finish(
                req,
                now,
                state="retryable",
                rule=gov.rule,
                decision="deferred",
                extra={"until": gov.until.isoformat()},
            )
            return SendResult(outcome=ContactOutcome.DENIED, rule=gov.rule, deferred_until=gov.until)
        # the campaign is at its abandoned-call limit: voice paused, the workflow falls back to SMS
        self._finish(req, now, state="denied", outcome=ContactOutcome.DENIED, rule=gov.rule)
        return SendResult(outcome=ContactOutcome.DENIED, rule=gov.rule)

    def _reconcile(self, req: SendRequest, snap, now: datetime) -> SendResult | None:  # type: ignore[no-untyped-def]
        """Did the provider take this send after all? Adopt its record, or void the clearance.

        The provider's list for this number and our sender, less what our other attempts already
        own: what remains is the message or call a died try made. None when there is none, so the
        caller sends (the twilio client's timeout is well inside the heartbeat timeout, so no earlier
        try can still be in the middle of its call).
        """
        to = self._to(req, snap)
        sender = self.deps.settings.twilio_from_number
        api = self.deps.twilio.messages if req.channel == Channel.SMS else self.deps.twilio.calls
        records = api.list(to=to, from_=sender, limit=50)  # a network error here: retried later
        with self.deps.sessions.begin() as s:
            unclaimed = [r for r in records if r.sid not in repo.claimed_sids(s, [r.sid for r in records])]
            if not unclaimed:
                repo.void_clearance(s, req.dedupe_key, now)
                return None
        found = unclaimed[-1]  # the oldest unclaimed one (lists come newest first)
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

    def _live_gate(self, req: SendRequest, now: datetime):  # type: ignore[no-untyped-def]
        """Decide against the live database and, if allowed, claim the send in the same transaction.

        The account row stays locked from the read to the claim, so two sends racing for one
        account (a reminder and a visit announcement, say) are decided one after the other, and the
        second counts the first: a cap of one text a day stays one.
        """
        contact = PlannedContact(
            channel=req.channel, purpose=req.purpose, template=req.template, at=now, audience=req.audience
        )
        with self.deps.sessions.begin() as s:
            if req.audience == Audience.THIRD_PARTY:  # every message ever sent to them: the total cap
                state, ledger = repo.third_party_gate_inputs(
                    s, req.account_id, now=now, exclude_key=req.dedupe_key
                )
            else:
                state, ledger = repo.live_gate_inputs(
                    s, req.account_id, since=now - timedelta(days=8), now=now, exclude_key=req.dedupe_key
                )
            verdict = decide(contact, state, ledger, now, load_profile(req.profile))
            if isinstance(verdict, Allow) and not repo.clear_for_sending(s, req.dedupe_key, now):
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
        }

    def _third_party_context(self, req: SendRequest, snap) -> dict[str, str]:  # type: ignore[no-untyped-def]
        """Only what a third party may hear: who asks, whom they look for, how to reach us."""
        full = self._context(req, snap)
        return {k: v for k, v in full.items() if k in THIRD_PARTY_PLACEHOLDERS}

    def _callback(self, path: str) -> str | None:
        base = self.deps.settings.public_base_url
        return f"{base.rstrip('/')}{path}" if base else None

    def _provider_call(self, req: SendRequest, snap) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        st = self.deps.settings
        client = self.deps.twilio
        if req.audience == Audience.THIRD_PARTY:
            return self._third_party_call(req, snap)
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
        if req.channel == Channel.SMS:
            kwargs: dict[str, object] = {
                "to": snap.phone,
                "from_": st.twilio_from_number,
                "body": rendered.text,
            }
            if cb := self._callback("/webhooks/twilio/message-status"):
                kwargs["status_callback"] = cb
            msg = client.messages.create(**kwargs)
            return msg.sid, msg.status
        twiml = self.voice_twiml(req, rendered.text)
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

    def _third_party_call(self, req: SendRequest, snap) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        """The locate message to the emergency contact: no amount, no link, no keypad menu."""
        st = self.deps.settings
        to = self._to(req, snap)
        rendered = render(
            req.template,
            req.language.value,
            purpose=req.purpose,
            channel=req.channel,
            context=self._third_party_context(req, snap),
            audience=Audience.THIRD_PARTY,
        )
        if req.channel == Channel.SMS:
            kwargs: dict[str, object] = {"to": to, "from_": st.twilio_from_number, "body": rendered.text}
            if cb := self._callback("/webhooks/twilio/message-status"):
                kwargs["status_callback"] = cb
            msg = self.deps.twilio.messages.create(**kwargs)
            return msg.sid, msg.status
        twiml = VoiceResponse()
        twiml.say(rendered.text, language=VOICE_LANG.get(req.language, "en-US"))
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
        deadline = _time.monotonic() + req.timeout_seconds
        pause = 0.2
        while True:
            activity.heartbeat()
            with self.deps.sessions.begin() as s:
                view = repo.attempt_by_sid(s, req.provider_sid)
            if view is not None and view.outcome not in (None, ContactOutcome.SENT):
                return SendResult(
                    outcome=view.outcome, provider_sid=req.provider_sid, error_code=view.error_code
                )
            outcome, status, code = self._fetch(req)
            if outcome is not None:
                with self.deps.sessions.begin() as s:
                    repo.update_attempt_status_by_sid(
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

    def _fetch(self, req: OutcomeRequest) -> tuple[ContactOutcome | None, str, int | None]:
        client = self.deps.twilio
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
