"""Operator actions on accounts intake has already taken in: reopening a closed one, and policy versions.

Intake (:mod:`runtime.intake`) only ever stores and starts accounts from a file, and never restarts a
closed one. What an operator does on purpose to accounts that exist lives here, apart from it:

* ``./collect reopen``: :func:`reopen_account` starts a closed account's collection again, audited,
  from the *stored* balance and terms under the current rules (:class:`Refused` says why not);
  :func:`run_state` tells a running workflow from an ended or a missing one.
* ``./collect policy list`` / ``policy upgrade``: :func:`rule_versions` lists every policy and profile
  version with the open accounts running it; :func:`upgrade_accounts` moves running accounts to
  another version by signal.

Both start or signal account workflows through the helpers intake uses (:func:`runtime.intake.start_account`,
:func:`runtime.intake.read_rules`), so an account reopened or upgraded runs exactly like one taken in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.accounts import Account, AccountTerms, Debtor, EmergencyContact, Mode, Stage, workflow_id_for
from domain.cadence import dpd_at
from domain.effects import CONTACT_TASK_QUEUE
from domain.money import format_minor
from domain.policy import POLICY_DIR
from domain.profiles import PROFILE_DIR
from domain.rules import Rules, RuleSource, read_source
from runtime.intake import read_rules, start_account
from store.accounts import account_snapshot, set_mode
from store.audit import audit
from store.rules import (
    open_accounts_by_rules,
    pinned_accounts,
    rules_for,
    save_sources,
    set_account_rules,
)
from store.rules import source as stored_source
from store.rules import sources as stored_sources
from workflows.messages import RulesUpgrade


# ---- reopening a closed account ------------------------------------------------------------------
class Refused(Exception):
    """An operator action that was refused, and why (nothing was changed)."""


@dataclass(frozen=True)
class Reopened:
    account_id: str
    close_reason: str | None
    balance: int
    currency: str
    rules: Rules


async def run_state(client: Client, workflow_id: str) -> str:
    """``running``, ``ended`` (a finished run Temporal still keeps) or ``none`` (never started, or
    dropped after the namespace's retention). Raw RPC: the test server returns an unset Datetime
    search attribute in a form the SDK's typed description rejects."""
    try:
        raw = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "none"
        raise
    running = raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    return "running" if running else "ended"


async def reopen_account(
    client: Client,
    sessions: sessionmaker[Session],
    account_id: str,
    *,
    reason: str,
    actor: str,
    task_queue: str,
    day_seconds: float,
    contact_queue: str = CONTACT_TASK_QUEUE,
    now: datetime | None = None,
    directory: Path | None = None,
) -> Reopened:
    """Start a closed account's collection again, on purpose: the audited opposite of intake's refusal.

    Refused (``Refused``, nothing changed) without an actor and a reason, for an unknown account, while
    a run is open, for an account that is not closed (unless it was never started at all), when
    nothing is owed, and when it is past its policy's charge-off (its run would charge it off at once).
    Otherwise, in one transaction, the stored mode goes back to dunning with an audit line ``reopened``
    (actor, reason, the close reason it had) and the current policy and profile versions are stored
    and pinned; then a fresh ``DelinquencyWorkflow`` starts from the *stored*
    balance and terms (not an intake file's), allowed to reuse the ID of a closed run Temporal still
    keeps. If the start fails, the stored mode is put back as it was.
    """
    actor, reason = (actor or "").strip(), (reason or "").strip()
    if not actor:
        raise Refused("who reopens it? name yourself with --as NAME (or COLLECT_OPERATOR)")
    if not reason:
        raise Refused("a reopening needs a reason (--reason)")
    at = now or datetime.now(UTC)
    with sessions.begin() as s:
        snap = account_snapshot(s, account_id)
    if snap is None:
        raise Refused(f"{account_id} is not a stored account")
    state = await run_state(client, workflow_id_for(account_id))
    if state == "running":
        raise Refused(f"{account_id} has a running workflow ({snap.mode.value}): there is nothing to reopen")
    if snap.mode != Mode.CLOSED and state != "none":
        raise Refused(
            f"{account_id} is stored as {snap.mode.value}, not closed, and its last run has ended: "
            "nothing reopened"
        )
    if snap.balance_minor <= 0:
        raise Refused(f"{account_id} owes nothing ({format_minor(snap.balance_minor, snap.currency)})")
    rules, sources = read_rules(snap.policy, snap.profile, directory=directory)
    emergency = (
        EmergencyContact(name=snap.emergency_name, phone=snap.emergency_phone)
        if snap.emergency_name and snap.emergency_phone
        else None
    )
    account = Account(
        account_id=snap.account_id,
        debtor=Debtor(
            name=snap.name,
            phone=snap.phone,
            timezone=snap.timezone,
            language=snap.language,
            region=snap.region,
        ),
        product=snap.product,
        currency=snap.currency,
        balance=snap.balance_minor,
        fees=min(snap.fees_minor, snap.balance_minor),
        due_date=snap.due_date,
        profile=snap.profile,
        policy=snap.policy,
        emergency=emergency,
    )
    terms = AccountTerms.from_account(account)
    dpd = dpd_at(at, terms)
    if rules.policy.stage_for(dpd, account.product) == Stage.CHARGED_OFF:
        # its run would charge it off again in its first moment: an audit trail that says
        # "reopened" and then "charged off" at once, and nothing collected
        raise Refused(
            f"{account_id} is {dpd} days past due, past its policy's charge-off at "
            f"{rules.policy.chargeoff_for(account.product)} days: "
            "a reopened run would charge it off again at once; nothing reopened"
        )
    versions = (rules.policy_version, rules.profile_version)
    with sessions.begin() as s:
        set_mode(s, account_id, Mode.DUNNING, now=at)
        save_sources(s, sources, at)
        set_account_rules(s, account_id, versions, at)
        audit(
            s,
            at=at,
            clock="wall",
            account_id=account_id,
            actor=actor,
            action="reopened",
            decision="reopened",
            details={
                "reason": reason,
                "was": snap.mode.value,
                "close_reason": snap.close_reason,
                "balance": snap.balance_minor,
                "rules": rules.versions,
            },
        )
    try:
        started = await start_account(
            client,
            terms,
            task_queue=task_queue,
            day_seconds=day_seconds,
            contact_queue=contact_queue,
            rules=rules,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            sessions=sessions,
            variant=snap.variant,
        )
        if not started:
            raise Refused(f"{account_id} was started by someone else meanwhile: nothing reopened")
    except Exception as exc:
        with sessions.begin() as s:  # put the stored mode back: the account is not running
            set_mode(s, account_id, snap.mode, close_reason=snap.close_reason, now=at)
            if snap.policy_version and snap.profile_version:
                set_account_rules(s, account_id, (snap.policy_version, snap.profile_version), at)
            audit(
                s,
                at=at,
                clock="wall",
                account_id=account_id,
                actor=actor,
                action="reopen_failed",
                decision="reopen_failed",
                details={"error": f"{type(exc).__name__}: {exc}"},
            )
        raise
    return Reopened(
        account_id=account_id,
        close_reason=snap.close_reason,
        balance=snap.balance_minor,
        currency=snap.currency,
        rules=rules,
    )


# ---- policy versions: listing and upgrading ----------------------------------------------------
@dataclass(frozen=True)
class VersionLine:
    """One version of a policy or profile: in the file now, stored, and open accounts running it."""

    kind: str
    name: str
    version: str | None  # None: accounts taken in before versions were pinned
    in_file: bool = False
    stored: bool = False
    open_accounts: int = 0
    problem: str | None = None  # the file does not read (it is not a valid policy or profile)


def rule_versions(sessions: sessionmaker[Session], *, directory: Path | None = None) -> list[VersionLine]:
    """What ``./collect policy list`` shows: every policy and profile file with its current version,
    every stored version, and how many open accounts run each."""
    policy_dir = directory or POLICY_DIR
    profile_dir = directory / "profiles" if directory else PROFILE_DIR
    files: list[tuple[str, str, Path | None]] = [
        ("policy", p.stem, directory) for p in sorted(policy_dir.glob("*.toml")) if p.name != "agencies.toml"
    ] + [
        ("profile", p.stem.upper(), directory / "profiles" if directory else None)
        for p in sorted(profile_dir.glob("*.toml"))
    ]
    lines: dict[tuple[str, str, str | None], VersionLine] = {}

    def line(kind: str, name: str, version: str | None) -> VersionLine:
        return lines.setdefault((kind, name, version), VersionLine(kind=kind, name=name, version=version))

    for kind, name, where in files:
        try:
            src = read_source(kind, name, where)
        except ValueError as exc:
            lines[(kind, name, "")] = VersionLine(kind=kind, name=name, version="", problem=str(exc))
            continue
        lines[(kind, name, src.version)] = replace(line(kind, name, src.version), in_file=True)
    with sessions.begin() as s:
        for src in stored_sources(s):
            lines[(src.kind, src.name, src.version)] = replace(
                line(src.kind, src.name, src.version), stored=True
            )
        counts = open_accounts_by_rules(s)
    for (policy, policy_version, profile, profile_version), n in counts.items():
        for kind, name, version in (
            ("policy", policy, policy_version),
            ("profile", profile, profile_version),
        ):
            if version is not None:
                name = version.split("@", 1)[0]
            old = line(kind, name, version)
            lines[(kind, name, version)] = replace(old, open_accounts=old.open_accounts + n)
    order = {"policy": 0, "profile": 1}
    return sorted(
        lines.values(), key=lambda v: (order.get(v.kind, 2), v.name, not v.in_file, v.version or "")
    )


@dataclass
class UpgradeResult:
    policy_to: str | None
    profile_to: str | None
    dry_run: bool = False
    signalled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already on those versions
    not_running: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _target(
    s: Session, kind: str, value: str | None, directory: Path | None, now: datetime, *, store: bool
) -> RuleSource | None:
    """A stored ``name@digest``, or a file's name meaning its current version (stored first)."""
    if value is None:
        return None
    if "@" in value:
        src = stored_source(s, value)
        if src is None:
            raise LookupError(f"no stored version {value!r} (./collect policy list shows them)")
        if src.kind != kind:
            raise LookupError(f"{value} is a {src.kind}, not a {kind}")
        return src
    if kind == "policy":
        src = read_source("policy", value, directory)
    else:
        src = read_source("profile", value.upper(), directory / "profiles" if directory else None)
    if store:
        save_sources(s, [src], now)
    return src


async def upgrade_accounts(
    client: Client,
    sessions: sessionmaker[Session],
    *,
    actor: str,
    policy_to: str | None = None,
    profile_to: str | None = None,
    accounts: Sequence[str] = (),
    all_open: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    directory: Path | None = None,
    concurrency: int = 32,
) -> UpgradeResult:
    """Move running accounts to another version of their policy and/or profile (``./collect policy upgrade``).

    ``policy_to`` / ``profile_to``: a stored ``name@digest`` or a file's name (its current version,
    stored first). The accounts: those named, or with ``all_open`` every open account whose policy
    (and/or profile) has that name. An account already on the target versions is skipped; one that is
    closed or has no running workflow is counted as not running; every other one gets the
    ``rules_upgraded`` signal, which its workflow applies at its next safe point (recording
    ``rules_upgraded`` with the actor), and an audit line ``rules_upgrade_requested`` now.
    ``ValueError`` / ``LookupError`` before anything is sent for a request that cannot be right.
    """
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("who moves the accounts? name yourself with --as NAME (or COLLECT_OPERATOR)")
    if policy_to is None and profile_to is None:
        raise ValueError("nothing to move to: give --to VERSION and/or --profile-to VERSION")
    if bool(accounts) == all_open:
        raise ValueError("choose the accounts: --account ID ... or --all")
    at = now or datetime.now(UTC)
    result = UpgradeResult(policy_to=None, profile_to=None, dry_run=dry_run)
    plan: list[tuple[str, tuple[str, str], tuple[str | None, str | None]]] = []
    with sessions.begin() as s:
        policy_src = _target(s, "policy", policy_to, directory, at, store=not dry_run)
        profile_src = _target(s, "profile", profile_to, directory, at, store=not dry_run)
        result.policy_to = policy_src.version if policy_src else None
        result.profile_to = profile_src.version if profile_src else None
        rows = (
            pinned_accounts(
                s,
                policy=policy_src.name if policy_src else None,
                profile=profile_src.name if profile_src else None,
            )
            if all_open
            else pinned_accounts(s, list(dict.fromkeys(accounts)))
        )
        found = {r.account_id for r in rows}
        result.failed += [(a, "not a stored account") for a in dict.fromkeys(accounts) if a not in found]
        legacy: dict[tuple[str, str], str] = {}  # accounts from before versions: the file's version now

        def now_in_file(kind: str, name: str) -> str:
            if (kind, name) not in legacy:
                src = _target(s, kind, name, directory, at, store=not dry_run)
                assert src is not None
                legacy[(kind, name)] = src.version
            return legacy[(kind, name)]

        for row in rows:
            current = (row.policy_version, row.profile_version)
            target = (
                policy_src.version if policy_src else row.policy_version or now_in_file("policy", row.policy),
                profile_src.version
                if profile_src
                else row.profile_version or now_in_file("profile", row.profile),
            )
            if current == target:
                result.skipped.append(row.account_id)
            elif row.mode == Mode.CLOSED.value:
                result.not_running.append(row.account_id)
            else:
                plan.append((row.account_id, target, current))
        upgrades = (
            {}
            if dry_run
            else {t: RulesUpgrade(rules=rules_for(s, *t), actor=actor) for t in {t for _, t, _ in plan}}
        )

    gate = asyncio.Semaphore(concurrency)

    async def one(account_id: str, target: tuple[str, str]) -> str:
        async with gate:
            try:
                if dry_run:
                    return (
                        "signalled"
                        if await run_state(client, workflow_id_for(account_id)) == "running"
                        else "not_running"
                    )
                await client.get_workflow_handle(workflow_id_for(account_id)).signal(
                    "rules_upgraded", upgrades[target]
                )
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:  # no run, or it has ended
                    return "not_running"
                result.failed.append((account_id, f"RPCError: {exc}"))
                return "failed"
            except Exception as exc:
                result.failed.append((account_id, f"{type(exc).__name__}: {exc}"))
                return "failed"
        return "signalled"

    outcomes = await asyncio.gather(*(one(account_id, target) for account_id, target, _ in plan))
    sent: list[tuple[str, tuple[str, str], tuple[str | None, str | None]]] = []
    for (account_id, target, current), outcome in zip(plan, outcomes, strict=True):
        if outcome == "signalled":
            result.signalled.append(account_id)
            sent.append((account_id, target, current))
        elif outcome == "not_running":
            result.not_running.append(account_id)
    if sent and not dry_run:
        with sessions.begin() as s:
            for account_id, target, current in sent:
                audit(
                    s,
                    at=at,
                    clock="wall",
                    account_id=account_id,
                    actor=actor,
                    action="rules_upgrade_requested",
                    decision="rules_upgrade_requested",
                    details={"from": ", ".join(v or "-" for v in current), "to": ", ".join(target)},
                )
    return result
