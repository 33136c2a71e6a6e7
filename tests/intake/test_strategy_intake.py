"""Champion/challenger at intake and promotion, on the real time-skipping server: each account starts
with its variant's policy and the ``Variant`` search attribute (what the Temporal UI filters on), the
variant is stored and audited; promoting the challenger rewrites the strategy, is audited under the
operator's name, and with ``upgrade_running`` signals the old champion's open accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from domain.accounts import Account, Debtor, Product
from domain.strategy import assign, assign_accounts, load_strategy, parse_strategy
from runtime.intake import intake_accounts
from runtime.strategy_actions import promote_strategy
from store.audit import audit_entries
from store.models import AccountRow, AuditRow
from tests.conftest import random_phone
from tests.workflows.conftest import Harness
from workflows import search

STRATEGY = """name = "q1"
[champion]
variant = "control"
policy = "default"
[[challengers]]
variant = "gentle"
policy = "standard"
share = 50
"""


def two_of_each(today) -> list[Account]:  # type: ignore[no-untyped-def]
    """Two accounts the strategy puts in each variant (ids drawn until both have two)."""
    strategy = parse_strategy(STRATEGY)
    picked: dict[str, list[Account]] = {"control": [], "gentle": []}
    while min(len(v) for v in picked.values()) < 2:
        account_id = f"CC-{uuid.uuid4().hex[:10]}"
        variant = assign(strategy, account_id).variant
        if len(picked[variant]) < 2:
            picked[variant].append(
                Account(
                    account_id=account_id,
                    debtor=Debtor(name="Jane Doe", phone=random_phone(), timezone="America/New_York"),
                    product=Product.CREDIT_LINE,
                    currency="USD",
                    balance=50_000,
                    due_date=today - timedelta(days=10),
                )
            )
    return picked["control"] + picked["gentle"]


async def test_intake_tags_each_account_with_its_variant_and_a_promotion_moves_the_champions(
    harness: Harness, tmp_path: Path
) -> None:
    path = tmp_path / "strategy.toml"
    path.write_text(STRATEGY, encoding="utf-8")
    strategy = load_strategy(path)
    given = two_of_each((await harness.now()).date())
    accounts, assignments = assign_accounts(strategy, given, policy_given=set())
    result = await intake_accounts(
        harness.client,
        harness.sessions,
        accounts,
        task_queue=harness.settings.task_queue,
        contact_queue=harness.settings.contact_task_queue,
        day_seconds=86_400,
        assignments=assignments,
    )
    harness.started.extend(a.workflow_id for a in accounts)
    assert sorted(result.started) == sorted(a.account_id for a in accounts)

    for account, expected in zip(accounts, ["control", "control", "gentle", "gentle"], strict=True):
        described = await harness.client.get_workflow_handle(account.workflow_id).describe()
        assert described.typed_search_attributes.get(search.VARIANT) == expected
        with harness.sessions.begin() as s:
            row = s.get(AccountRow, account.account_id)
            assert row is not None
            assert (row.variant, row.policy) == (expected, "default" if expected == "control" else "standard")
            assert (row.policy_version or "").startswith(row.policy + "@")
            line = next(e for e in audit_entries(s, account.account_id) if e.decision == "variant_assigned")
        assert line.rule == "strategy q1" and line.details["variant"] == expected

    done = await promote_strategy(
        path, "gentle", actor="alice", sessions=harness.sessions, client=harness.client, upgrade_running=True
    )
    after = load_strategy(path)
    assert after is not None and [(v.name, v.policy, v.share_bp) for v in after.variants] == [
        ("gentle", "standard", 10_000)
    ]
    assert "promoted to champion by alice" in path.read_text(encoding="utf-8")
    assert done.upgrade is not None
    assert sorted(done.upgrade.signalled) == sorted(a.account_id for a in accounts[:2])
    with harness.sessions.begin() as s:
        promoted = s.scalars(
            select(AuditRow).where(AuditRow.decision == "challenger_promoted", AuditRow.actor == "alice")
        ).all()
        assert any(
            p.details["before"].startswith("control 50% (default), gentle 50% (standard)") for p in promoted
        )
        for account in accounts[:2]:
            assert "rules_upgrade_requested" in [e.decision for e in audit_entries(s, account.account_id)]


async def test_the_intake_command_draws_rows_without_a_policy_and_leaves_named_ones_be(
    harness: Harness, tmp_path: Path
) -> None:
    from starter import cmd_intake, parser

    path = tmp_path / "strategy.toml"
    path.write_text(STRATEGY.replace("share = 50", "share = 100"), encoding="utf-8")  # all drawn: gentle
    ids = [f"CI-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    due = ((await harness.now()).date() - timedelta(days=10)).isoformat()
    portfolio = tmp_path / "lender.csv"
    portfolio.write_text(
        "account_id,name,phone,timezone,currency,balance,due_date,policy\n"
        + "".join(
            f"{account_id},Jane Doe,{random_phone()},America/New_York,USD,500.00,{due},{policy}\n"
            for account_id, policy in zip(ids, ["", "default", ""], strict=True)
        ),
        encoding="utf-8",
    )
    settings = harness.settings.model_copy(update={"strategy_file": path})
    args = parser().parse_args(["intake", str(portfolio), "--as", "alice", "--day-seconds", "86400"])
    assert await cmd_intake(args, settings, harness.client) == 0
    harness.started.extend(f"account-{i}" for i in ids)
    with harness.sessions.begin() as s:
        rows = {i: s.get(AccountRow, i) for i in ids}
        run = s.scalars(
            select(AuditRow).where(AuditRow.decision == "taken_in", AuditRow.actor == "alice")
        ).all()
    assert [(rows[i].variant, rows[i].policy) for i in ids] == [  # type: ignore[union-attr]
        ("gentle", "standard"),
        (None, "default"),  # the lender named its policy: not drawn, in no variant
        ("gentle", "standard"),
    ]
    assert any(r.details.get("variant gentle") == 2 and r.details.get("variant control") == 0 for r in run)
    described = await harness.client.get_workflow_handle(f"account-{ids[1]}").describe()
    assert described.typed_search_attributes.get(search.VARIANT) is None
