"""Every call the service makes to an account's workflow, and one meaning for what goes wrong.

Why one module: the API, the consoles, the agency API, the webhooks and the self-service pages all
talk to ``account-<id>``, and each used to read Temporal's errors its own way. A run that has ended
(paid, settled, charged off, written off …) answers a signal or an update with NOT_FOUND, exactly like
a workflow that never existed, so an account that exists was answered "not found". Here, once:

* NOT_FOUND and the account unknown to the database: :class:`AccountNotFound` (404);
* NOT_FOUND but the account stored: :class:`AccountClosed` (409), carrying the stored mode, close
  reason and balance;
* an update the workflow's validator refuses as ``AccountClosed`` (placed with an agency, closing):
  :class:`AccountClosed` with the workflow's own reason;
* a run that is still running but closing, or placed: :func:`closed_state` says why a write without
  a validator (a signal) cannot be taken, before it is sent and silently ignored.

Anything else (Temporal out of reach …) propagates; each front end answers it 503.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.accounts import Mode, workflow_id_for
from domain.timeline import AccountStatus
from store.accounts import AccountSnapshot, account_snapshot
from store.models import PlacementRow
from store.refunds import RefundView

Sessions = sessionmaker[Session] | None
#: what a write is for: a plan is refused while an agency holds the account; holds and closing are not
#: (a hold stops the agency's calls through the same gate; recall and closure are how it ends)
Purpose = Literal["plan", "hold", "close"]


class AccountNotFound(LookupError):
    """No workflow ``account-<id>`` and no such account in the database (API: 404)."""

    def __init__(self, account_id: str):
        self.account_id = account_id
        super().__init__(f"account {account_id} not found")


class AccountClosed(Exception):
    """The account exists but cannot take this write: its run ended, is closing, or it is placed (409).

    ``reason`` is the sentence for people; :meth:`body` the account's state for programs.
    """

    def __init__(
        self,
        account_id: str,
        reason: str,
        *,
        snapshot: AccountSnapshot | None = None,
        closing: str | None = None,
        running: bool = False,
        placed_with: str | None = None,
        refund: RefundView | None = None,
    ):
        self.account_id = account_id
        self.reason = reason
        self.snapshot = snapshot
        self.closing = closing
        self.running = running
        self.placed_with = placed_with
        self.refund = refund
        super().__init__(f"{account_id}: {reason}")

    def body(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "account_id": self.account_id,
            "mode": snap.mode.value if snap else None,
            "close_reason": snap.close_reason if snap else None,
            "closing": self.closing,
            "running": self.running,
            "placed_with": self.placed_with,
            "balance": snap.balance_minor if snap else None,
            "currency": snap.currency if snap else None,
            "refund": self.refund.model_dump(mode="json") if self.refund else None,
        }


# ---- what the database says --------------------------------------------------------------------------
def _snapshot(sessions: Sessions, account_id: str) -> AccountSnapshot | None:
    if sessions is None:
        return None
    with sessions.begin() as s:
        return account_snapshot(s, account_id)


def placed_with(s: Session, account_id: str) -> str | None:
    """The agency holding the account now, if any."""
    return s.scalars(
        select(PlacementRow.agency_id)
        .where(PlacementRow.account_id == account_id, PlacementRow.status == "active")
        .limit(1)
    ).first()


def closed_for(snapshot: AccountSnapshot) -> str:
    """Why a stored account has no run: its close reason (or its stored mode, should it have none)."""
    if snapshot.mode == Mode.CLOSED:
        return snapshot.close_reason or "closed"
    return f"no running workflow; stored mode {snapshot.mode.value}"


def ended(sessions: Sessions, account_id: str) -> AccountNotFound | AccountClosed:
    """The error for an account whose workflow Temporal does not know (any more)."""
    snapshot = _snapshot(sessions, account_id)
    if snapshot is None:
        return AccountNotFound(account_id)
    return AccountClosed(account_id, f"the account is closed ({closed_for(snapshot)})", snapshot=snapshot)


# ---- the calls ---------------------------------------------------------------------------------------
def _handle(client: Client, account_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(workflow_id_for(account_id))


#: How a query times out: the SDK's deadline, or the server's own ("query deadline exceeded")
QUERY_TIMED_OUT = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


async def signal_workflow(client: Client, workflow_id: str, name: str, arg: object) -> bool:
    """Signal any workflow (an account's, a field visit's); False if it has ended or never existed."""
    try:
        await client.get_workflow_handle(workflow_id).signal(name, arg)
    except RPCError as err:
        if _not_found(err):
            return False
        raise
    return True


async def signal(client: Client, sessions: Sessions, account_id: str, name: str, arg: object) -> None:
    """Signal ``account-<id>``; :class:`AccountNotFound` or :class:`AccountClosed` when its run is gone."""
    if not await signal_workflow(client, workflow_id_for(account_id), name, arg):
        raise await asyncio.to_thread(ended, sessions, account_id)


async def query(
    client: Client,
    sessions: Sessions,
    account_id: str,
    name: str,
    result_type: type[Any],
    *args: Any,
) -> Any:
    """A query; an ended run still answers (Temporal replays it), so NOT_FOUND means it is gone for good.

    A query that reaches a run in the moment it hands over (continue-as-new: a plan agreed, kept or
    broken) can go to the ended run's worker, which no longer answers, and time out; it is asked once
    more, and the new run answers (a debtor who opened their page right after paying got a 503)."""
    for asked in (1, 2):
        try:
            return await _handle(client, account_id).query(name, args=list(args), result_type=result_type)
        except RPCError as err:
            if _not_found(err):
                raise await asyncio.to_thread(ended, sessions, account_id) from err
            if asked == 2 or err.status not in QUERY_TIMED_OUT:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def status(client: Client, sessions: Sessions, account_id: str) -> AccountStatus:
    """As of now: the charges of every day ended since the run last woke are in the balance."""
    return await query(client, sessions, account_id, "status", AccountStatus, datetime.now(UTC))  # type: ignore[no-any-return]


async def update(
    client: Client, sessions: Sessions, account_id: str, name: str, arg: object, result_type: type[Any]
) -> Any:
    """An update to the running run (none is started). A refusal of type ``AccountClosed`` by the
    workflow's validator is :class:`AccountClosed`; any other refusal is left to the caller."""
    try:
        return await _handle(client, account_id).execute_update(name, arg, result_type=result_type)
    except RPCError as err:
        if _not_found(err):
            raise await asyncio.to_thread(ended, sessions, account_id) from err
        raise
    except WorkflowUpdateFailedError as err:
        closed = await asyncio.to_thread(refused, sessions, account_id, err)
        if closed is None:
            raise
        raise closed from err


