"""Locating an unreachable debtor through their emergency contact (a third party).

Once every channel of the debtor has failed or been opted out (``contact_lost``) and intake gave an
emergency contact, the dunning run asks that person, by SMS, for a way to reach the debtor: the
``third_party_locate`` text, which names no amount and no debt (domain.templates). It goes through
the same contact path as every other contact (plan-time gate here, the live gate in the send
activity), where the gate's third-party rules decide: the debtor still unreachable, no hold of any
kind, the profile's caps (``max_locate_per_7_days``, ``max_locate_total``) and quiet hours in the
*third party's* zones. A new debtor number (``contact_updated``) clears ``contact_lost`` and so ends
locating. The workflow never holds the person's name or number: only ``terms.emergency_masked`` and
the zones of that number; the activity reads the number from the database.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Channel, ContactOutcome, LedgerEntry, Mode
    from domain.cadence import third_party_gate_state
    from domain.effects import SendResult
    from domain.gate import Audience, Defer, Deny, PlannedContact, Purpose, decide
    from workflows.handlers import AccountWorkflow

LOCATE_TEMPLATE = "third_party_locate"
PATCH = patches.EMERGENCY_CONTACT


class Locate(AccountWorkflow):
    """Mixed into :class:`~workflows.delinquency.DelinquencyWorkflow`."""

    async def tend_locate(self) -> datetime | None:
        """Ask the emergency contact once it is lawful; returns when to look again (None: no need)."""
        if not self.carried.contact_lost or self.terms.emergency_masked is None:
            if self.state.locate_note is not None and not self.carried.contact_lost:
                self.state.locate_note = None
                self.event("locate_ended", "the debtor is reachable again")
            return None
        if self.mode != Mode.DUNNING or self.stop_contacts or not self.patched(PATCH):
            return None
        now = self.now()
        key = f"locate/{len(self.carried.locate_ledger) + 1}"
        if (later := self.deferred_until(key, now)) is not None:
            return later  # the live gate said later
        planned = PlannedContact(
            channel=Channel.SMS,
            purpose=Purpose.DUNNING,
            template=LOCATE_TEMPLATE,
            at=now,
            audience=Audience.THIRD_PARTY,
        )
        verdict = decide(
            planned,
            third_party_gate_state(self.terms, self.carried, self.mode),
            self.carried.locate_ledger,
            now,
            self.profile,
        )
        if isinstance(verdict, Deny):
            self.note_locate(verdict.rule)
            return None
        if isinstance(verdict, Defer):
            self.note_locate(f"waiting: {verdict.rule}")
            return verdict.until
        result: SendResult | None = await self.contact(
            key=key,
            channel=Channel.SMS,
            purpose=Purpose.DUNNING,
            template=LOCATE_TEMPLATE,
            audience=Audience.THIRD_PARTY,
        )
        if result is None:
            return None  # cancelled (a plan or payment landed)
        if result.deferred_until is not None:
            return result.deferred_until
        if result.outcome == ContactOutcome.DENIED:
            self.note_locate(result.rule or "denied")
            return None
        self.state.deferred.pop(key, None)
        self.carried.locate_ledger = [
            *self.carried.locate_ledger,
            LedgerEntry(at=now, channel=Channel.SMS, outcome=result.outcome),
        ]
        self.state.locate_note = "sent"
        self.event(
            "locate_sent",
            f"asked the emergency contact {self.terms.emergency_masked} ({result.outcome.value})",
        )
        return await self.tend_locate()  # when the next one may go (the 7-day cap), or never

    def note_locate(self, why: str) -> None:
        if why != self.state.locate_note:
            self.state.locate_note = why
            self.event("locate_held", why)
