"""Replay: recorded histories of the main paths must replay under the current code.

The committed histories in tests/histories/ were recorded from earlier code; a change that makes a
workflow non-deterministic (a reordered activity, a new timer on an old path) fails here, in CI,
instead of in production where thousands of open accounts would be stuck.

* ``tests/histories/legacy/``: runs recorded before the one account state (their inputs carry no
  rules, so they read the policy files, as such runs in production still do until their next
  hand-over); they must replay with the files as they are.
* ``tests/histories/*.json``: runs that carry their rules; they must replay whatever the policy and
  profile files say now, which ``test_histories_replay_after_every_policy_file_is_edited`` proves.

* ``tests/histories/stop_twice_gen2-0.json``: a generation-2 run recorded with the code before the
  ``SMS_CONSENT`` patch (issue 14): STOP, a second STOP while the confirmation waited for its retry
  (which cancelled it: no confirmation went), a plan request, then paid in full. It replays because
  the new code asks ``workflow.patched`` for runs of generations before 3.
* ``tests/histories/surplus_gen3-0.json``: a generation-3 run recorded with the code before the
  ``SURPLUS_KEEPS_RECEIPT`` patch (issue 18): paid in full, then the same amount again while the closing
  receipt waited for the sender, which withdrew the receipt. Without the patch's guard it fails to replay.

Record new ones after an intentional, versioned change with
``COLLECT_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py -k main_paths`` (it writes the
current format; the legacy folder is never rewritten).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.accounts import Product
from domain.plans import AgreedPlan, PlanKind, PlanProposal
from runtime.codec import generate_key_entry
from runtime.temporal import data_converter
from tests.workflows.conftest import NY, Harness, at_local
from workers.setup import WORKFLOWS, sandbox_runner
from workflows.messages import HoldRequest, PaymentIn

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
LEGACY = HISTORIES / "legacy"


async def all_runs(harness: Harness, workflow_id: str, first_run_id: str) -> list[WorkflowHistory]:
    """Every run of an account, following continue-as-new from the first."""
    runs = []
    run_id: str | None = first_run_id
    while run_id:
        history = await harness.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return runs


def replayer(*, strict: bool = True) -> Replayer:
    """With encryption switched on: histories recorded unencrypted must still replay (pass-through)."""
    return Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(generate_key_entry("replay"), seal_failures=False),
        workflow_runner=sandbox_runner(strict=strict),
    )


async def test_main_paths_replay(harness: Harness) -> None:
    scenarios: dict[str, list[WorkflowHistory]] = {}

    # 1. charge-off (closed-end loan opened late, so the run is short)
    a = await harness.open_account(due_in_days=-110, phone="+12125550120", product=Product.CLOSED_END)
    h = harness.handle(a)
    first = (await h.describe()).run_id
    assert (await h.result()).state == "charged_off"
    scenarios["chargeoff"] = await all_runs(harness, a.workflow_id, first)

    # 2. paid in full
    b = await harness.open_account(due_in_days=-3, phone="+12125550121")
    h = harness.handle(b)
    first = (await h.describe()).run_id
    await harness.skip_to(at_local(b.due_date + timedelta(days=5), 12))
    await h.signal("payment_received", PaymentIn(amount=b.balance, currency="USD", reference="r1"))
    assert (await h.result()).state == "closed_paid"
    scenarios["paid"] = await all_runs(harness, b.workflow_id, first)

    # 3. plan agreed, one instalment paid, the next missed: broken, back to dunning, then paid
    c = await harness.open_account(due_in_days=-25, phone="+12125550122")
    h = harness.handle(c)
    first = (await h.describe()).run_id
    today = (await harness.now()).astimezone(NY).date()
    plan = await h.execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT, first_due=today + timedelta(days=7), periods=2, period_days=14
        ),
        result_type=AgreedPlan,
    )
    await harness.skip_to(at_local(plan.instalments[0].due_date, 12))
    await h.signal(
        "payment_received", PaymentIn(amount=plan.instalments[0].amount, currency="USD", reference="i1")
    )
    await harness.skip_to(at_local(plan.instalments[1].due_date + timedelta(days=6), 12))
    await h.signal("payment_received", PaymentIn(amount=c.balance, currency="USD", reference="all"))
    assert (await h.result()).state == "closed_paid"
    scenarios["broken_plan"] = await all_runs(harness, c.workflow_id, first)
    assert [
        r.events[0].workflow_execution_started_event_attributes.workflow_type.name
        for r in scenarios["broken_plan"]
    ] == ["DelinquencyWorkflow", "SettlementWorkflow", "DelinquencyWorkflow"]

    # 4. plan completed
    d = await harness.open_account(due_in_days=-25, phone="+12125550123")
    h = harness.handle(d)
    first = (await h.describe()).run_id
    today = (await harness.now()).astimezone(NY).date()
    plan = await h.execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT, first_due=today + timedelta(days=7), periods=2, period_days=14
        ),
        result_type=AgreedPlan,
    )
    for inst in plan.instalments:
        await harness.skip_to(at_local(inst.due_date, 12))
        await h.signal(
            "payment_received", PaymentIn(amount=inst.amount, currency="USD", reference=f"p{inst.seq}")
        )
    assert (await h.result()).state == "closed_settled"
    scenarios["plan_completed"] = await all_runs(harness, d.workflow_id, first)

    # 5. a plan paused and resumed, then paid in full (holds in settlement)
    e = await harness.open_account(due_in_days=-25, phone="+12125550124")
    h = harness.handle(e)
    first = (await h.describe()).run_id
    today = (await harness.now()).astimezone(NY).date()
    plan = await h.execute_update(
        "propose_settlement",
        PlanProposal(
            kind=PlanKind.REINSTALMENT, first_due=today + timedelta(days=7), periods=2, period_days=14
        ),
        result_type=AgreedPlan,
    )
    await h.signal("pause", HoldRequest(reason="hardship review"))
    await harness.skip_to(at_local(plan.instalments[0].due_date + timedelta(days=6), 12))
    await h.signal("resume", HoldRequest(reason="review done"))
    await h.signal("payment_received", PaymentIn(amount=e.balance, currency="USD", reference="all"))
    assert (await h.result()).state == "closed_settled"
    scenarios["settlement_paused"] = await all_runs(harness, e.workflow_id, first)

    # 6. hand-overs at every wake-up: a week of dunning in many runs, then paid
    harness.hand_over_every_wake = True
    f = await harness.open_account(due_in_days=-3, phone="+12125550125")
    harness.hand_over_every_wake = False
    h = harness.handle(f)
    first = (await h.describe()).run_id
    await harness.skip_to(at_local(f.due_date + timedelta(days=6), 12))
    await h.signal("payment_received", PaymentIn(amount=f.balance, currency="USD", reference="all"))
    assert (await h.result()).state == "closed_paid"
    scenarios["hand_over"] = await all_runs(harness, f.workflow_id, first)
    assert len(scenarios["hand_over"]) >= 3

    fresh = [run for runs in scenarios.values() for run in runs]
    r = replayer()
    for run in fresh:
        await r.replay_workflow(run)

    if os.environ.get("COLLECT_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        for name, runs in scenarios.items():
            for i, run in enumerate(runs):
                (HISTORIES / f"{name}-{i}.json").write_text(run.to_json())


def recorded(folder: Path) -> list[WorkflowHistory]:
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 4, f"recorded histories are missing from {folder}"
    return [WorkflowHistory.from_json(f.stem, json.loads(f.read_text())) for f in files]


async def replay_failures(histories: list[WorkflowHistory], *, strict: bool = True) -> dict[str, str]:
    r = replayer(strict=strict)
    failures = {}
    for history in histories:
        result = await r.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[history.workflow_id] = str(result.replay_failure)
    return failures


@pytest.mark.parametrize("folder", [HISTORIES, LEGACY], ids=["pinned-rules", "legacy"])
@pytest.mark.parametrize("strict", [True, False], ids=["strict-sandbox", "shared-modules"])
async def test_committed_histories_replay(strict: bool, folder: Path) -> None:
    """Both sandbox settings a worker may run (``COLLECT_STRICT_SANDBOX``) replay the same histories."""
    assert not await replay_failures(recorded(folder), strict=strict)


#: An edit to every rule file a run could read: other hours, another cadence, tighter caps.
EDITS = {
    "default.toml": [
        ('send_time = "10:00"', 'send_time = "11:30"'),
        ("dpd = [4, 8, 15, 22, 29]", "dpd = [5, 9]"),
    ],
    "profiles/us.toml": [('contact_start = "08:00"', 'contact_start = "09:00"')],
    "profiles/cn.toml": [('contact_start = "08:00"', 'contact_start = "09:30"')],
    "profiles/uk.toml": [('contact_start = "08:00"', 'contact_start = "09:00"')],
}


def edited_policies(root: Path) -> Path:
    """A copy of ``policies/`` with every policy and profile file edited (each edit must apply)."""
    from domain.policy import POLICY_DIR

    shutil.copytree(POLICY_DIR, root / "policies")
    for name, edits in EDITS.items():
        path = root / "policies" / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            assert old in text, f"{name} no longer has {old!r}: update EDITS"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return root / "policies"


async def test_histories_replay_after_every_policy_file_is_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs carry their rules: an operator editing a policy or profile file (and restarting the
    workers) cannot change how a running account replays, so nothing gets stuck on a new rule."""
    import domain.policy
    import domain.profiles

    folder = edited_policies(tmp_path)
    monkeypatch.setattr(domain.policy, "POLICY_DIR", folder)
    monkeypatch.setattr(domain.profiles, "PROFILE_DIR", folder / "profiles")
    domain.policy.load_policy.cache_clear()
    domain.profiles.load_profile.cache_clear()
    try:
        assert domain.policy.load_policy("default").send_time.hour == 11  # the edit is what a run would read
        assert not await replay_failures(recorded(HISTORIES))
        # the legacy runs read the profile files on every replay: exactly what the edit breaks (the
        # shipped policies they read from frozen copies, policies/legacy/, which no edit reaches)
        assert await replay_failures(recorded(LEGACY))
    finally:
        domain.policy.load_policy.cache_clear()
        domain.profiles.load_profile.cache_clear()
