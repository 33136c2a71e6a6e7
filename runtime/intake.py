"""Intake: validated accounts into the database (with the personal data) and into Temporal (without).

Re-running intake on the same file is harmless: the database upsert is idempotent and a workflow
ID that already exists is left alone, so an operator can simply run it again after a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.accounts import Account, AccountTerms
from domain.effects import CONTACT_TASK_QUEUE
from domain.money import format_minor
from store import repo
from workflows import search
from workflows.messages import DelinquencyInput


@dataclass
class IntakeResult:
    started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


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
) -> bool:
    """Start the account's workflow; False if it already exists (running or finished)."""
    try:
        await client.start_workflow(
            "DelinquencyWorkflow",
            DelinquencyInput(terms=terms, day_seconds=day_seconds, contact_queue=contact_queue),
            id=terms.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=summary_for(terms),
            static_details=f"due {terms.due_date}, policy {terms.policy}, zones {', '.join(terms.zones[:3])}",
            search_attributes=search.initial(terms),
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


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
) -> IntakeResult:
    """Store, then start, every account; one account's failure is reported and the rest go on.

    Accounts are written ``batch`` to a transaction (one commit instead of one per account, which on
    a file database is the whole cost) by one writer that runs ahead of the starts: an account's
    workflow starts only once its row is committed, so the worker never meets an account it cannot
    read, and a crash leaves rows without workflows (which the next run starts) but never the reverse.
    """
    result = IntakeResult()
    gate = asyncio.Semaphore(concurrency)
    now = datetime.now(UTC)
    chunks = [list(accounts[i : i + batch]) for i in range(0, len(accounts), batch)]
    stored: list[asyncio.Future[dict[str, str]]] = [
        asyncio.get_running_loop().create_future() for _ in chunks
    ]

    async def writer() -> None:
        for chunk, done in zip(chunks, stored, strict=True):
            try:
                done.set_result(await asyncio.to_thread(_store_chunk, sessions, chunk, now))
            except Exception as exc:  # the database is gone: every account of the chunk fails alike
                done.set_result({a.account_id: f"{type(exc).__name__}: {exc}" for a in chunk})

    def report(account_id: str, outcome: str) -> None:
        if progress:
            progress(account_id, outcome)

    async def one(account: Account, done: asyncio.Future[dict[str, str]]) -> None:
        errors = await done
        if account.account_id in errors:
            result.failed.append((account.account_id, errors[account.account_id]))
            report(account.account_id, "failed")
            return
        async with gate:
            try:
                started = await start_account(
                    client,
                    AccountTerms.from_account(account),
                    task_queue=task_queue,
                    day_seconds=day_seconds,
                    contact_queue=contact_queue,
                )
            except Exception as exc:  # reported per account; the rest go on
                result.failed.append((account.account_id, f"{type(exc).__name__}: {exc}"))
                report(account.account_id, "failed")
                return
        (result.started if started else result.already).append(account.account_id)
        report(account.account_id, "started" if started else "already")

    writing = asyncio.create_task(writer())
    await asyncio.gather(*(one(a, done) for chunk, done in zip(chunks, stored, strict=True) for a in chunk))
    await writing
    return result


def _store_chunk(sessions: sessionmaker[Session], chunk: list[Account], now: datetime) -> dict[str, str]:
    """Store a chunk in one transaction; the failures by account id (empty when all went in).

    If the chunk's transaction fails, each account is tried alone, so one bad row (say, a number
    that differs from what is stored) is reported by name and does not hold back the others."""
    try:
        with sessions.begin() as s:
            repo.store_accounts(s, chunk, now)
        return {}
    except Exception:
        errors: dict[str, str] = {}
        for account in chunk:
            try:
                with sessions.begin() as s:
                    repo.upsert_account(s, account, now)
            except Exception as exc:
                errors[account.account_id] = f"{type(exc).__name__}: {exc}"
        return errors
