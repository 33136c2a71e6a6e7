"""Money: payments to an account, and the refund queue of what must go back.

Apart from the other writes because a payment is the one an account takes whatever its state, and is
never lost:

* **To a running account** (closing or not) it is signalled and the workflow records it (what
  exceeds the balance goes to the refund queue); **to an account whose run has ended** it is
  recorded here and queued for refund in full, once per reference.
* **The refund queue** holds money paid beyond the balance, while closing, or after the run ended;
  an operator resolves each item once (refunded or applied), audited under their name.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from domain.accounts import Mode
from domain.money import MAX_PAYMENT_MINOR
from domain.timeline import AccountStatus
from service import temporal_calls as calls
from service.accounts import account_status
from service.operations import AccountClosed, AccountNotFound, InvalidRequest, RefundNotFound, audit_write
from store import refunds as refund_store
from store.accounts import account_snapshot
from store.audit import audit
from store.ledger import record_payment as store_payment
from store.refunds import RefundView
from workflows.messages import PaymentIn


# ---- payments ----------------------------------------------------------------------------------------
class PaymentTaken(BaseModel):
    """A payment the account's running workflow took; ``note`` says what a closing run does with it."""

    closing: str | None = None
    note: str | None = None


async def record_payment(
    client: Client,
    account_id: str,
    amount_minor: int,
    currency: str,
    reference: str,
    actor: str,
    *,
    sessions: sessionmaker[Session],
    source: str | None = None,
    receipt: bool = False,
) -> PaymentTaken:
    """A payment, never lost; each ``reference`` counts once per account (a retried call pays nothing twice).

    To a running account (closing or not) it is signalled: the workflow applies what is owed and
    queues the rest for refund. To an account whose run has ended it is recorded and queued for refund
    here, and :class:`AccountClosed` says so (with the refund). ``source`` defaults to ``actor``.
    ``receipt``: the running workflow texts the debtor a receipt for it, once.
    """
    if not 0 < amount_minor <= MAX_PAYMENT_MINOR:
        raise InvalidRequest("amount", f"must be between 1 and {MAX_PAYMENT_MINOR} minor units")
    source = source or actor
    try:
        status: AccountStatus | None = await account_status(client, account_id, sessions=sessions)
    except AccountClosed:
        status = None  # stored, but Temporal no longer has its run
    if status is not None:
        if currency.upper() != status.currency:
            raise InvalidRequest("currency", f"the account is in {status.currency}, not {currency.upper()}")
        payment = PaymentIn(
            amount=amount_minor, currency=status.currency, reference=reference, source=source, receipt=receipt
        )
        try:
            await calls.signal(client, sessions, account_id, "payment_received", payment)
        except AccountClosed:
            pass  # the run ended since the query: recorded below
        else:
            await audit_write(
                sessions, account_id, actor, "payment_reported", "signalled",
                amount=amount_minor, currency=status.currency, reference=reference, closing=status.closing,
            )  # fmt: skip
            return await asyncio.to_thread(_taken, sessions, account_id, status)
    raise await asyncio.to_thread(
        _after_close, sessions, account_id, amount_minor, currency, reference, source, actor
    )


def _taken(sessions: sessionmaker[Session], account_id: str, status: AccountStatus) -> PaymentTaken:
    if status.closing is None and status.mode != Mode.CLOSED:
        return PaymentTaken()
    with sessions.begin() as s:
        agency = calls.placed_with(s, account_id)
    if agency is not None:
        return PaymentTaken(
            closing=status.closing,
            note=f"the account is placed with {agency}: the payment goes against its balance",
        )
    return PaymentTaken(
        closing=status.closing,
        note=f"the account is being closed ({status.closing}): the payment is recorded, and what "
        "exceeds the balance is queued for refund",
    )


def _after_close(
    sessions: sessionmaker[Session],
    account_id: str,
    amount_minor: int,
    currency: str,
    reference: str,
    source: str,
    actor: str,
) -> AccountClosed:
    """Record a payment for an account whose run has ended and queue all of it for refund, once."""
    now = datetime.now(UTC)
    with sessions.begin() as s:
        snapshot = account_snapshot(s, account_id)
        if snapshot is None:
            raise AccountNotFound(account_id)
        if currency.upper() != snapshot.currency:
            raise InvalidRequest("currency", f"the account is in {snapshot.currency}, not {currency.upper()}")
        why = calls.closed_for(snapshot)
        try:
            new = store_payment(
                s, account_id=account_id, amount_minor=amount_minor, currency=snapshot.currency,
                reference=reference, received_at=now, source=source,
            )  # fmt: skip
        except ValueError as err:  # the reference is another payment's
            raise InvalidRequest("reference", str(err)) from err
        if new:
            refund: RefundView | None = refund_store.queue_refund(
                s, account_id=account_id, reference=reference, amount_minor=amount_minor,
                currency=snapshot.currency, reason=f"received after the account closed ({why})", now=now,
            )  # fmt: skip
            audit(
                s, at=now, clock="wall", account_id=account_id, actor=actor, action="payment_after_close",
                decision="refund_queued", details={
                    "reference": reference, "amount": amount_minor, "currency": snapshot.currency,
                    "refund_id": refund.id if refund else None, "close_reason": why,
                },
            )  # fmt: skip
        else:  # the same call again, or a payment the account took while it ran
            refund = next(
                (
                    r
                    for r in refund_store.refunds(s, status=None, account_id=account_id)
                    if r.reference == reference
                ),
                None,
            )
    if refund is not None:
        done = f"the payment {reference} was recorded and queued for refund (#{refund.id})"
    else:
        done = f"the payment {reference} was already recorded while the account was open; nothing to refund"
    return AccountClosed(
        account_id, f"the account is closed ({why}): {done}", snapshot=snapshot, refund=refund
    )


# ---- the refund queue --------------------------------------------------------------------------------
def refund_queue(sessions: sessionmaker[Session], *, status: str | None = "open") -> list[RefundView]:
    """Money to send back or apply: paid beyond the balance, while closing, or after the run ended."""
    with sessions.begin() as s:
        return refund_store.refunds(s, status=status)


def resolve_refund(
    sessions: sessionmaker[Session], refund_id: int, status: str, note: str, actor: str
) -> RefundView:
    """An operator's decision, once: ``refunded`` or ``applied``; audited with the caller's name.

    :class:`RefundNotFound` (404), ``RefundAlreadyResolved`` (409), ``InvalidRequest`` (422).
    """
    if status not in ("refunded", "applied"):
        raise InvalidRequest("status", f"must be 'refunded' or 'applied', not {status!r}")
    now = datetime.now(UTC)
    with sessions.begin() as s:
        if refund_store.refund(s, refund_id) is None:
            raise RefundNotFound(f"refund #{refund_id} not found")
        view = refund_store.resolve_refund(s, refund_id, status=status, by=actor, note=note or None, now=now)
        audit(
            s, at=now, clock="wall", account_id=view.account_id, actor=actor, action="refund_resolved", decision=status,
            details={"refund_id": refund_id, "amount": view.amount, "currency": view.currency, "note": note},
        )  # fmt: skip
        return view


__all__ = [
    "PaymentTaken",
    "record_payment",
    "refund_queue",
    "resolve_refund",
]
