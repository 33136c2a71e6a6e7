"""Sending a sign-in code: a text, or a short call that reads it out where texts cannot reach.

Why it is built this way:

* **Not collection contact.** The debtor asked for the code a moment ago and is waiting at the page,
  so it goes at once, at any hour: no contact gate, no quiet hours, no frequency caps, and it is not a
  contact attempt (it would count against the debtor's own caps). It goes only to the number on file
  (the number typed matched an account's contact point; emergency contacts are never looked at).
* **Through the real twilio SDK, from our sender number, inside the sender's carrier limit**
  (:func:`store.pacing.provider_request`: the same exact per-second window the send activity uses,
  but not the dunning schedule, so a code does not wait behind a campaign's backlog).
* **A text unless texts cannot reach the number.** A number that replied STOP and not START since
  (:mod:`store.sms_opt_outs`), or a debtor who chose a call, gets the call. A text the carrier refuses
  (21610 unsubscribed: then the number is noted as blocked; 21614 not a mobile; 21612 …) or reports
  undelivered or failed (a landline, an unreachable handset) is followed by the call.
* **The call speaks at once**: ``<Say>`` in the debtor's language, our name first (never a silent
  call), the digits one by one with a pause between them, twice. No word about a debt: whoever answers
  or a voicemail box hears only a sign-in code.
* **After the answer has gone.** :func:`after_answer` starts the audit line and the sending as a task
  of their own once the answer is out, for every number alike, so the page answers in the same time
  whether or not a code is sent (no account enumeration by timing), and a slow carrier never holds
  the debtor's browser.
* **The same sending confirms a new number** (``service/contact_numbers.py``): a ``contact``
  delivery says it is a code to confirm the number (no word about a debt: the number is not the
  debtor's until the code comes back), is audited as ``contact_code`` under the person who asked
  for it, and is sent at once like a sign-in code, to the new number only.
* Each code sent, and each that could not be, is in the audit log; the number is masked there and in
  the logs (:func:`domain.masking.mask_phone`), the code never appears in either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from domain.accounts import Language
from domain.masking import mask_phone
from runtime.settings import Settings
from service.selfservice import Texts
from service.state import app_sessions, app_settings
from service.twiml import VOICE_LANG
from store import sms_opt_outs
from store.audit import audit
from store.pacing import provider_request

log = logging.getLogger("humane_collect.signin")

#: the carrier refused the text because the number cannot take texts from us: read it out instead
REFUSED_TEXT = frozenset({21610, 21612, 21614, 21408})
#: how long to follow a text's delivery before giving up on a fallback call (well within the 5 minutes)
FOLLOW_SECONDS = 60.0
FINAL_SMS = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
#: deliveries under way at once per service process (each may follow its text for a minute); more queue
DELIVERY_THREADS = 8


@dataclass(frozen=True)
class Delivery:
    """One code to deliver: to whom, in which language, and how the debtor asked for it."""

    account_id: str
    phone: str
    code: str
    language: Language
    via: str  # "sms" or "voice"
    #: "signin" (a code to sign in at /me) or "contact" (a code confirming a newly recorded number)
    kind: str = "signin"
    #: who the audit lines name: the sign-in's sender, or the person who asked for a confirmation code
    actor: str = "self_service"

    @property
    def action(self) -> str:
        return "contact_code" if self.kind == "contact" else "signin_code"


#: the strings of each kind of code: (text, call, call again)
WORDING = {
    "signin": ("code_sms", "code_voice", "code_voice_again"),
    "contact": ("confirm_sms", "confirm_voice", "confirm_voice_again"),
}


def code_text(language: Language, company: str, code: str, kind: str = "signin") -> str:
    """The text: who sends it, the code, how long it works, never to share it (one SMS segment)."""
    return Texts(language.value)(WORDING[kind][0], company=company, code=code)


def code_twiml(language: Language, company: str, code: str, kind: str = "signin") -> str:
    """The call: our name and the code at once, digit by digit, then the code again."""
    t = Texts(language.value)
    _, first, again = WORDING[kind]
    digits = t("code_voice_separator").join(code)
    lang = VOICE_LANG.get(language, "en-US")
    response = VoiceResponse()
    response.say(t(first, company=company, digits=digits), language=lang)
    response.pause(length=1)
    response.say(t(again, digits=digits), language=lang)
    return str(response)


def twilio_of(app: FastAPI, settings: Settings) -> Any:
    """The app's twilio SDK client (made once), aimed at the configured base URL (the simulator)."""
    client = getattr(app.state, "twilio", None)
    if client is None:
        from activities.twilio_client import make_twilio_client

        client = app.state.twilio = make_twilio_client(
            settings.twilio_sid, settings.twilio_token, settings.twilio_base
        )
    return client


