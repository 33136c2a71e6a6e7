"""The intake writes accounts a batch per transaction, yet one bad row still costs only itself.

What an operator relies on when loading a portfolio: every good account is stored *and* running,
the one that conflicts with what is stored is named with its fields, and running the same file again
starts nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from domain.accounts import Account, Debtor, Product
from runtime.intake import intake_accounts
from store.accounts import account_snapshot, upsert_account
from store.models import AccountRow
from tests.conftest import random_phone
from tests.workflows.conftest import Harness


def portfolio(n: int, today) -> list[Account]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    return [
        Account(
            account_id=f"IB-{tag}-{i:04d}",
            debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
            product=Product.CREDIT_LINE,
            profile="US",
            currency="USD",
            balance=40_000 + i,
            fees=0,
            due_date=today + timedelta(days=5),
        )
        for i in range(n)
    ]


async def test_batched_intake_stores_and_starts_every_good_account_and_names_the_bad_one(
    harness: Harness,
) -> None:
    now = await harness.now()
    accounts = portfolio(120, now.date())
    # account 70 (the second batch of 50) was loaded before with another number: a conflict
    clash = accounts[70]
    with harness.sessions.begin() as s:
        other = clash.model_copy(update={"debtor": clash.debtor.model_copy(update={"phone": random_phone()})})
        upsert_account(s, other, now)

    async def run() -> object:
        return await intake_accounts(
            harness.client,
            harness.sessions,
            accounts,
            task_queue=harness.settings.task_queue,
            contact_queue=harness.settings.contact_task_queue,
            day_seconds=86_400,
            batch=50,
        )

    first = await run()
    good = [a for a in accounts if a is not clash]
    harness.started.extend(a.workflow_id for a in good)
    assert sorted(first.started) == sorted(a.account_id for a in good)  # type: ignore[attr-defined]
    assert [aid for aid, _ in first.failed] == [clash.account_id]  # type: ignore[attr-defined]
    assert "phone" in first.failed[0][1]  # type: ignore[attr-defined]

    ids = [a.account_id for a in accounts]
    with harness.sessions.begin() as s:
        stored = s.scalar(select(func.count()).select_from(AccountRow).where(AccountRow.account_id.in_(ids)))
        kept = account_snapshot(s, clash.account_id)
    assert stored == 120
    assert kept is not None and kept.phone != clash.debtor.phone  # the stored number was not overwritten
    for account in (good[0], good[60], good[-1]):  # one from each batch is running in Temporal
        info = await harness.client.get_workflow_handle(account.workflow_id).describe()
        assert info.status is not None and info.status.name == "RUNNING"

    again = await run()
    assert again.started == []  # type: ignore[attr-defined]
    assert sorted(again.already) == sorted(a.account_id for a in good)  # type: ignore[attr-defined]
    assert [aid for aid, _ in again.failed] == [clash.account_id]  # type: ignore[attr-defined]
