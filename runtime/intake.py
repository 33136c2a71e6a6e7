"""Intake: validated accounts into the database (with the personal data) and into Temporal (without).

Re-running intake on the same file is harmless: the database upsert is idempotent and a workflow
ID that already exists is left alone, so an operator can simply run it again after a failure.

Only taking accounts in lives here (and the helpers that start an account's workflow with the rules
the files say now, :func:`start_account` and :func:`read_rules`). What an operator does on purpose to
accounts already taken in (reopening a closed one, listing and upgrading policy versions) is in
:mod:`runtime.operator_actions`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.accounts import Account, AccountTerms, Mode
from domain.clock import REAL_DAY_SECONDS, PolicyClock
from domain.effects import CONTACT_TASK_QUEUE
from domain.money import format_minor
from domain.rules import Rules, RuleSource, current_rules, read_source, rules_from
from domain.strategy import Assignment
from store.accounts import StoredState, store_accounts, stored_states, upsert_account
from store.audit import store_clock
from store.rules import pin_accounts, rules_for, save_sources, set_account_rules
from store.variants import audit_assignments
from workflows import patches, search
from workflows.state import AccountInput


@dataclass
class IntakeResult:
    started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: stored as closed (paid, settled, …), with the close reason: never restarted by intake, even
    #: when Temporal no longer keeps the closed run (``operator_actions.reopen_account`` restarts
    #: one on purpose)
    closed: list[tuple[str, str]] = field(default_factory=list)


def read_rules(policy: str, profile: str, *, directory: Path | None = None) -> tuple[Rules, list[RuleSource]]:
    """The rules as the files say now and the two sources to store, each file read once.

    ``directory`` is a policy directory with its profiles in ``directory/profiles`` (as
    ``domain.rules.current_rules`` takes it); the project's ``policies/`` when None.
    """
    policy_src = read_source("policy", policy, directory)
    profile_src = read_source("profile", profile, directory / "profiles" if directory else None)
    return rules_from(policy_src, profile_src), [policy_src, profile_src]


def summary_for(terms: AccountTerms) -> str:
    """The static summary the Temporal UI shows: no name, a masked number."""
    return (
        f"Account {terms.account_id} · {terms.product.value} · {format_minor(terms.balance, terms.currency)} · "
        f"{terms.profile} · {terms.masked_phone}"
    )


async def start_account(
    client: Client,
    terms: AccountTerms,
    *,
    task_queue: str,
    day_seconds: float,
    contact_queue: str = CONTACT_TASK_QUEUE,
    rules: Rules | None = None,
    continue_as_new_every_wake: bool = False,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    sessions: sessionmaker[Session] | None = None,
    variant: str | None = None,
) -> bool:
    """Start the account's workflow; False if it already exists (running, or finished and still kept).

    The account runs the policy and profile as their files say now (``rules``), for good: editing
    a file later changes only accounts taken in afterwards, or those an operator upgrades.
    ``id_reuse_policy=ALLOW_DUPLICATE`` starts it again after a finished run
    (``operator_actions.reopen_account``). ``continue_as_new_every_wake`` is a test hook (see
    ``AccountState``).

    A scaled policy clock (``day_seconds`` other than a day) starts now, and with ``sessions`` the
    account's row learns it once the workflow has started, so the service and the CLI write their
    audit lines on the account's clock (``store.audit``). A real-time clock is the wall clock.

    ``variant``: the champion/challenger variant the account is in, set as the ``Variant`` search
    attribute at start (the Temporal UI filters on it: ``Variant = "gentle"``); the workflow never
    reads it, nor needs to.
    """
    rules = rules or current_rules(terms.policy, terms.profile)
    clock = PolicyClock(epoch=datetime.now(UTC), day_seconds=day_seconds)
    scaled = day_seconds != REAL_DAY_SECONDS
    try:
        await client.start_workflow(
            "DelinquencyWorkflow",
            AccountInput(
                terms=terms,
                rules=rules,
                day_seconds=day_seconds,
                epoch=clock.epoch if scaled else None,
                contact_queue=contact_queue,
                continue_as_new_every_wake=continue_as_new_every_wake,
                code=patches.CODE,  # every patch this code has is its only path: no markers
            ),
            id=terms.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=summary_for(terms),
            static_details=f"due {terms.due_date}, {rules.versions}, zones {', '.join(terms.zones[:3])}",
            search_attributes=_with_variant(search.initial(terms), variant),
        )
    except WorkflowAlreadyStartedError:
        return False
    # a reopened account may have run on another clock before: its row always learns the new one
    if sessions is not None and (scaled or id_reuse_policy == WorkflowIDReusePolicy.ALLOW_DUPLICATE):
        await asyncio.to_thread(_store_clock, sessions, terms.account_id, clock)
    return True


def _with_variant(attributes: TypedSearchAttributes, variant: str | None) -> TypedSearchAttributes:
    if variant is None:
        return attributes
    return TypedSearchAttributes(
        [*attributes.search_attributes, SearchAttributePair(search.VARIANT, variant)]
    )


def _store_clock(sessions: sessionmaker[Session], account_id: str, clock: PolicyClock) -> None:
    with sessions.begin() as s:
        store_clock(s, account_id, clock)


async def intake_accounts(
    client: Client,
    sessions: sessionmaker[Session],
    accounts: Sequence[Account],
    *,
    task_queue: str,
    day_seconds: float,
    contact_queue: str = CONTACT_TASK_QUEUE,
    concurrency: int = 32,
    batch: int = 200,
    progress: Callable[[str, str], None] | None = None,
    directory: Path | None = None,
    assignments: Mapping[str, Assignment] | None = None,
) -> IntakeResult:
    """Store, then start, every account; one account's failure is reported and the rest go on.

    Accounts are written ``batch`` to a transaction (one commit instead of one per account, which on
    a file database is the whole cost) by one writer that runs ahead of the starts: an account's
    workflow starts only once its row is committed, so the worker never meets an account it cannot
    read, and a crash leaves rows without workflows (which the next run starts) but never the reverse.

    Each distinct (policy, profile) pair is read once per run (from ``directory``, default
    ``policies/``); the same transaction as the rows stores those versions' text and pins them on
    the accounts it creates, and their workflows start with exactly those rules. An account already
    stored starts (if it must) with the versions stored for it; one stored as closed is not started
    at all and comes back in ``closed``.

    ``assignments`` (account id -> :class:`~domain.strategy.Assignment`, from
    :func:`domain.strategy.assign_accounts`): a new account is stored in its variant, with an audit
    line ``variant_assigned`` in the same transaction, and its workflow starts tagged with it; an
    account already stored keeps the variant it was stored in.
    """
    result = IntakeResult()
    gate = asyncio.Semaphore(concurrency)
    now = datetime.now(UTC)
    pins = _Pins(directory, assignments or {})
    chunks = [list(accounts[i : i + batch]) for i in range(0, len(accounts), batch)]
    stored: list[asyncio.Future[dict[str, _Ready]]] = [
        asyncio.get_running_loop().create_future() for _ in chunks
    ]

    async def writer() -> None:
        for chunk, done in zip(chunks, stored, strict=True):
            try:
                done.set_result(await asyncio.to_thread(_store_chunk, sessions, chunk, now, pins))
            except Exception as exc:  # the database is gone: every account of the chunk fails alike
                done.set_result({a.account_id: _Ready(error=f"{type(exc).__name__}: {exc}") for a in chunk})

    def report(account_id: str, outcome: str) -> None:
        if progress:
            progress(account_id, outcome)

    def fail(account_id: str, reason: str) -> None:
        result.failed.append((account_id, reason))
        report(account_id, "failed")

    async def one(account: Account, done: asyncio.Future[dict[str, _Ready]]) -> None:
        ready = (await done).get(account.account_id) or _Ready(error="not stored")
        if ready.closed is not None:
            result.closed.append((account.account_id, ready.closed))
            report(account.account_id, "closed")
            return
        if ready.rules is None:
            fail(account.account_id, ready.error or "not stored")
            return
        async with gate:
            try:
                started = await start_account(
                    client,
                    AccountTerms.from_account(account),
                    task_queue=task_queue,
                    day_seconds=day_seconds,
                    contact_queue=contact_queue,
                    rules=ready.rules,
                    sessions=sessions,
                    variant=ready.variant,
                )
            except Exception as exc:  # reported per account; the rest go on
                fail(account.account_id, f"{type(exc).__name__}: {exc}")
                return
        (result.started if started else result.already).append(account.account_id)
        report(account.account_id, "started" if started else "already")
        if started and ready.note_versions:  # stored before versions: say which ones it runs now
            try:
                await asyncio.to_thread(_note_versions, sessions, account.account_id, ready.rules, now)
            except Exception as exc:
                result.failed.append(
                    (
                        account.account_id,
                        f"started, but its versions were not stored: {type(exc).__name__}: {exc}",
                    )
                )

    writing = asyncio.create_task(writer())
    await asyncio.gather(*(one(a, done) for chunk, done in zip(chunks, stored, strict=True) for a in chunk))
    await writing
    return result


@dataclass(frozen=True)
class _Ready:
    """What a chunk's transaction decided for one account: the rules to start it with, or why not."""

    rules: Rules | None = None
    error: str | None = None
    closed: str | None = None  # stored as closed, for this reason: not started
    note_versions: bool = False  # stored before versions were pinned: store them once it starts
    variant: str | None = None  # the champion/challenger variant it is stored in