class Sender:
    """Delivers codes with one settings object, database and twilio client (a worker thread's work)."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], twilio: Any) -> None:
        self.settings = settings
        self.sessions = sessions
        self.twilio = twilio

    def deliver(self, d: Delivery) -> str:
        """Send ``d`` and return the channel it finally went by ("sms", "voice" or "failed")."""
        why = "asked" if d.via == "voice" else ""
        if d.via == "sms":
            with self.sessions.begin() as s:
                if sms_opt_outs.texts_blocked(s, d.phone):
                    why = "texts_blocked"
        if not why:
            why = self._text(d)
            if not why:
                return "sms"
        return "voice" if self._call(d, why) else "failed"

    # ---- the text ------------------------------------------------------------------------------
    def _text(self, d: Delivery) -> str:
        """Send the text and follow it; "" once delivered (or still on its way), else why it was not."""
        st = self.settings
        try:
            with provider_request(self.sessions, st.twilio_from_number, st.sender_messages_per_second):
                message = self.twilio.messages.create(
                    to=d.phone,
                    from_=st.twilio_from_number,
                    body=code_text(d.language, st.company_name, d.code, d.kind),
                )
        except TwilioRestException as exc:
            if exc.code == 21610:
                self._blocked(d.phone, "21610")
            self._audit(d, "refused", channel="sms", error=exc.code)
            return (
                f"sms_refused_{exc.code}"
                if exc.code in REFUSED_TEXT
                else f"sms_error_{exc.code or exc.status}"
            )
        except Exception as exc:  # the carrier unreachable: a call may still get through
            log.warning("%s text to %s failed: %s", d.action, mask_phone(d.phone), type(exc).__name__)
            self._audit(d, "failed", channel="sms", error=type(exc).__name__)
            return "sms_unsent"
        self._audit(d, "sent", channel="sms", sid=message.sid)
        status, error = self._follow(message.sid)
        if status in ("undelivered", "failed"):
            if error == 21610:
                self._blocked(d.phone, "21610")
            self._audit(d, "undelivered", channel="sms", sid=message.sid, error=error)
            return f"sms_{status}_{error}"
        return ""

    def _follow(self, sid: str) -> tuple[str, int | None]:
        """The text's status once final, or the last one seen after :data:`FOLLOW_SECONDS`."""
        deadline = time.monotonic() + FOLLOW_SECONDS
        pause = self.settings.status_poll_first_seconds
        status, error = "", None
        while time.monotonic() < deadline:
            try:
                found = self.twilio.messages(sid).fetch()
                status, error = found.status, found.error_code
            except Exception:  # a blip while asking: ask again
                pass
            if status in FINAL_SMS:
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)
        return status, int(error) if error else None

    def _blocked(self, phone: str, source: str) -> None:
        with self.sessions.begin() as s:
            sms_opt_outs.record(s, phone, opted_out=True, source=source, now=datetime.now(UTC))

    # ---- the call ------------------------------------------------------------------------------
    def _call(self, d: Delivery, why: str) -> bool:
        st = self.settings
        try:
            with provider_request(self.sessions, st.twilio_from_number, st.sender_messages_per_second):
                call = self.twilio.calls.create(
                    to=d.phone,
                    from_=st.twilio_from_number,
                    twiml=code_twiml(d.language, st.company_name, d.code, d.kind),
                    timeout=25,  # ring at least 15 s, not for ever
                )
        except Exception as exc:
            error = exc.code if isinstance(exc, TwilioRestException) else type(exc).__name__
            log.warning("%s call to %s failed: %s", d.action, mask_phone(d.phone), error)
            self._audit(d, "failed", channel="voice", error=error, because=why)
            return False
        self._audit(d, "sent", channel="voice", sid=call.sid, because=why)
        return True

    def _audit(self, d: Delivery, decision: str, **details: object) -> None:
        now = datetime.now(UTC)
        with self.sessions.begin() as s:
            audit(
                s,
                at=now,
                clock="wall",
                account_id=d.account_id,
                actor=d.actor,
                action=d.action,
                decision=decision,
                details={"to": mask_phone(d.phone), **{k: v for k, v in details.items() if v is not None}},
            )
        log.info("%s %s (%s) to %s", d.action, decision, details.get("channel"), mask_phone(d.phone))


