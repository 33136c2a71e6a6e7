"""The API's account routes (``/api/accounts``): find accounts, look at one, and void its links.

Reading is for every role that may read (an auditor too): search on Temporal visibility, the live
status and timeline (the workflow's own queries), the contact attempts and the audit log; every read
is audited (:class:`service.api.OperationsRoute`). One write: an agent voids every self-service link
and debtor session of an account (the debtor says someone else reads their texts), as the debtor's own
"sign out everywhere" does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from domain.accounts import Mode, Stage
from domain.charge_view import ChargesAnswer
from domain.timeline import AccountStatus, Timeline
from service import accounts
from service import operations as ops
from service.api import (
    ACCOUNT_RESPONSES,
    AUTH_RESPONSES,
    MAX_MINOR,
    AccountId,
    Reader,
    Sessions,
    Temporal,
    Writer,
    api_router,
)
from store import debtor_sessions
from store.accounts import account_snapshot
from store.audit import AuditEntry, audit, audit_entries
from store.contacts import AttemptView

router = api_router()


class HoldFilter(StrEnum):
    NONE = "none"
    ANY = "any"
    PAUSE = "pause"
    DISPUTE = "dispute"
    COMPLAINT = "complaint"
    CEASE = "cease"
    ATTORNEY = "attorney"
    BANKRUPTCY = "bankruptcy"
    DECEASED = "deceased"
    NEGOTIATION = "negotiation"


# ---- reading ---------------------------------------------------------------------------------------
@router.get(
    "/accounts",
    tags=["accounts"],
    response_model=list[accounts.AccountSummary],
    responses={**AUTH_RESPONSES, 503: {"description": "Temporal is out of reach"}},
    summary="Find accounts by stage, days past due, hold, balance and mode",
)
async def find_accounts(
    _who: Reader,
    client: Temporal,
    sessions: Sessions,
    stage: Stage | None = None,
    mode: Mode | None = None,
    hold: Annotated[HoldFilter | None, Query(description="none, any, or one hold kind")] = None,
    dpd_min: Annotated[int | None, Query(ge=-10_000, le=100_000)] = None,
    dpd_max: Annotated[int | None, Query(ge=-10_000, le=100_000)] = None,
    balance_min: Annotated[int | None, Query(ge=0, le=MAX_MINOR, description="Minor units")] = None,
    balance_max: Annotated[int | None, Query(ge=0, le=MAX_MINOR, description="Minor units")] = None,
    limit: Annotated[int, Query(ge=1, le=accounts.MAX_LIMIT)] = 50,
) -> list[accounts.AccountSummary]:
    """Temporal visibility on the typed search attributes: the same filters as the Temporal UI."""
    return await accounts.find_accounts(
        client,
        stage=stage,
        mode=mode,
        hold=hold.value if hold else None,
        dpd_min=dpd_min,
        dpd_max=dpd_max,
        balance_min=balance_min,
        balance_max=balance_max,
        limit=limit,
        sessions=sessions,
    )


@router.get(
    "/accounts/{account_id}",
    tags=["accounts"],
    response_model=AccountStatus,
    responses=ACCOUNT_RESPONSES,
    summary="An account's live status (the workflow's status query)",
)
async def account_status(
    account_id: AccountId, _who: Reader, client: Temporal, sessions: Sessions
) -> AccountStatus:
    return await accounts.account_status(client, account_id, sessions=sessions)


@router.get(
    "/accounts/{account_id}/timeline",
    tags=["accounts"],
    response_model=Timeline,
    responses=ACCOUNT_RESPONSES,
    summary="Everything that will happen if nothing changes",
)
async def account_timeline(
    account_id: AccountId, _who: Reader, client: Temporal, sessions: Sessions
) -> Timeline:
    return await accounts.account_timeline(client, account_id, sessions=sessions)


@router.get(
    "/accounts/{account_id}/charges",
    tags=["accounts"],
    response_model=ChargesAnswer | None,
    responses=ACCOUNT_RESPONSES,
    summary="Penalty interest and late fees: the formula, the caps and each day's figure (null: none apply)",
)
async def account_charges(
    account_id: AccountId, _who: Reader, client: Temporal, sessions: Sessions
) -> ChargesAnswer | None:
    return await accounts.account_charges(client, account_id, sessions=sessions)


@router.get(
    "/accounts/{account_id}/contacts",
    tags=["accounts"],
    response_model=list[AttemptView],
    responses=ACCOUNT_RESPONSES,
    summary="Every contact attempt (from the application database; no phone numbers)",
)
async def contact_history(account_id: AccountId, _who: Reader, sessions: Sessions) -> list[AttemptView]:
    return await run_in_threadpool(accounts.contact_history, sessions, account_id)


def _audit_lines(sessions: sessionmaker[Session], account_id: str) -> list[AuditEntry]:
    with sessions.begin() as s:
        if account_snapshot(s, account_id) is None:
            raise ops.AccountNotFound(account_id)
        return audit_entries(s, account_id)


@router.get(
    "/accounts/{account_id}/audit",
    tags=["accounts"],
    response_model=list[AuditEntry],
    responses=ACCOUNT_RESPONSES,
    summary="Every decision on the account: contacts, plans, payments, holds, and who made them",
)
async def audit_log(account_id: AccountId, _who: Reader, sessions: Sessions) -> list[AuditEntry]:
    return await run_in_threadpool(_audit_lines, sessions, account_id)


# ---- the debtor's links -------------------------------------------------------------------------------
class LinksRevoked(BaseModel):
    account_id: str
    sessions_closed: int = Field(description="Debtor sessions that were open and are closed now")
    revoked_at: datetime = Field(description="Links sent before this moment open nothing any more")


def _revoke(sessions: sessionmaker[Session], account_id: str, actor: str) -> LinksRevoked:
    now = datetime.now(UTC)
    with sessions.begin() as s:
        if account_snapshot(s, account_id) is None:
            raise ops.AccountNotFound(account_id)
        closed = debtor_sessions.revoke_everything(s, account_id, now)
        audit(
            s,
            at=now,
            clock="wall",
            account_id=account_id,
            actor=actor,
            action="self_service",
            decision="links_revoked",
            details={"sessions": closed},
        )
    return LinksRevoked(account_id=account_id, sessions_closed=closed, revoked_at=now)


@router.post(
    "/accounts/{account_id}/links/revoke",
    tags=["accounts"],
    response_model=LinksRevoked,
    responses=ACCOUNT_RESPONSES,
    summary="Void every self-service link sent so far and close the debtor's open sessions",
)
async def revoke_links(account_id: AccountId, who: Writer, sessions: Sessions) -> LinksRevoked:
    return await run_in_threadpool(_revoke, sessions, account_id, who.name)