def refused(sessions: Sessions, account_id: str, err: WorkflowUpdateFailedError) -> AccountClosed | None:
    """The validator's ``AccountClosed`` refusal as :class:`AccountClosed` (with the stored state)."""
    cause = err.cause
    if not isinstance(cause, ApplicationError) or cause.type != "AccountClosed":
        return None
    snapshot, agency = _stored(sessions, account_id)
    return AccountClosed(account_id, cause.message, snapshot=snapshot, running=True, placed_with=agency)


async def running(client: Client, account_id: str) -> bool:
    """Whether ``account-<id>``'s latest run is still running (raw describe: the typed one decodes
    search attributes, which the time-skipping test server sends in a form the SDK refuses)."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id_for(account_id))
    )
    try:
        raw = await client.workflow_service.describe_workflow_execution(request)
    except RPCError as err:
        if _not_found(err):
            return False
        raise
    return bool(
        raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    )


def _stored(sessions: Sessions, account_id: str) -> tuple[AccountSnapshot | None, str | None]:
    if sessions is None:
        return None, None
    with sessions.begin() as s:
        return account_snapshot(s, account_id), placed_with(s, account_id)


async def closed_state(
    client: Client, sessions: Sessions, account_id: str, now: AccountStatus, purpose: Purpose
) -> AccountClosed | None:
    """Why the account cannot take a write for ``purpose`` now, or None when it can.

    Asked before a signal, which has no validator: a closing run would take it and do nothing.
    """
    if now.closing is None and now.mode != Mode.CLOSED:
        return None
    snapshot, agency = await asyncio.to_thread(_stored, sessions, account_id)
    if not await running(client, account_id):
        reason = closed_for(snapshot) if snapshot else now.closing or "closed"
        return AccountClosed(account_id, f"the account is closed ({reason})", snapshot=snapshot)
    if agency is not None:
        if purpose != "plan":
            return None
        reason = f"the account is placed with {agency}: a plan is agreed through the agency"
        return AccountClosed(account_id, reason, snapshot=snapshot, running=True, placed_with=agency)
    closing = now.closing or (snapshot.close_reason if snapshot else None) or "closed"
    return AccountClosed(
        account_id,
        f"the account is being closed ({closing})",
        snapshot=snapshot,
        closing=now.closing,
        running=True,
    )


__all__ = [
    "AccountClosed",
    "AccountNotFound",
    "closed_for",
    "closed_state",
    "ended",
    "placed_with",
    "query",
    "refused",
    "running",
    "signal",
    "signal_workflow",
    "status",
    "update",
]
