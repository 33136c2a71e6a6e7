"""The database side of a case's clock: each step written once (a retry finds it done)."""

from __future__ import annotations

from temporalio import activity

from activities.deps import Deps
from domain.cases import CASE_STEP, CaseStep
from store import cases


class CaseActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=CASE_STEP)
    def case_step(self, step: CaseStep) -> bool:
        """True when this call made the change (False: already done, or the case was answered)."""
        with self.deps.sessions.begin() as s:
            if step.step == "deadlines":
                assert step.deadlines is not None
                cases.set_deadlines(s, step.case_id, step.deadlines)
                return True
            if step.step == "remind":
                return cases.remind(s, step.case_id, step.at)
            if step.step == "escalate":
                return cases.escalate(s, step.case_id, step.at)
            if step.step == "overdue":
                return cases.overdue(s, step.case_id, step.at)
        raise ValueError(f"step: unknown case step {step.step!r}")
