"""Charge-off and placement with a collection agency: the account leaves our own collection.

At charge-off a balance above the policy's minimum is placed with an agency. The run stays open while
the agency works the account: the agency's payments come back here as signals, a supervisor can
recall it (it then goes to another agency, or is charged off), and it ends when paid, closed by an
operator, or when the placement's term runs out.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import CloseReason, Mode, Stage
    from domain.agencies import (
        END_PLACEMENT,
        PLACE_ACCOUNT,
        EndPlacement,
        Placed,
        PlaceRequest,
        RecallRequest,
    )
    from domain.cadence import local_days_later
    from domain.gate import Purpose
    from workflows import search
    from workflows.base import RECORD_RETRY
    from workflows.contacts import PAYMENTS_FIRST_PATCH
    from workflows.handlers import AccountWorkflow
    from workflows.messages import RunResult


#: A charged-off account that was not placed stays open for payments (it used to end at once).
CHARGED_OFF_OPEN_PATCH = patches.CHARGED_OFF_OPEN


class Placement(AccountWorkflow):
    """Mixed into :class:`~workflows.delinquency.DelinquencyWorkflow`."""

    @workflow.signal
    def recall(self, request: RecallRequest) -> None:
        """Take a placed account back from its agency (it goes to another one, or is charged off)."""
        if self.carried.placed_with is not None:
            self.state.inbox.recall = request
            self.wake = True

    async def charge_off(self, dpd: int) -> RunResult:
        """The account leaves our collection: placed with an agency, or charged off and left open
        for payments a while. A payment already in hand is applied first: paid in full, it is a
        paid account (one receipt), not a charge-off or a placement."""
        self.state.closing = "charged_off"
        await self.stop_side_work("charged_off")
        if self.state.inbox.payments and self.patched(PAYMENTS_FIRST_PATCH):
            await self.take_payments()
            if self.carried.balance <= 0:
                return await self.close_paid()
        if self.placement_due() and self.patched(patches.AGENCY_PLACEMENT):
            placed = await self.place(dpd)
            if placed is not None:
                return placed
        self.stop_contacts = True
        await self.close_charged_off(
            dpd,
            CloseReason.CHARGED_OFF,
            "charged_off",
            f"at {dpd} DPD; placement record created for agency hand-off",
        )
        if self.patched(CHARGED_OFF_OPEN_PATCH):
            return await self.while_charged_off(dpd)
        self.set_details(f"charged off at {dpd} DPD and placed")
        return await self.finish("charged_off")

    async def while_charged_off(self, dpd: int) -> RunResult:
        """Charged off and no agency took it: nothing goes to the debtor, but payments still come
        (``chargeoff_open_days``): each is recorded at once, and one that pays the balance gets the
        receipt and closes the account as paid. Later payments go to the refund queue (the service)."""
        until = local_days_later(self.now(), self.terms, self.policy.chargeoff_open_days)
        self.set_details(
            f"charged off at {dpd} DPD, not placed; payments taken until {until:%Y-%m-%d %H:%M %Z}"
        )
        while True:
            await self.take_inbox()
            if self.carried.balance <= 0:
                return await self.close_paid()
            if self.now() >= until:
                return await self.finish("charged_off")
            await self.sleep_until(self.bounded(until))

    def placement_due(self) -> bool:
        return self.policy.placement.places_at_charge_off(self.carried.balance, self.terms.currency)

    def placement_id(self) -> str:
        return f"{self.terms.account_id}/placement-{len(self.carried.recalled_from) + 1}"

    async def place_with_agency(self) -> Placed:
        return await workflow.execute_activity(
            PLACE_ACCOUNT,
            PlaceRequest(
                placement_id=self.placement_id(),
                account_id=self.terms.account_id,
                region=self.terms.region,
                country=self.terms.profile,
                currency=self.terms.currency,
                balance=self.carried.balance,
                exclude=list(self.carried.recalled_from),
                at=self.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            result_type=Placed,
            summary="place with an agency",
        )

    async def end_placement(self, status: str, reason: str) -> None:
        await workflow.execute_activity(
            END_PLACEMENT,
            EndPlacement(placement_id=self.placement_id(), status=status, reason=reason, at=self.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=f"placement {status}",
        )

    async def place(self, dpd: int) -> RunResult | None:
        """Charge off and place with an agency; None when no agency has room (plain charge-off then)."""
        self.stop_contacts = True
        await self.contacts_settled()
        placed = await self.place_with_agency()
        if placed.agency_id is None:
            return None
        await self.close_charged_off(
            dpd, CloseReason.PLACED, "charged_off_placed", f"at {dpd} DPD; placed with {placed.agency_id}"
        )
        return await self.while_placed(placed)

    async def close_charged_off(self, dpd: int, reason: CloseReason, decision: str, detail: str) -> None:
        """The charge-off record, placed with an agency or not: the account leaves collection here."""
        self.owed_at_close = self.carried.balance
        ev = self.event("charged_off", detail)
        await self.record(
            self.change(
                mode=Mode.CLOSED,
                close_reason=reason.value,
                stage=Stage.CHARGED_OFF,
                dpd=dpd,
                balance=self.carried.balance,
                decision=decision,
                events=[ev],
            )
        )
        self.state.mode = Mode.CLOSED
        self.state.next_at = None
        self.upsert_common(
            stage=search.STAGE.value_set(Stage.CHARGED_OFF.value), dpd=search.DPD.value_set(dpd)
        )

    async def while_placed(self, placed: Placed) -> RunResult:
        """The agency works the account; its payments come back here, and it can be recalled."""
        while True:
            assert placed.agency_id is not None
            self.carried.placed_with = placed.agency_id
            self.set_details(f"charged off and placed with {placed.agency_name}")
            await self.send_once(
                f"{self.placement_id()}/notice",
                Purpose.RECEIPT,
                "agency_placement",
                {"agency_name": placed.agency_name, "agency_number": placed.agency_number},
                wanted=self.still_owed,  # paid meanwhile: the receipt, not "an agency will contact you"
            )
            deadline = self.now() + timedelta(days=self.policy.placement.max_days)
            while True:
                await self.take_inbox()
                order = self.state.inbox.close
                if self.carried.balance <= 0:
                    await self.end_placement("completed", "paid in full")
                    self.carried.placed_with = None
                    return await self.close_paid()
                if order is not None:
                    await self.end_placement("recalled", order.note or order.reason.value)
                    self.carried.placed_with = None
                    return await self.close_account(order.reason, order.note or "closed")
                if self.state.inbox.recall is not None or self.now() >= deadline:
                    break
                await self.sleep_until(self.bounded(deadline))
            if self.state.inbox.recall is None:
                await self.end_placement("expired", f"{self.policy.placement.max_days} days placed")
                self.carried.placed_with = None
                return await self.close_account(CloseReason.WRITTEN_OFF, "placement ended; written off")
            request, self.state.inbox.recall = self.state.inbox.recall, None
            old = placed.agency_id
            await self.end_placement("recalled", request.reason)
            self.carried.recalled_from = [*self.carried.recalled_from, old]
            self.carried.placed_with = None
            ev = self.event("recalled", f"from {old}: {request.reason}")
            await self.record(self.change(decision="placement_recalled", events=[ev], actor=request.actor))
            placed = await self.place_with_agency()
            if placed.agency_id is None:
                return await self.close_account(
                    CloseReason.CHARGED_OFF, f"recalled from {old}; no other agency"
                )
            ev = self.event("placed", f"with {placed.agency_id} after recall")
            await self.record(self.change(decision="placed", events=[ev], actor=request.actor))