def requested(sessions: sessionmaker[Session], phone: str, via: str, account_id: str | None) -> None:
    """The audit line of a code asked for (``no_account``: a number on file nowhere, masked)."""
    now = datetime.now(UTC)
    with sessions.begin() as s:
        audit(
            s,
            at=now,
            clock="wall",
            account_id=account_id,
            actor="debtor",
            action="signin_code",
            decision="requested" if account_id else "no_account",
            details={"to": mask_phone(phone), "via": via},
        )


def _executor(app: FastAPI) -> ThreadPoolExecutor:
    """Threads of the deliveries' own: one follows its text for up to a minute, and the default pool,
    which every page's database work runs in, must never wait behind a burst of them."""
    pool: ThreadPoolExecutor | None = getattr(app.state, "code_executor", None)
    if pool is None:
        pool = app.state.code_executor = ThreadPoolExecutor(
            DELIVERY_THREADS, thread_name_prefix="signin-code"
        )
    return pool


def after_answer(request: Request, phone: str, via: str, delivery: Delivery | None) -> BackgroundTask:
    """What follows the answer to "send me a code", for every number alike: its audit line and, when
    the number is on file, the delivery. It runs in a task of its own, started once the answer has
    been sent, so neither that answer nor the next request on the same connection waits for it (the
    time taken says nothing about whether the number is on file)."""
    app = request.app
    settings = app_settings(request)
    sessions = app_sessions(request)

    def work() -> str:
        requested(sessions, phone, via, delivery.account_id if delivery else None)
        if delivery is None:
            return "none"
        return Sender(settings, sessions, twilio_of(app, settings)).deliver(delivery)

    async def run() -> str:
        try:
            return await asyncio.get_running_loop().run_in_executor(_executor(app), work)
        except Exception:  # never a silent loss: the log says which number (masked) went without
            log.exception("sign-in code to %s not delivered", mask_phone(phone))
            return "failed"

    async def start() -> None:
        pending: set[asyncio.Task[str]] | None = getattr(app.state, "code_deliveries", None)
        if pending is None:
            pending = app.state.code_deliveries = set()
        task = asyncio.get_running_loop().create_task(run())
        pending.add(task)
        task.add_done_callback(pending.discard)

    return BackgroundTask(start)


def deliver_now(
    app: FastAPI, settings: Settings, sessions: sessionmaker[Session], delivery: Delivery
) -> None:
    """Start delivering ``delivery`` in a task of its own and return at once (called on the event
    loop): the person who asked (an agent, the debtor on the page) gets their answer without waiting
    for the carrier, which may take a minute to say a text did not arrive and a call must follow."""

    async def run() -> str:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                _executor(app), Sender(settings, sessions, twilio_of(app, settings)).deliver, delivery
            )
        except Exception:  # never a silent loss: the log says which number (masked) went without
            log.exception("%s to %s not delivered", delivery.action, mask_phone(delivery.phone))
            return "failed"

    pending: set[asyncio.Task[str]] | None = getattr(app.state, "code_deliveries", None)
    if pending is None:
        pending = app.state.code_deliveries = set()
    task = asyncio.get_running_loop().create_task(run())
    pending.add(task)
    task.add_done_callback(pending.discard)


async def settle(app: FastAPI) -> None:
    """Wait for every delivery under way (a stopping service, a test reading the carrier)."""
    pending = getattr(app.state, "code_deliveries", set())
    while pending:
        await asyncio.gather(*list(pending), return_exceptions=True)