class _Pins:
    """The rules one intake run pins: the files read once per (policy, profile), stored versions
    parsed once per pair. Used by the writer alone (one thread at a time)."""

    def __init__(self, directory: Path | None, assignments: Mapping[str, Assignment]) -> None:
        self.directory = directory
        self.assignments = assignments
        self.current: dict[tuple[str, str], tuple[Rules, list[RuleSource]] | str] = {}
        self.stored: dict[tuple[str, str], Rules] = {}

    def pin(self, policy: str, profile: str) -> tuple[Rules, list[RuleSource]] | str:
        """The pair's current rules and sources, or why they cannot be read."""
        key = (policy, profile)
        if key not in self.current:
            try:
                self.current[key] = read_rules(policy, profile, directory=self.directory)
            except Exception as exc:
                self.current[key] = f"{type(exc).__name__}: {exc}"
        return self.current[key]

    def of(self, s: Session, policy_version: str, profile_version: str) -> Rules:
        key = (policy_version, profile_version)
        if key not in self.stored:
            self.stored[key] = rules_for(s, policy_version, profile_version)
        return self.stored[key]


def _store_chunk(
    sessions: sessionmaker[Session], chunk: list[Account], now: datetime, pins: _Pins
) -> dict[str, _Ready]:
    """Store a chunk in one transaction; what to do with each account (start it with which rules,
    or report it failed or closed).

    An account whose policy or profile cannot be read is reported and not stored. If the chunk's
    transaction fails, each account is tried alone, so one bad row (say, a number that differs
    from what is stored) is reported by name and does not hold back the others."""
    ready: dict[str, _Ready] = {}
    storable: list[Account] = []
    for account in chunk:
        pinned = pins.pin(account.policy, account.profile)
        if isinstance(pinned, str):
            ready[account.account_id] = _Ready(error=pinned)
        else:
            storable.append(account)
    if not storable:
        return ready
    try:
        with sessions.begin() as s:
            ready.update(_store_and_pin(s, storable, now, pins, one_by_one=False))
        return ready
    except Exception:
        for account in storable:
            try:
                with sessions.begin() as s:
                    ready.update(_store_and_pin(s, [account], now, pins, one_by_one=True))
            except Exception as exc:
                ready[account.account_id] = _Ready(error=f"{type(exc).__name__}: {exc}")
        return ready


