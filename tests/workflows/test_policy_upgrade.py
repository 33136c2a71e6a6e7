"""Policy versions: a running account keeps the rules it was taken in with, whatever the files say
later, until an operator moves it (``./collect policy upgrade``); then it follows the new version from
its next safe point, and the audit log says who moved it when."""

from __future__ import annotations

import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from domain.accounts import Account, Debtor, Product
from domain.policy import POLICY_DIR
from domain.timeline import AccountStatus
from runtime.intake import intake_accounts, read_rules
from runtime.operator_actions import rule_versions, upgrade_accounts
from store.audit import audit_entries
from store.models import AccountRow
from tests.conftest import random_phone
from tests.workflows.conftest import NY, Harness, at_local

#: Every test here also runs with continue-as-new forced at every wake-up (tests/conftest.py):
#: an upgrade signalled before a hand-over is applied after it.
HAND_OVER_EVERY_WAKE_TOO = True


def policy_dir(root: Path, send_time: str | None = None) -> Path:
    """A copy of the project's policy directory (policy and profiles), its default send time changed."""
    shutil.copytree(POLICY_DIR / "profiles", root / "profiles")
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    assert 'send_time = "10:00"' in text
    if send_time is not None:
        text = text.replace('send_time = "10:00"', f'send_time = "{send_time}"')
    (root / "default.toml").write_text(text, encoding="utf-8")
    return root


async def take_in(harness: Harness, directory: Path) -> Account:
    """One account due in five days (courtesy reminder at DPD -3), taken in under ``directory``'s rules."""
    today = (await harness.now()).astimezone(NY).date()
    account = Account(
        account_id=f"PU-{uuid.uuid4().hex[:10]}",
        debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
        product=Product.CREDIT_LINE,
        profile="US",
        currency="USD",
        balance=50_000,
        due_date=today + timedelta(days=5),
    )
    result = await intake_accounts(
        harness.client,
        harness.sessions,
        [account],
        task_queue=harness.settings.task_queue,
        contact_queue=harness.settings.contact_task_queue,
        day_seconds=86_400,
        directory=directory,
    )
    harness.started.append(account.workflow_id)
    assert result.started == [account.account_id]
    return account


def policy_version(harness: Harness, account: Account) -> str | None:
    with harness.sessions.begin() as s:
        row = s.get(AccountRow, account.account_id)
        assert row is not None
        return row.policy_version


def hours(harness: Harness, account: Account) -> list[tuple[int, str, int]]:
    """(DPD, template, local hour) of every contact sent."""
    return [
        ((c["at"].astimezone(NY).date() - account.due_date).days, c["template"], c["at"].astimezone(NY).hour)
        for c in harness.sent(account)
    ]


async def test_an_upgrade_moves_a_running_account_at_its_next_safe_point(
    harness: Harness, tmp_path: Path
) -> None:
    old_dir = policy_dir(tmp_path / "old")
    account = await take_in(harness, old_dir)
    old, _ = read_rules("default", "US", directory=old_dir)
    await harness.skip_to(at_local(account.due_date - timedelta(days=1), 12))
    assert hours(harness, account) == [(-3, "courtesy_reminder_grace", 10)]

    new_dir = policy_dir(tmp_path / "new", send_time="14:00")
    new, _ = read_rules("default", "US", directory=new_dir)
    assert new.policy_version != old.policy_version and new.profile_version == old.profile_version

    async def upgrade(**kwargs):  # type: ignore[no-untyped-def]
        return await upgrade_accounts(
            harness.client,
            harness.sessions,
            actor="bob",
            policy_to="default",  # the file's name: its current version, stored first
            accounts=[account.account_id],
            directory=new_dir,
            now=await harness.now(),
            **kwargs,
        )

    dry = await upgrade(dry_run=True)
    assert dry.signalled == [account.account_id] and dry.policy_to == new.policy_version
    moved = await upgrade()
    assert (moved.signalled, moved.skipped, moved.not_running, moved.failed) == (
        [account.account_id],
        [],
        [],
        [],
    )
    await harness.skip_to(at_local(account.due_date + timedelta(days=10), 12))

    # (a) the workflow runs the new version, and the database says so
    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.rules_version == new.versions
    assert policy_version(harness, account) == new.policy_version
    with harness.sessions.begin() as s:
        audit = audit_entries(s, account.account_id)
    # (b) who asked, and when the account moved
    requested = [e for e in audit if e.action == "rules_upgrade_requested"]
    applied = [e for e in audit if e.action == "rules_upgraded"]
    assert [(e.actor, e.details["to"]) for e in requested] == [("bob", new.versions)]
    assert [e.actor for e in applied] == ["bob"]
    assert new.policy_version in applied[0].details["detail"]
    # (c) contacts after it follow the new send time; the one before kept the old
    got = hours(harness, account)
    assert got[0] == (-3, "courtesy_reminder_grace", 10)
    assert [d for d, _, _ in got[1:]] == [4, 5, 8]  # nothing inside the 3-day grace period
    assert all(hour == 14 for _, _, hour in got[1:]), got

    # moving it again to where it is changes nothing; ./collect policy list counts it on the new version
    assert (await upgrade()).skipped == [account.account_id]
    lines = {(v.kind, v.version): v for v in rule_versions(harness.sessions, directory=new_dir)}
    line = lines[("policy", new.policy_version)]
    assert line.in_file and line.stored and line.open_accounts >= 1


async def test_editing_the_policy_file_without_an_upgrade_changes_nothing_for_a_running_account(
    harness: Harness, tmp_path: Path
) -> None:
    directory = policy_dir(tmp_path / "policies")
    account = await take_in(harness, directory)
    pinned, _ = read_rules("default", "US", directory=directory)
    await harness.skip_to(at_local(account.due_date - timedelta(days=1), 12))

    path = directory / "default.toml"  # an operator edits the file the account was taken in with
    path.write_text(path.read_text(encoding="utf-8").replace('"10:00"', '"14:00"'), encoding="utf-8")
    edited, _ = read_rules("default", "US", directory=directory)
    assert edited.policy_version != pinned.policy_version
    await harness.skip_to(at_local(account.due_date + timedelta(days=10), 12))

    status = await harness.handle(account).query("status", result_type=AccountStatus)
    assert status.rules_version == pinned.versions
    got = hours(harness, account)
    assert [d for d, _, _ in got] == [-3, 4, 5, 8]
    assert all(hour == 10 for _, _, hour in got), got
    assert policy_version(harness, account) == pinned.policy_version
