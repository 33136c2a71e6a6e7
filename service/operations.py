"""What an agent can do to an account, once: the operations layer's shared ground.

The operations behind the REST API, the agent console, the debtor's pages and the agency API are
split by concern, one module each:

* :mod:`service.accounts`: finding accounts, an account's live status, timeline and contact history;
* :mod:`service.plans`: plan terms, the pure preview, proposing a settlement, the fee-waiver queue;
* :mod:`service.payments`: payments (never lost, also after the account closed) and the refund queue;
* :mod:`service.holds`: pause, resume, complaints, disputes, and the gate every signal but a payment
  passes (the agency API's recall and closing orders too).

This module holds only what they all share: the errors the front ends map to HTTP statuses, what an
account id may look like, and the audit line every write leaves.

Why a layer of its own:

* **One behaviour, several front ends.** The API (``service/api_*.py``) and the console pages call
  these functions, so a payment, a plan or a hold means the same thing whichever screen sent it, and
  each is audited the same way (when given ``sessions``) with the name of the person who did it.
* **Temporal errors become domain errors** (:mod:`service.temporal_calls`, one place for every front
  end). An account unknown to the database is :class:`AccountNotFound`; one that exists but whose run
  has ended, is closing or is placed is :class:`AccountClosed` with its state and the reason; a plan the
  workflow's validator refuses is :class:`PlanRejected` with every broken rule, one that cannot be
  agreed right now (one is already agreed) is :class:`PlanConflict`. The front ends map them to
  404 / 409 / 422 / 409 without knowing Temporal.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from domain.plans import PlanRejected as _DomainPlanRejected
from service.temporal_calls import AccountClosed, AccountNotFound
from store.audit import audit
from store.refunds import RefundAlreadyResolved

#: what an account id may look like (the API's path pattern and the console's check are this one)
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


# ---- errors the front ends map to HTTP statuses ----------------------------------------------------
# AccountNotFound (404) and AccountClosed (409) come from service.temporal_calls
class PlanRejected(_DomainPlanRejected):
    """The plan breaks policy; ``violations`` names every rule (API: 422)."""


class PlanConflict(Exception):
    """The plan cannot be agreed now: one is already agreed or being agreed, or the account is closed (409)."""


class InvalidRequest(ValueError):
    """A well-formed request the account cannot take, e.g. a payment in another currency (422)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class WaiverNotFound(LookupError):
    """No waiver request with this id (404)."""


class WaiverAlreadyDecided(Exception):
    """The waiver request was approved or rejected already (409)."""


#: the rule a self-approval breaks: money off a debt needs a second person
FOUR_EYES_RULE = "waiver.four_eyes"


class FourEyes(PermissionError):
    """Whoever asked for a waiver may not approve it (403, rule :data:`FOUR_EYES_RULE`)."""

    rule = FOUR_EYES_RULE


class RefundNotFound(LookupError):
    """No refund with this id (404); one already resolved is ``RefundAlreadyResolved`` (409)."""


class NothingToDecide(Exception):
    """A decision about a complaint or a dispute that is not open (none filed, or decided already): 409.

    The workflow would take the signal and ignore it; the operator is told instead."""


class NotPlaced(LookupError):
    """A recall of an account no agency holds (404)."""


# ---- the audit line every write leaves -------------------------------------------------------------
async def audit_write(
    sessions: sessionmaker[Session] | None,
    account_id: str,
    actor: str,
    action: str,
    decision: str,
    rule: str | None = None,
    **details: Any,
) -> None:
    """One audit line per write, naming who did it (off the event loop: SQLite writes block)."""
    if sessions is None:
        return

    def write() -> None:
        with sessions.begin() as s:
            audit(
                s,
                at=datetime.now(UTC),
                clock="wall",
                account_id=account_id,
                actor=actor,
                action=action,
                decision=decision,
                rule=rule,
                details=details,
            )

    await asyncio.to_thread(write)


__all__ = [
    "ACCOUNT_ID",
    "AccountClosed",
    "AccountNotFound",
    "InvalidRequest",
    "NotPlaced",
    "NothingToDecide",
    "PlanConflict",
    "PlanRejected",
    "RefundAlreadyResolved",
    "RefundNotFound",
    "WaiverAlreadyDecided",
    "WaiverNotFound",
    "audit_write",
]
