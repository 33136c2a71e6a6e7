"""Reading accounts: search, an account's live status and timeline, and its contact history.

Apart from the writes (:mod:`service.plans`, :mod:`service.payments`, :mod:`service.holds`) because
nothing here changes an account, while every write starts from what is read here (the live
:func:`account_status`).

* **Search is Temporal visibility** on the typed search attributes of ``workflows/search.py``, the very
  filters an operator types in the Temporal UI; the database only adds the currency.
* **Status and timeline are the workflow's own queries** (through :mod:`service.temporal_calls`), so
  no screen can disagree with what the workflow will do; the contact history is the application
  database's record, without phone numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowExecution

from domain.accounts import HoldKind, Mode, Stage, workflow_id_for
from domain.charge_view import ChargesAnswer
from domain.numbers import NumberStatus
from domain.timeline import AccountStatus, Timeline
from service import temporal_calls as calls
from service.operations import AccountNotFound
from store.accounts import account_snapshot
from store.contact_changes import number_status
from store.contacts import AttemptView, contact_attempts
from store.rows import UnknownAccount
from workflows import search

WORKFLOW_TYPES = ("DelinquencyWorkflow", "SettlementWorkflow")
PREFIX = workflow_id_for("")
MAX_LIMIT = 500


# ---- views -----------------------------------------------------------------------------------------
class AccountSummary(BaseModel):
    """One search hit: what the Temporal UI's columns show, as typed search attributes."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    mode: Mode | None = None
    stage: Stage | None = Field(default=None, description="None until the first workflow task ran")
    dpd: int | None = Field(default=None, description="Days past due")
    balance: int | None = Field(default=None, description="Minor units")
    currency: str | None = Field(default=None, description="From the application database")
    hold: str = Field(default="none", description="Comma-separated active hold kinds, or 'none'")
    next_contact: datetime | None = None
    jurisdiction: str | None = None


# ---- reading ---------------------------------------------------------------------------------------
def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def visibility_query(
    *,
    stage: Stage | str | None = None,
    mode: Mode | str | None = None,
    hold: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    balance_min: int | None = None,
    balance_max: int | None = None,
) -> str:
    """The list filter, in the Temporal UI's own syntax (an operator can paste it there).

    ``hold``: ``none`` (no hold), ``any`` (some hold), or a hold kind (``pause`` …; matched exactly
    on the server when it is the only hold, and refined in :func:`find_accounts` otherwise).
    """
    types = ", ".join(_quote(t) for t in WORKFLOW_TYPES)
    parts = [f"WorkflowType IN ({types})", "ExecutionStatus = 'Running'"]
    if stage is not None:
        parts.append(f"{search.STAGE.name} = {_quote(Stage(stage).value)}")
    if mode is not None:
        parts.append(f"{search.MODE.name} = {_quote(Mode(mode).value)}")
    if hold is not None:
        if hold == "none":
            parts.append(f"{search.HOLD.name} = 'none'")
        else:
            parts.append(f"{search.HOLD.name} != 'none'")
            if hold != "any":
                HoldKind(hold)  # a ValueError names a kind that does not exist
    for name, op, value in (
        (search.DPD.name, ">=", dpd_min),
        (search.DPD.name, "<=", dpd_max),
        (search.BALANCE.name, ">=", balance_min),
        (search.BALANCE.name, "<=", balance_max),
    ):
        if value is not None:
            parts.append(f"{name} {op} {int(value)}")
    return " AND ".join(parts)


def _summary(execution: WorkflowExecution) -> AccountSummary:
    attrs = execution.typed_search_attributes
    mode = attrs.get(search.MODE)
    stage = attrs.get(search.STAGE)
    return AccountSummary(
        account_id=execution.id.removeprefix(PREFIX),
        mode=Mode(mode) if mode in Mode.__members__.values() else None,
        stage=Stage(stage) if stage in Stage.__members__.values() else None,
        dpd=attrs.get(search.DPD),
        balance=attrs.get(search.BALANCE),
        hold=attrs.get(search.HOLD) or "none",
        next_contact=attrs.get(search.NEXT_CONTACT),
        jurisdiction=attrs.get(search.JURISDICTION),
    )


def _currencies(sessions: sessionmaker[Session], ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    with sessions.begin() as s:
        for account_id in ids:
            snapshot = account_snapshot(s, account_id)
            if snapshot is not None:
                out[account_id] = snapshot.currency
    return out


async def find_accounts(
    client: Client,
    *,
    stage: Stage | str | None = None,
    mode: Mode | str | None = None,
    hold: str | None = None,
    dpd_min: int | None = None,
    dpd_max: int | None = None,
    balance_min: int | None = None,
    balance_max: int | None = None,
    limit: int = 50,
    sessions: sessionmaker[Session] | None = None,
) -> list[AccountSummary]:
    """Accounts whose live run matches every filter (Temporal visibility; eventually consistent).

    With ``sessions`` each hit also carries its currency from the application database.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    query = visibility_query(
        stage=stage,
        mode=mode,
        hold=hold,
        dpd_min=dpd_min,
        dpd_max=dpd_max,
        balance_min=balance_min,
        balance_max=balance_max,
    )
    out: list[AccountSummary] = []
    async for execution in client.list_workflows(query, page_size=min(limit, 100)):
        hit = _summary(execution)
        if hold not in (None, "none", "any") and hold not in hit.hold.split(","):
            continue
        out.append(hit)
        if len(out) >= limit:
            break
    if sessions is not None and out:
        currencies = await asyncio.to_thread(_currencies, sessions, [h.account_id for h in out])
        out = [h.model_copy(update={"currency": currencies.get(h.account_id)}) for h in out]
    return out


async def account_status(
    client: Client, account_id: str, *, sessions: sessionmaker[Session] | None = None
) -> AccountStatus:
    """The workflow's ``status`` query: mode, stage, DPD, balance, holds, next action, plan, closing;
    with ``sessions``, also how the number on file was found and confirmed (``number``, from the
    database: a confirmation is the database's fact, so no workflow keeps it)."""
    status = await calls.status(client, sessions, account_id)
    if sessions is None:
        return status
    number = await asyncio.to_thread(_number, sessions, account_id)
    return status.model_copy(update={"number": number}) if number is not None else status


def _number(sessions: sessionmaker[Session], account_id: str) -> NumberStatus | None:
    with sessions.begin() as s:
        try:
            return number_status(s, account_id)
        except UnknownAccount:
            return None


async def account_timeline(
    client: Client, account_id: str, *, sessions: sessionmaker[Session] | None = None
) -> Timeline:
    """The workflow's ``timeline`` query: everything that happens if nothing changes."""
    return await calls.query(client, sessions, account_id, "timeline", Timeline)  # type: ignore[no-any-return]


async def account_charges(
    client: Client, account_id: str, *, sessions: sessionmaker[Session] | None = None
) -> ChargesAnswer | None:
    """The workflow's ``charges`` query as of now: the formula, the caps and every day's figure."""
    return await calls.query(client, sessions, account_id, "charges", ChargesAnswer | None, datetime.now(UTC))  # type: ignore[no-any-return]


def contact_history(sessions: sessionmaker[Session], account_id: str) -> list[AttemptView]:
    """Every contact attempt from the application database, oldest first (no phone numbers)."""
    with sessions.begin() as s:
        if account_snapshot(s, account_id) is None:
            raise AccountNotFound(account_id)
        return contact_attempts(s, account_id)


__all__ = [
    "MAX_LIMIT",
    "AccountSummary",
    "account_status",
    "account_timeline",
    "contact_history",
    "find_accounts",
    "visibility_query",
]
