"""Champion/challenger assignment: stable, in proportion to the shares, and moved only by a share that
moves an account's bucket out of its variant; the strategy file refuses what it cannot mean; the
intervals the dashboard shows are the textbook ones."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from domain.accounts import Account, Debtor
from domain.intake import parse_portfolio
from domain.intervals import ratio_interval, wilson
from domain.strategy import (
    BUCKETS,
    StrategyError,
    assign,
    assign_accounts,
    bucket,
    parse_strategy,
    promoted,
    render_strategy,
)

IDS = [f"ACC-{i:05d}" for i in range(10_000)]


def strategy(challenger_share: str = "10", *more: tuple[str, str, str]) -> str:
    text = (
        'name = "q1"\n[champion]\nvariant = "control"\npolicy = "default"\n'
        f'[[challengers]]\nvariant = "gentle"\npolicy = "standard"\nshare = {challenger_share}\n'
    )
    for name, policy, share in more:
        text += f'[[challengers]]\nvariant = "{name}"\npolicy = "{policy}"\nshare = {share}\n'
    return text


def test_the_bucket_is_sha256_of_the_id_and_never_changes() -> None:
    # pinned: a change to the hash would silently move every running test's accounts
    assert [bucket(i) for i in ("ACC-00001", "ACC-00002", "x")] == [6517, 470, 9876]
    assert bucket("ACC-00001") == int.from_bytes(hashlib.sha256(b"ACC-00001").digest()[:8], "big") % BUCKETS
    assert all(0 <= bucket(i) < BUCKETS for i in IDS[:1000])
    s = parse_strategy(strategy())
    assert [assign(s, i) for i in IDS[:200]] == [assign(s, i) for i in IDS[:200]]


@pytest.mark.parametrize(("share", "expected"), [("10", 0.10), ("50", 0.50), ("2.5", 0.025)])
def test_ten_thousand_ids_split_as_the_shares_say(share: str, expected: float) -> None:
    s = parse_strategy(strategy(share))
    counts = Counter(assign(s, i).variant for i in IDS)
    # 4 standard deviations of a binomial share over 10,000 ids: fails by chance about once in 15,000
    tolerance = 4 * math.sqrt(expected * (1 - expected) / len(IDS))
    assert abs(counts["gentle"] / len(IDS) - expected) < tolerance
    assert counts["control"] + counts["gentle"] == len(IDS)


def test_a_three_way_split_gives_each_its_share_and_its_policy() -> None:
    s = parse_strategy(strategy("10", ("sms-first", "default", "20")))
    assert [v.share_bp for v in s.variants] == [7000, 1000, 2000]
    got = [assign(s, i) for i in IDS]
    counts = Counter(a.variant for a in got)
    for name, share in (("control", 0.7), ("gentle", 0.1), ("sms-first", 0.2)):
        assert abs(counts[name] / len(IDS) - share) < 4 * math.sqrt(share * (1 - share) / len(IDS))
    assert {a.policy for a in got if a.variant == "gentle"} == {"standard"}


def test_changing_a_share_moves_only_the_accounts_whose_bucket_leaves_their_range() -> None:
    before, after = parse_strategy(strategy("10")), parse_strategy(strategy("20"))
    for i in IDS:
        b, was, now = bucket(i), assign(before, i).variant, assign(after, i).variant
        # buckets are laid out champion first: control is 0..8999, then 0..7999
        assert was == ("control" if b < 9000 else "gentle")
        assert now == ("control" if b < 8000 else "gentle")
        if was == "gentle":
            assert now == "gentle"  # a growing challenger keeps every account it had
    moved = sum(1 for i in IDS if assign(before, i).variant != assign(after, i).variant)
    assert moved == sum(1 for i in IDS if 8000 <= bucket(i) < 9000)


def account(account_id: str, policy: str = "default") -> Account:
    return Account(
        account_id=account_id,
        debtor=Debtor(name="Jane Doe", phone="+12125550142", timezone="America/New_York"),
        currency="USD",
        balance=10_000,
        due_date=date(2026, 10, 1),
        policy=policy,
    )


def test_a_row_that_names_its_policy_stays_out_of_the_test() -> None:
    header = "account_id,name,phone,timezone,currency,balance,due_date,policy\n"
    rows = "".join(
        f"{i},Jane Doe,+12125550142,America/New_York,USD,10.00,2026-10-01,{p}\n"
        for i, p in (("A-1", ""), ("A-2", "default"), ("A-3", ""))
    )
    report = parse_portfolio(header + rows)
    assert report.policy_given == ["A-2"]
    s = parse_strategy(strategy("100"))  # every account drawn goes to the challenger
    accounts, assignments = assign_accounts(s, [a for _, a in report.accounts], set(report.policy_given))
    assert [(a.account_id, a.policy) for a in accounts] == [
        ("A-1", "standard"),
        ("A-2", "default"),
        ("A-3", "standard"),
    ]
    assert sorted(assignments) == ["A-1", "A-3"] and assignments["A-1"].variant == "gentle"
    assert assign_accounts(None, accounts, set()) == (accounts, {})


def test_promotion_gives_the_challenger_every_new_account_and_the_file_reads_back() -> None:
    s = parse_strategy(strategy("12.5"))
    assert parse_strategy(render_strategy(s, note="a note")) == s
    won = promoted(s, "gentle")
    assert [(v.name, v.policy, v.share_bp) for v in won.variants] == [("gentle", "standard", BUCKETS)]
    assert {assign(won, i).variant for i in IDS[:500]} == {"gentle"}
    assert parse_strategy(render_strategy(won)) == won
    with pytest.raises(StrategyError, match="no variant 'bold'"):
        promoted(s, "bold")
    with pytest.raises(StrategyError, match="already the champion"):
        promoted(won, "gentle")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            strategy("60") + '[[challengers]]\nvariant = "b"\npolicy = "default"\nshare = 50\n',
            "more than 100%",
        ),
        (strategy("10.005"), "at most two decimals"),
        (strategy("-1"), "between 0 and 100"),
        (
            strategy("10").replace('policy = "standard"', 'policy = "nope"'),
            "challengers[0]: policy 'nope' does not load",
        ),
        (strategy("10").replace('variant = "gentle"', 'variant = "control"'), "variant names must differ"),
        (strategy("10").replace('variant = "gentle"', 'variant = "a b"'), "may only contain"),
        (strategy("10").replace("share = 10", ""), "challengers[0]: share is required"),
        (strategy("10").replace("[champion]\n", "[champion]\nshare = 90\n"), "champion: has no share"),
        ('name = "x"\n', "champion: a [champion] table"),
        ('name = "x"\nbogus = 1\n', "unknown key(s) bogus"),
    ],
)
def test_a_strategy_file_that_cannot_be_meant_is_refused_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(StrategyError) as exc:
        parse_strategy(text, source="policies/strategies/current.toml")
    assert reason in str(exc.value) and "policies/strategies/current.toml" in str(exc.value)


def test_the_wilson_interval_matches_the_textbook_and_stays_inside_0_and_1() -> None:
    low, high = wilson(10, 100)  # Wilson (1927); e.g. Brown, Cai & DasGupta (2001): 0.0552 .. 0.1744
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    low, high = wilson(0, 30)  # no complaint in 30 accounts is not "0% ± 0"
    assert low == 0.0 and 0.11 < high < 0.12
    assert wilson(30, 30)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson(5, 3)


def test_the_ratio_interval_is_the_ratio_of_sums_and_narrows_with_more_accounts() -> None:
    assert ratio_interval([1, 2], [0, 0]) is None
    est, low, high = ratio_interval([4, 6, 2, 8], [2, 3, 1, 4])  # exactly 2 contacts per unit each
    assert (est, low, high) == (2.0, 2.0, 2.0)
    few = ratio_interval([3, 9, 1, 7], [2, 3, 1, 4])
    many = ratio_interval([3, 9, 1, 7] * 25, [2, 3, 1, 4] * 25)
    assert few is not None and many is not None and few[0] == many[0] == 2.0
    assert few[1] < many[1] <= 2.0 <= many[2] < few[2]


def test_the_shipped_example_is_a_90_10_split_once_its_challenger_policy_exists() -> None:
    example = Path(__file__).resolve().parents[2] / "policies" / "strategies" / "example.toml"
    text = example.read_text(encoding="utf-8")
    with pytest.raises(StrategyError, match="policy 'my-challenger' does not load"):
        parse_strategy(text)
    s = parse_strategy(text.replace('"my-challenger"', '"standard"'))
    assert [(v.name, v.policy, v.share_bp) for v in s.variants] == [
        ("control", "default", 9000),
        ("gentle", "standard", 1000),
    ]
