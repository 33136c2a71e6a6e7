"""The demo's debtors: people at the other end of the carrier simulator who answer, pay and complain.

Without them a demo's debtors never do anything, and the dashboard's recovery and settlement charts
stay at zero. :class:`DemoDebtors` watches what the simulator delivered (a text delivered, a call a
person answered, a voicemail left), asks the seeded model (:mod:`lab.debtors`, the one the strategy
lab uses) what the debtor does about it, and does it through the product's own doors, as a real
debtor and lender would:

* STOP and COMPLAINT are texts to the inbound webhook, signed with the account's auth token exactly
  as Twilio signs them (a forged one would be refused);
* a payment is the lender's payments API (``POST /api/accounts/{id}/payments``), with a reference
  per reaction so a repeat counts once;
* a plan request is a PLAN text (the workflow hears ``negotiation_requested``) followed by the
  negotiation UI's call (``POST /api/accounts/{id}/plans``) with the first schedule the policy's
  preview accepts; each instalment is then paid on its day, or not (the model's ``keep``), and the
  first one missed breaks the plan the way the workflow judges it.

Nothing here decides anything the product decides: the workflows judge every payment and plan, the
gate every contact. It runs only in the demo, against the simulator (never against Twilio).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from carrier.callbacks import CallbackDispatcher
from carrier.store import SimStore
from domain.accounts import Channel
from domain.masking import mask_phone
from domain.outcomes import call_outcome, message_outcome
from lab.debtors import DebtorModel, Reaction, reach_of
from lab.reactions import part

log = logging.getLogger(__name__)

#: the schedules tried, in order, for a plan the debtor asks for: (instalments, days apart)
PLAN_SHAPES = ((None, 14), (None, 30), (2, 30))
#: the first instalment falls this many policy days after the request
FIRST_DUE_DAYS = 3


@dataclass(frozen=True, slots=True)
class Debtor:
    """One account the demo loaded: who answers the number, where they live (for the local hour)."""

    account_id: str
    phone: str
    zone: str
    segment: str  # the jurisdiction profile


@dataclass
class _Plan:
    debtor: Debtor
    number: int
    instalments: list[tuple[date, int]]
    paid: int = 0
    looked_at: float = float("-inf")  # when its account's status was last read (the loop's clock)


@dataclass
class DemoDebtors:
    store: SimStore
    model: DebtorModel
    service_url: str  # e.g. http://127.0.0.1:8000
    token: str  # an agent's API token (payments and plans are the lender's and the negotiator's doors)
    auth_token: str  # the Twilio auth token inbound texts are signed with
    inbound_url: str  # the service's inbound SMS webhook, as Twilio would call it
    debtors: dict[str, Debtor]  # by phone
    day_seconds: float = 86_400
    our_number: str = "+15005550006"
    interval: float = 0.5
    #: how often (real seconds) a debtor with a plan looks at the calendar: twice a policy day, at most 5 s
    plan_check_seconds: float | None = None
    #: the policy time now, if not the status's ``policy_now`` (a time-skipping test server's clock)
    clock: Callable[[], Awaitable[datetime]] | None = None
    reactions: dict[str, int] = field(default_factory=dict)  # what they did, by reaction (for the log)
    _seen: set[str] = field(default_factory=set)
    _reached: dict[str, int] = field(default_factory=dict)  # account -> contacts that reached it
    _plans: dict[str, _Plan] = field(default_factory=dict)
    _plans_made: dict[str, int] = field(default_factory=dict)
    _paid_off: set[str] = field(default_factory=set)  # accounts this debtor has paid in full

    async def run(self) -> None:
        """React until cancelled; one debtor's failure is logged and the others go on."""
        dispatcher = CallbackDispatcher(self.auth_token, self.store)
        async with httpx.AsyncClient(
            base_url=self.service_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        ) as http:
            try:
                while True:
                    try:
                        await self.tick(http, dispatcher)
                    except Exception:  # a surprise in one round must not silence every debtor for the demo
                        log.warning("demo debtors: a round failed; the next one goes on", exc_info=True)
                    await asyncio.sleep(self.interval)
            finally:
                await dispatcher.close()

    async def tick(self, http: httpx.AsyncClient, dispatcher: CallbackDispatcher) -> None:
        loop = asyncio.get_running_loop()
        acted: set[str] = set()
        for reached in self._newly_reached():
            # A text and a call that reached someone since the last round are one moment to them, and
            # they act on it once: answering each, with a status that did not yet show the first act
            # (a payment is taken in a moment later), a debtor paid the whole balance twice.
            if reached[0].account_id in acted:
                continue
            acted.add(reached[0].account_id)
            try:
                await self._react(http, dispatcher, *reached)
            except (httpx.HTTPError, KeyError, ValueError) as err:
                log.warning("demo debtor %s: %s", reached[0].account_id, err)
        for account_id in list(self._plans):
            try:
                await self._instalments(http, account_id, loop.time())
            except (httpx.HTTPError, KeyError, ValueError) as err:
                log.warning("demo debtor %s: instalment: %s", account_id, err)

    # ---- what reached whom ------------------------------------------------------------------------
    def _newly_reached(self) -> list[tuple[Debtor, Channel, str]]:
        found: list[tuple[Debtor, Channel, str]] = []
        for record, channel in [(m, Channel.SMS) for m in self.store.message_list()] + [
            (c, Channel.VOICE) for c in self.store.call_list()
        ]:
            sid = record["sid"]
            if sid in self._seen:
                continue
            if channel == Channel.SMS:
                outcome = message_outcome(record["status"], record.get("error_code"))
            else:
                duration = record.get("duration")
                outcome = call_outcome(
                    record["status"], record.get("answered_by"), int(duration) if duration else None
                )
            if outcome.value in ("sent",):
                continue  # not final yet: looked at again next tick
            self._seen.add(sid)
            debtor = self.debtors.get(record["to"])
            how = reach_of(channel, outcome)
            if debtor is not None and how is not None:
                found.append((debtor, channel, how))
        return found

    # ---- one reaction ----------------------------------------------------------------------------
    async def _react(
        self,
        http: httpx.AsyncClient,
        dispatcher: CallbackDispatcher,
        debtor: Debtor,
        channel: Channel,
        how: str,
    ) -> None:
        if debtor.account_id in self._paid_off:
            return  # paid it all: nothing more to do, whatever still reaches them as the account closes
        status = await self._status(http, debtor.account_id)
        if status is None or status.get("closing") or status["mode"] == "closed":
            return
        n = self._reached[debtor.account_id] = self._reached.get(debtor.account_id, 0) + 1
        local = _policy_now(status, debtor)
        answer = self.model.respond(
            debtor.account_id,
            n,
            how,
            local.hour,
            int(status["dpd"]),
            debtor.segment,  # type: ignore[arg-type]
        )
        reaction = answer.reaction
        if reaction == Reaction.NOTHING:
            return
        in_plan = status.get("plan") is not None or debtor.account_id in self._plans
        if in_plan and reaction != Reaction.PAY_FULL:
            return  # a debtor keeping a plan answers its reminders by paying them, on their days
        self.reactions[reaction.value] = self.reactions.get(reaction.value, 0) + 1
        log.info("demo debtor %s (%s): %s", debtor.account_id, mask_phone(debtor.phone), reaction.value)
        balance, currency = int(status["balance"]), status["currency"]
        if reaction == Reaction.PAY_FULL:
            self._paid_off.add(debtor.account_id)
            await self._pay(http, debtor.account_id, balance, currency, f"full-{n}")
        elif reaction == Reaction.PAY_PART:
            await self._pay(http, debtor.account_id, part(balance, answer.share), currency, f"part-{n}")
        elif reaction == Reaction.STOP:
            await self._text(dispatcher, debtor, "STOP")
        elif reaction == Reaction.COMPLAIN:
            await self._text(dispatcher, debtor, "COMPLAINT")
        elif reaction == Reaction.PLAN:
            await self._text(dispatcher, debtor, "PLAN")
            await self._ask_plan(http, debtor, status, answer.periods)

    async def _status(self, http: httpx.AsyncClient, account_id: str) -> dict[str, Any] | None:
        got = await http.get(f"/api/accounts/{account_id}")
        if got.status_code == 404:
            return None
        got.raise_for_status()
        status: dict[str, Any] = got.json()
        return status

    async def _pay(
        self, http: httpx.AsyncClient, account_id: str, amount: int, currency: str, ref: str
    ) -> None:
        if amount <= 0:
            return
        body = {"amount": amount, "currency": currency, "reference": f"demo-{account_id}-{ref}"}
        answer = await http.post(f"/api/accounts/{account_id}/payments", json=body)
        if answer.status_code not in (202, 409):  # 409: the run ended meanwhile (refund queue)
            answer.raise_for_status()

    async def _text(self, dispatcher: CallbackDispatcher, debtor: Debtor, body: str) -> None:
        sid = "SM" + uuid.uuid4().hex
        params = {"MessageSid": sid, "SmsSid": sid, "From": debtor.phone, "To": self.our_number, "Body": body}
        await dispatcher.deliver("inbound", sid, self.inbound_url, params)

    # ---- plans -----------------------------------------------------------------------------------
    async def _ask_plan(
        self, http: httpx.AsyncClient, debtor: Debtor, status: dict[str, Any], periods: int
    ) -> None:
        """The first schedule the policy accepts (the preview says), proposed as the negotiation UI does."""
        local_today = _policy_now(status, debtor).date()
        first_due = (local_today + timedelta(days=FIRST_DUE_DAYS)).isoformat()
        for count, every in PLAN_SHAPES:
            body = {
                "kind": "reinstalment",
                "first_due": first_due,
                "periods": count or periods,
                "period_days": every,
            }
            preview = await http.post(f"/api/accounts/{debtor.account_id}/plans/preview", json=body)
            if preview.status_code != 200 or not preview.json().get("acceptable"):
                continue
            agreed = await http.post(f"/api/accounts/{debtor.account_id}/plans", json=body)
            if agreed.status_code != 200:
                return  # 409: already agreed or closing; 422: the workflow's own view differs
            number = self._plans_made[debtor.account_id] = self._plans_made.get(debtor.account_id, 0) + 1
            schedule = [
                (date.fromisoformat(i["due_date"]), int(i["amount"])) for i in agreed.json()["instalments"]
            ]
            self._plans[debtor.account_id] = _Plan(debtor=debtor, number=number, instalments=schedule)
            return

    async def _instalments(self, http: httpx.AsyncClient, account_id: str, wall: float) -> None:
        """Pay each instalment on its day in the debtor's calendar, or stop paying at the first the
        model says is missed (the workflow breaks the plan then, by its own rules)."""
        plan = self._plans[account_id]
        every = self.plan_check_seconds
        if every is None:
            every = min(self.day_seconds / 2, 5.0)
        if wall - plan.looked_at < every:
            return
        plan.looked_at = wall
        status = await self._status(http, account_id)
        if status is None or status.get("plan") is None:
            del self._plans[account_id]  # paid off, closed, or broken by the workflow
            return
        debtor = plan.debtor
        now = await self.clock() if self.clock is not None else _policy_now(status, debtor)
        today = now.astimezone(ZoneInfo(debtor.zone)).date()
        while plan.paid < len(plan.instalments) and plan.instalments[plan.paid][0] <= today:
            amount = plan.instalments[plan.paid][1]
            if not self.model.keeps(account_id, plan.number, plan.paid + 1, debtor.segment):
                self.reactions["missed_instalment"] = self.reactions.get("missed_instalment", 0) + 1
                del self._plans[account_id]
                return
            await self._pay(
                http, account_id, amount, status["currency"], f"plan{plan.number}-{plan.paid + 1}"
            )
            plan.paid += 1
        if plan.paid >= len(plan.instalments):
            self.reactions["kept_plan"] = self.reactions.get("kept_plan", 0) + 1
            del self._plans[account_id]


def _policy_now(status: dict[str, Any], debtor: Debtor) -> datetime:
    """The account's policy time in the debtor's own zone (their hour, their calendar day)."""
    return datetime.fromisoformat(status["policy_now"]).astimezone(ZoneInfo(debtor.zone))


def debtors_from_accounts(accounts: list[Any]) -> dict[str, Debtor]:
    """The demo's debtors by number, from the accounts intake loaded (``domain.accounts.Account``);
    a number on two accounts answers for the first."""
    from domain.gate import debtor_zones

    found: dict[str, Debtor] = {}
    for account in accounts:
        phone = account.debtor.phone
        if phone in found:
            continue
        zone = account.debtor.timezone or debtor_zones(None, phone)[0]
        found[phone] = Debtor(account.account_id, phone, zone, account.profile)
    return found


__all__ = ["Debtor", "DemoDebtors", "debtors_from_accounts"]
