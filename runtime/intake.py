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
    progress: Callable[[str, str], None] | None = None,
) -> IntakeResult:
    result = IntakeResult()
    gate = asyncio.Semaphore(concurrency)
    now = datetime.now(UTC)

    async def one(account: Account) -> None:
        async with gate:
            try:
                await asyncio.to_thread(_store, sessions, account, now)
                started = await start_account(
                    client,
                    AccountTerms.from_account(account),
                    task_queue=task_queue,
                    day_seconds=day_seconds,
                    contact_queue=contact_queue,
                )
            except Exception as exc:  # reported per account; the rest go on
                result.failed.append((account.account_id, f"{type(exc).__name__}: {exc}"))
                if progress:
                    progress(account.account_id, "failed")
                return
            (result.started if started else result.already).append(account.account_id)
            if progress:
                progress(account.account_id, "started" if started else "already")

    await asyncio.gather(*(one(a) for a in accounts))
    return result


def _store(sessions: sessionmaker[Session], account: Account, now: datetime) -> None:
    with sessions.begin() as s:
        repo.upsert_account(s, account, now)
