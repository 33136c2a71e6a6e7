"""The command line never acts anonymously: every command that changes something names a person
(``--as NAME`` or ``COLLECT_OPERATOR``), refuses without one before it touches anything, and leaves
that person's name in the audit log through the same functions the API and the console call."""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from domain.accounts import Account
from domain.timeline import AccountStatus
from runtime.cli_parser import ACTING, READING_OR_RUNNING
from runtime.settings import Settings
from service.plans import waiver_queue
from starter import COMMANDS, EXAMPLES, parser
from store.audit import audit_entries
from tests.workflows.conftest import Harness, running_harness


def test_every_command_either_acts_or_only_reads() -> None:
    commands = set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands == set(COMMANDS) == ACTING | READING_OR_RUNNING
    assert not ACTING & READING_OR_RUNNING


def without_name(example: str) -> list[str]:
    words = shlex.split(example)
    at = words.index("--as")
    return words[:at] + words[at + 2 :]


@pytest.mark.parametrize("command", sorted(ACTING))
async def test_an_acting_command_refuses_without_a_name_before_touching_anything(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLLECT_OPERATOR", raising=False)
    database = tmp_path / "never.db"
    nowhere = Settings(
        database_url=f"sqlite:///{database}",
        temporal_address="127.0.0.1:9",  # nothing answers there: a command that tried would say so
        _env_file=None,  # type: ignore[call-arg]
    )
    args = parser().parse_args(without_name(EXAMPLES[command]))
    assert await COMMANDS[command](args, nowhere) == 2
    said = capsys.readouterr()
    assert "who is acting? name yourself with --as NAME (or set COLLECT_OPERATOR)" in said.err
    assert "cannot reach Temporal" not in said.err and not database.exists()  # refused first

    monkeypatch.setenv("COLLECT_OPERATOR", "   ")  # a blank name is no name
    assert await COMMANDS[command](args, nowhere) == 2


@pytest.fixture
async def harness(env: Any, settings: Settings, simulator: Any) -> AsyncIterator[Harness]:
    async with running_harness(env, settings, simulator) as h:
        yield h


async def run(harness: Harness, line: str) -> int:
    """``./collect <line>`` against the harness's Temporal server and database."""
    target = harness.client.service_client.config.target_host
    settings = harness.settings.model_copy(update={"temporal_address": target})
    args = parser().parse_args(shlex.split(line))
    return await COMMANDS[args.command](args, settings)  # type: ignore[no-any-return]


async def status(harness: Harness, account: Account) -> AccountStatus:
    handle = harness.client.get_workflow_handle(account.workflow_id)
    return await handle.query("status", result_type=AccountStatus)  # type: ignore[no-any-return]


async def test_each_action_is_audited_under_the_operators_name(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    account = await harness.open_account(due_in_days=-20, phone="+12125550181", balance=90_000, fees=3_000)
    acc = account.account_id
    monkeypatch.delenv("COLLECT_OPERATOR", raising=False)
    assert await run(harness, f'complaint {acc} --reason "called at work" --as bob') == 0
    assert (await status(harness, account)).holds == ["complaint"]
    assert await run(harness, f'resolve-complaint {acc} resume --reason "within hours" --as bob') == 0
    assert (await status(harness, account)).holds == []
    assert await run(harness, f"resolve-complaint {acc} resume --as bob") == 1  # nothing open now
    assert "has no open complaint to decide" in capsys.readouterr().err

    monkeypatch.setenv("COLLECT_OPERATOR", "carol")  # the environment names the operator too
    assert await run(harness, f'dispute {acc} --reason "not my loan"') == 0
    assert await run(harness, f'verify-dispute {acc} --reason "statement mailed"') == 0
    assert await run(harness, f'pause {acc} --reason "in hospital"') == 0
    assert (await status(harness, account)).holds == ["pause"]
    assert await run(harness, f'resume {acc} --reason "home"') == 0
    assert await run(harness, f"pay {acc} 10.00 --reference bank-1") == 0
    assert await run(harness, f"cease {acc} voice") == 0
    assert await run(harness, f"opt-out {acc} sms") == 0
    # a fee waiver goes to the supervisors' queue, as through the API: nobody approves their own
    today = (await harness.now()).date()
    waiver = (
        f"negotiate {acc} --kind fee_waiver --first-due {today} --periods 2 --waiver 30.00 --evidence letter"
    )
    assert await run(harness, waiver) == 0
    assert "queued by carol" in capsys.readouterr().out
    after = await status(harness, account)
    assert after.holds == ["cease:voice"] and "sms" in after.opted_out and after.paid_total == 1_000
    queued = waiver_queue(harness.sessions, status="pending", account_id=acc)
    assert [(w.requested_by, w.proposal.get("approver")) for w in queued] == [("carol", None)]

    with harness.sessions.begin() as s:
        lines = audit_entries(s, acc)
    done = {(e.action, e.actor) for e in lines}
    assert {
        ("note", "bob"),
        ("complaint", "bob"),
        ("complaint_decision", "bob"),
        ("note", "carol"),
        ("dispute", "carol"),
        ("dispute_verification", "carol"),
        ("pause", "carol"),
        ("resume", "carol"),
        ("payment_reported", "carol"),
        ("cease", "carol"),
        ("opt_out", "carol"),
        ("waiver_requested", "carol"),
    } <= done
    assert not [e for e in lines if e.actor == "cli"]
    await harness.finish(account.workflow_id)