def _store_and_pin(
    s: Session, accounts: list[Account], now: datetime, pins: _Pins, *, one_by_one: bool
) -> dict[str, _Ready]:
    """Store the accounts, the versions they are pinned to, and the pins; inside the caller's transaction."""
    ids = [a.account_id for a in accounts]
    if one_by_one:
        created = {
            a.account_id
            for a in accounts
            if upsert_account(s, a, now, variant=_variant(pins.assignments.get(a.account_id)))
        }
        known = stored_states(s, [i for i in ids if i not in created])
    else:
        known = stored_states(s, ids)
        variants = {a.account_id: v for a in accounts if (v := _variant(pins.assignments.get(a.account_id)))}
        store_accounts(s, accounts, now, variants)
        created = set(ids) - set(known)
    ready: dict[str, _Ready] = {}
    to_save: dict[str, RuleSource] = {}
    new_by_versions: dict[tuple[str, str], list[str]] = defaultdict(list)
    assigned: list[tuple[str, Assignment]] = []
    for account in accounts:
        pinned = pins.pin(account.policy, account.profile)
        assert not isinstance(pinned, str)  # _store_chunk kept only accounts whose rules read
        rules, sources = pinned
        if account.account_id in created:
            new_by_versions[(rules.policy_version, rules.profile_version)].append(account.account_id)
            to_save.update((src.version, src) for src in sources)
            assignment = pins.assignments.get(account.account_id)
            ready[account.account_id] = _Ready(rules=rules, variant=_variant(assignment))
            if assignment is not None:
                assigned.append((account.account_id, assignment))
        else:
            ready[account.account_id] = _existing(s, known[account.account_id], rules, sources, to_save, pins)
    save_sources(s, to_save.values(), now)
    for versions, account_ids in new_by_versions.items():
        pin_accounts(s, account_ids, versions, now)
    audit_assignments(s, assigned, now)
    return ready


def _variant(assignment: Assignment | None) -> str | None:
    return assignment.variant if assignment is not None else None


def _existing(
    s: Session,
    state: StoredState,
    rules: Rules,
    sources: list[RuleSource],
    to_save: dict[str, RuleSource],
    pins: _Pins,
) -> _Ready:
    """An account intake stored before: closed stays closed; otherwise it runs its stored versions."""
    if state.mode == Mode.CLOSED:
        return _Ready(closed=state.close_reason or "closed")
    if state.policy_version and state.profile_version:
        try:
            return _Ready(
                rules=pins.of(s, state.policy_version, state.profile_version), variant=state.variant
            )
        except LookupError as exc:
            return _Ready(error=str(exc))
    to_save.update((src.version, src) for src in sources)
    return _Ready(rules=rules, note_versions=True, variant=state.variant)


def _note_versions(sessions: sessionmaker[Session], account_id: str, rules: Rules, now: datetime) -> None:
    with sessions.begin() as s:
        set_account_rules(s, account_id, (rules.policy_version, rules.profile_version), now)
