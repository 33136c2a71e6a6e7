"""DelinquencyWorkflow: the dunning cadence of one account, from first reminder to charge-off.

One per account, workflow ID ``account-<id>``. An agreed plan switches this same workflow ID to
:class:`SettlementWorkflow` by continue-as-new, so a dunning run and a settlement run can never be
alive at once: that is the structural fix for "still harassed after agreeing a plan".
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.accounts import Channel, ContactOutcome, Mode, Stage
    from domain.cadence import (
        Step,
        dpd_at,
        due_before,
        fallback_step,
        home_zone,
        is_report_notice,
        legacy_fallback_step,
        local_date,
        next_action,
    )
    from domain.credit_reporting import earliest_report_date
    from domain.effects import SendResult
    from domain.gate import Purpose
    from domain.money import format_minor
    from domain.timeline import AccountStatus
    from workflows import charging, search
    from workflows.base import CHANGED_ONLY_PATCH, ONE_WRITE_PATCH
    from workflows.contacts import LEAN_SEND_PATCH
    from workflows.fieldvisits import FieldVisits
    from workflows.locate import Locate
    from workflows.messages import RunResult
    from workflows.placement import Placement
    from workflows.state import AccountInput

#: A hand-over that finds a plan accepted goes to settlement, not into a fresh dunning run (which
#: dropped the plan). Runs recorded before this continued as dunning; their replay is unchanged.
PLAN_AT_HAND_OVER_PATCH = patches.PLAN_AT_HAND_OVER
#: A fallback text fits the step's stage (it could quote a pre-due reminder for a past-due account).
FALLBACK_PATCH = patches.FALLBACK
#: A new account starts at its stage's next step: steps that fell due before intake are not caught up.
NO_CATCH_UP_PATCH = patches.NO_CATCH_UP
#: ... where intake is the moment the account was started, not the run's first workflow task: under a
#: burst of starts (1,000 accounts at once) that task may run many seconds later, and on a sped-up
#: clock (a policy day in 20 minutes) seconds are policy hours, so the day's step fell "before intake".
INTAKE_AT_START_PATCH = patches.INTAKE_AT_START
#: A visit is arranged after the wake's step, so the step and the announcement never race for the
#: day's text (generation 2).
VISIT_AFTER_STEP_PATCH = patches.VISIT_AFTER_STEP


@workflow.defn
class DelinquencyWorkflow(FieldVisits, Placement, Locate):
    @workflow.init
    def __init__(self, start: AccountInput) -> None:
        self._setup(start, Mode.DUNNING)

    # ---- the run ----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, start: AccountInput) -> RunResult:
        if start.state is None and start.carried is None:
            opened = [self.event("opened", f"{self.terms.product.value}, due {self.terms.due_date}")]
            if self.patched(NO_CATCH_UP_PATCH):
                taken_in = self.now()
                if self.patched(INTAKE_AT_START_PATCH):
                    # the instant the caller started it (the epoch it chose), else the server's
                    started = start.epoch or workflow.info().start_time
                    taken_in = min(taken_in, self.carried.clock.policy_now(started))
                missed = due_before(self.terms, self.policy, taken_in)
                if missed:
                    self.carried.done_steps = [*self.carried.done_steps, *missed]
                    opened.append(
                        self.event(
                            "steps_before_intake", f"{len(missed)} steps fell due before intake: not sent"
                        )
                    )
            await self.note(self.change(mode=Mode.DUNNING, decision="opened", events=opened))
        elif self.state.resumed_from:
            ev = self.event("dunning_resumed", self.state.resumed_from)
            self.state.resumed_from = None
            await self.record(self.change(mode=Mode.DUNNING, decision="dunning_resumed", events=[ev]))

        while True:
            if self.agreeing or self.state.plan is not None:
                await self.flush()
                await workflow.wait_condition(lambda: self.state.plan is not None)
                return await self.switch_to_settlement()
            await self.take_inbox()
            if self.carried.balance <= 0:
                return await self.close_paid()
            if (order := self.state.inbox.close) is not None:
                await self.stop_visit("account_closed")
                return await self.close_account(
                    order.reason, order.note or "complaint upheld by the investigator"
                )
            if self.agreeing:
                continue

            now = self.now()
            dpd = dpd_at(now, self.terms)
            stage = self.policy.stage_for(dpd, self.terms.product)
            if stage != self.carried.stage:
                await self.enter_stage(stage, dpd)
            if stage == Stage.CHARGED_OFF:
                return await self.charge_off(dpd)
            self.trim()
            # a new visit only once this wake's own step has gone (see the patch)
            visit_after_step = self.patched(VISIT_AFTER_STEP_PATCH)
            await self.tend_visit(stage, dpd, arrange=not visit_after_step)
            locate_at = await self.tend_locate()  # contact lost: ask the emergency contact (locate.py)
            if self.agreeing:
                continue  # the visit's report was a promise to pay: a plan is being agreed

            action = next_action(
                self.terms,
                self.carried,
                self.policy,
                self.profile,
                now,
                stage_at_contact=self.patched(ONE_WRITE_PATCH),
            )
            if action.skipped:
                self.carried.done_steps = [*self.carried.done_steps, *action.skipped]
            step = action.step
            wait_until = action.at
            if step is not None and (later := self.deferred_until(step.key, now)) is not None:
                wait_until = later  # the live gate said later (e.g. an agency's calls)
            self.state.next_at = action.at if action.kind == "contact" else None
            self.state.next_label = (
                f"{step.channel.value.upper()} {step.template.replace('_', ' ')}" if step else action.kind
            )
            due_now = step is not None and wait_until <= now and not self.stop_contacts
            if not (due_now and self.patched(CHANGED_ONLY_PATCH)):
                # a step due now is published once it is done, with what comes after it: one upsert
                # per wake, not one for "about to send" and one for "sent" (issue 18)
                self.publish(dpd, stage)

            if step is not None and due_now:
                await self.do_step(step, stage)
                continue
            if visit_after_step:
                await self.tend_visit(stage, dpd)
            slept = await self.sleep_until(self.bounded(min(wait_until, locate_at or wait_until)))
            if self.should_hand_over(slept) and self.visit_task is None:
                if await self.drain_payments():
                    continue  # a payment came in: it may close the account, decide again first
                if (self.agreeing or self.state.plan is not None) and self.patched(PLAN_AT_HAND_OVER_PATCH):
                    continue  # a plan was accepted meanwhile: the loop hands over to settlement
                await self.hand_over("DelinquencyWorkflow")

    async def do_step(self, step: Step, stage: Stage, sent: SendResult | None = None) -> None:
        """Send one step and keep its books. ``sent``: the step already went, riding on a call's
        request as its fallback text (see ``Contacts.contact``)."""
        if step.channel == Channel.VOICE and self.voice_known_paused() and self.patched(LEAN_SEND_PATCH):
            # the governor told this account when voice resumes: while every account of the campaign
            # keeps away, that estimate holds (it assumes no new calls), so asking again would only
            # cost a send activity that is refused. The step goes by SMS, as after a refusal.
            self.carried.done_steps = [*self.carried.done_steps, step.key]
            self.state.deferred.pop(step.key, None)
            alt = self.fallback(step)
            if alt is not None:
                self.event("fallback", f"voice paused by the governor, trying {alt.channel.value}")
                await self.do_step(alt, stage)
            return
        riding = None
        if sent is None and step.channel == Channel.VOICE and self.patched(ONE_WRITE_PATCH):
            riding = self.fallback(step)
        result = sent or await self.contact(
            key=step.key,
            channel=step.channel,
            purpose=Purpose.DUNNING,
            template=step.template,
            context={"stage": stage.value, **self.notice_context(step)},
            fallback=(riding.key, riding.channel, riding.template) if riding is not None else None,
        )
        if result is None:
            return  # cancelled by a plan or payment: the step is not spent
        if result.deferred_until is not None:
            return
        self.carried.done_steps = [*self.carried.done_steps, step.key]
        self.state.deferred.pop(step.key, None)
        self.note_contact(step.key, step.channel, step.template, result)
        if step.channel == Channel.VOICE:
            self.state.voice_paused_until = result.voice_paused_until  # the governor's word, or none now
        governed = result.rule is not None and result.rule.startswith("governor.")
        if (governed or result.fallback is not None) and step.channel == Channel.VOICE:
            alt = self.fallback(step)
            if alt is not None:  # voice paused for the campaign: the same step by SMS instead
                self.event("fallback", f"voice paused ({result.rule}), trying {alt.channel.value}")
                went = result.fallback if riding is not None and riding.key == alt.key else None
                await self.do_step(alt, stage, sent=went)
            return
        if result.outcome in (ContactOutcome.UNDELIVERABLE, ContactOutcome.OPTED_OUT):
            lost = await self.apply_channel_outcome(step.channel, result.outcome)
            if not lost and result.outcome == ContactOutcome.UNDELIVERABLE:
                alt = self.fallback(step)
                if alt is not None:
                    self.event("fallback", f"{step.channel.value} undeliverable, trying {alt.channel.value}")
                    await self.do_step(alt, stage)

    def notice_context(self, step: Step) -> dict[str, str]:
        """The notice before the first credit report names the bureau and the first day the account
        may be reported: the day ``reportable`` keeps to, counted from today (issue 15)."""
        law = self.profile.credit_reporting
        if law is None or not is_report_notice(step, self.profile):
            return {}
        today = local_date(self.now(), self.terms)
        return {
            "report_date": earliest_report_date(today, law, self.terms.due_date).isoformat(),
            "bureau": law.bureau_in(self.terms.language.value),
        }

    def voice_known_paused(self) -> bool:
        """The last call this account asked for was refused by the campaign's governor, and the moment
        it said calls resume has not come yet: what ``status`` shows is what the account does."""
        until = self.state.voice_paused_until
        return until is not None and self.now() < until

    def fallback(self, step: Step) -> Step | None:
        """The same step on another channel, in a template true for the step's stage (see
        ``fallback_step``); runs recorded before keep their choice where it differs in kind."""
        alt = fallback_step(self.policy, self.terms.product, step.channel, self.carried, step)
        legacy = legacy_fallback_step(self.policy, step.dpd, step.channel, self.carried, step)
        if (alt is None) != (legacy is None) and not self.patched(FALLBACK_PATCH):
            return legacy
        return alt

    def publish(self, dpd: int, stage: Stage) -> None:
        self.upsert_common(dpd=search.DPD.value_set(dpd), stage=search.STAGE.value_set(stage.value))
        at = self.state.next_at
        when = at.astimezone(home_zone(self.terms)).strftime("%Y-%m-%d %H:%M %z") if at else "-"
        lost = " · contact lost" if self.carried.contact_lost else ""
        paused = self.state.voice_paused_until
        if paused is not None and paused > self.now():
            lost += f" · voice paused by the call governor until about {paused.astimezone(home_zone(self.terms)):%Y-%m-%d %H:%M}"
        charged = charging.summary(self.state, self.now())
        if charged is not None and (charged.interest_added or charged.fees_added):
            money = lambda minor: format_minor(minor, charged.currency)  # noqa: E731
            lost += f" · charges {money(charged.interest_added)} interest, {money(charged.fees_added)} fees"
        self.set_details(
            f"stage **{stage.value}**, {dpd} DPD{lost}\n\nnext: {self.state.next_label} at {when}"
        )

    async def enter_stage(self, stage: Stage, dpd: int) -> None:
        previous = self.carried.stage
        self.carried.stage = stage
        ev = self.event("stage", f"{previous.value if previous else 'start'} -> {stage.value} at {dpd} DPD")
        await self.note(
            self.change(stage=stage, dpd=dpd, balance=self.carried.balance, events=[ev], decision="stage")
        )

    async def switch_to_settlement(self) -> RunResult:
        assert self.state.plan is not None
        if self.plan_stored is not None:
            await self.plan_stored  # a plan agreed on a quiet account: stored before anything else
            self.plan_stored = None
            self.state.plan.stored = True
        await self.stop_visit("plan_agreed")
        # a payment that arrived while the plan was being agreed counts towards the plan (hand_over)
        await self.hand_over("SettlementWorkflow")

    # ---- queries ----------------------------------------------------------------------------------
    @workflow.query
    def status(self, at: datetime | None = None) -> AccountStatus:
        """``at``: the asker's wall-clock time (see ``status_view``); without it, the last task's."""
        return self.status_now(at)


__all__ = ["Channel", "DelinquencyWorkflow"]
