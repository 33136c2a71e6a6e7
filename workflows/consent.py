"""The debtor's consent to texts, as carriers define it: STOP, START, and the one confirmation each allows.

A STOP stops only what chases the debt on that channel (47 CFR 64.1200(a)(12) allows one
confirmation, and the CTIA handbook asks for one); a START opts texts back in with one
confirmation; an opt-out after an opt-in is confirmed again. Kept apart from the other handlers
(workflows/handlers.py) because consent is its own state machine: ``carried.opted_out``, the
inbox's ``confirm_opt_out``/``opt_out_write``/``confirm_opt_in`` and ``state.sms_opt_ins``, and
nothing else reads or writes them.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Channel
    from domain.cadence import usable_channels
    from domain.gate import Purpose
    from workflows.messages import OptIn, OptOut
    from workflows.notices import Notices
    from workflows.patches import SMS_CONSENT


class Consent(Notices):
    """The opt-out and opt-in signals and the confirmations they owe, for both account workflows."""

    async def take_opt_out_confirmation(self) -> None:
        """The opt-out stored, then the one text it allows (47 CFR 64.1200(a)(12)).

        Under :data:`~workflows.patches.SMS_CONSENT` the run writes only an opt-out the database
        does not have yet (an operator's; the webhook stores a debtor's STOP before it signals, and
        writing it again could land after a later START), an opt-out after an opt-in has a key of
        its own (the first keeps the old one), and the text is withdrawn if the debtor opts back in
        while it waits for a lawful hour: "no more texts" would then be untrue.
        """
        inbox = self.state.inbox
        if not (inbox.confirm_opt_out or inbox.opt_out_write):
            return
        if not self.patched(SMS_CONSENT):
            inbox.confirm_opt_out = False
            await self.record(self.change(channel_status=(Channel.SMS, "opted_out"), decision="opted_out"))
            await self.send_once(
                "opt-out-confirmation/sms", Purpose.OPT_OUT_CONFIRMATION, "opt_out_confirmation"
            )
            return
        # None: a handler from before the patch accepted it, and that one always stored it too
        write, inbox.opt_out_write = inbox.opt_out_write is not False, None
        if write:
            await self.record(self.change(channel_status=(Channel.SMS, "opted_out"), decision="opted_out"))
        if inbox.confirm_opt_out:
            inbox.confirm_opt_out = False
            n = self.state.sms_opt_ins
            await self.send_once(
                "opt-out-confirmation/sms" if n == 0 else f"opt-out-confirmation/sms/{n}",
                Purpose.OPT_OUT_CONFIRMATION,
                "opt_out_confirmation",
                wanted=lambda: None if Channel.SMS in self.carried.opted_out else "opted back in meanwhile",
            )

    async def take_opt_in_confirmation(self) -> None:
        """The one text confirming that texts may go again, in the account's language.

        The database has the opt-in already (the webhook wrote it before signalling). Sent as an
        acknowledgement, like a complaint's: the gate refuses it if the debtor opts out again first,
        or under a hold that stops every text (a cease request).
        """
        if not self.state.inbox.confirm_opt_in:
            return
        self.state.inbox.confirm_opt_in = False
        await self.send_once(
            f"opt-in-confirmation/sms/{self.state.sms_opt_ins}",
            Purpose.ACKNOWLEDGEMENT,
            "opt_in_confirmation",
            wanted=lambda: "opted out again meanwhile" if Channel.SMS in self.carried.opted_out else None,
        )

    @workflow.signal
    def opt_out(self, request: OptOut) -> None:
        """Stop a channel. Under :data:`~workflows.patches.SMS_CONSENT` it withdraws only what chases
        the debt on that channel: the opt-out confirmation under way (a repeated STOP used to cancel
        it, leaving the debtor with none) and the answers owed to the debtor go on, and the live gate
        refuses everything else on an opted-out channel anyway."""
        consent = self.patched(SMS_CONSENT)
        if request.channel not in self.carried.opted_out:
            self.carried.opted_out = [*self.carried.opted_out, request.channel]
            self.event("opted_out", f"{request.channel.value} by {request.source}")
            if request.channel == Channel.SMS and not consent:
                self.state.inbox.confirm_opt_out = True
            elif request.channel == Channel.SMS:
                self.state.inbox.opt_out_write = not request.stored
                self.state.inbox.confirm_opt_out = request.confirm
                self.state.inbox.confirm_opt_in = False  # they said STOP since: no "welcome back"
        if consent:
            self.cancel_collection(request.channel)
        elif self.contact_task is not None:
            self.cancel_contacts()
        self.wake = True

    @workflow.signal
    def opt_in(self, request: OptIn) -> None:
        """Texts may go again: the debtor texted START (the webhook stored it first).

        Idempotent: a repeated START, or one from a debtor who never opted out, changes nothing and
        sends nothing. Runs whose history was written before this handler existed ignore it
        (``patched``), as the code that wrote them did.
        """
        if not self.patched(SMS_CONSENT) or request.channel not in self.carried.opted_out:
            return
        self.carried.opted_out = [c for c in self.carried.opted_out if c != request.channel]
        self.state.sms_opt_ins += 1
        self.event("opted_in", f"{request.channel.value} by {request.source}")
        inbox = self.state.inbox
        inbox.confirm_opt_out = False  # not sent yet, and no longer true
        inbox.confirm_opt_in = request.confirm
        if self.carried.contact_lost and usable_channels(self.carried):
            self.carried.contact_lost = False  # reachable again: nobody else needs asking
        self.wake = True
