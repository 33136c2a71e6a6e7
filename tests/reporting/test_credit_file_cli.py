"""``./collect credit-file``: writes the profile's file and says how many accounts went in and why the
others were held back, by reason; never a name on the screen."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.accounts import Account, Channel, ContactOutcome
from domain.credit_csv import read_csv
from domain.metro2 import read_file
from runtime.settings import Settings
from starter import COMMANDS, parser
from store.accounts import upsert_account
from store.contacts import AttemptState, mark_attempt, reserve_attempt
from store.db import make_engine, session_factory, upgrade


def account(profile: str, due: date, currency: str = "USD", name: str = "Jane Doe") -> Account:
    return Account.model_validate({
        "account_id": f"T-{uuid.uuid4().hex[:10]}", "currency": currency, "balance": 125_000, "due_date": due,
        "profile": profile,
        "debtor": {"name": name, "phone": "+12125550142", "timezone": "America/New_York"},
    })  # fmt: skip


def noticed(s, a: Account, when: datetime, template: str) -> None:  # type: ignore[no-untyped-def]
    key = f"n-{uuid.uuid4().hex[:8]}"
    reserve_attempt(s, dedupe_key=key, account_id=a.account_id, channel=Channel.SMS, purpose="dunning",
                    template=template, to_address=a.debtor.phone, now=when)  # fmt: skip
    mark_attempt(s, key, state=AttemptState.ACCEPTED, provider_sid=f"SM{uuid.uuid4().hex}", now=when)
    mark_attempt(s, key, state=AttemptState.ACCEPTED, outcome=ContactOutcome.DELIVERED, now=when)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'collect.db'}"
    upgrade(url)
    monkeypatch.delenv("COLLECT_FURNISHER_ID", raising=False)
    return url


async def main(db: str, argv: list[str]) -> int:
    """The command as ``./collect`` runs it, on this test's database."""
    settings = Settings(database_url=db, _env_file=None)  # type: ignore[call-arg]
    return await COMMANDS["credit-file"](parser().parse_args(argv), settings)


async def test_a_us_metro2_file_and_the_reasons_others_were_held_back(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken_in = datetime(2026, 9, 1, tzinfo=UTC)
    ready, waiting, silent, fresh = (
        account("US", date(2026, 8, 1), name="Reported Person"),
        account("US", date(2026, 8, 1), name="Waiting Person"),
        account("US", date(2026, 8, 1), name="Silent Person"),
        account("US", date(2026, 11, 20), name="Fresh Person"),
    )
    with session_factory(make_engine(db)).begin() as s:
        for a in (ready, waiting, silent, fresh):
            upsert_account(s, a, taken_in)
        noticed(s, ready, datetime(2026, 11, 1, 15, tzinfo=UTC), "credit_report_notice")
        noticed(s, waiting, datetime(2026, 11, 30, 15, tzinfo=UTC), "credit_report_notice")
    out = tmp_path / "metro2.txt"
    args = ["credit-file", "--profile", "US", "--cycle", "2026-11-30", "--out", str(out)]
    assert await main(db, args) == 2
    assert "--furnisher-id" in capsys.readouterr().err  # Metro 2 needs the bureaus' id for us
    assert await main(db, [*args, "--furnisher-id", "ACME0001"]) == 0
    printed = capsys.readouterr().out
    assert "1 accounts reported" in printed
    assert "held back: 1 no notice yet" in printed
    assert "held back: 1 waiting period until 2026-12-14" in printed
    assert "held back: 1 under 30 days past due" in printed
    assert "Person" not in printed  # names go into the file only
    f = read_file(out.read_text(encoding="ascii"))
    assert [b["consumer_account_number"] for b in f.bases] == [ready.account_id]
    assert (f.bases[0]["account_status"], f.bases[0]["surname"]) == ("82", "PERSON")  # 121 days past due
    assert f.trailer["total_base_records"] == 1
    assert out.stat().st_mode & 0o077 == 0  # names inside: readable by its owner only


async def test_a_cn_csv_and_clear_errors(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = account("CN", date(2026, 8, 1), currency="CNY", name="欧阳建国")
    with session_factory(make_engine(db)).begin() as s:
        upsert_account(s, a, datetime(2026, 9, 1, tzinfo=UTC))
        noticed(s, a, datetime(2026, 11, 1, 15, tzinfo=UTC), "credit_report_notice")
    out = tmp_path / "cn.csv"
    assert await main(db, ["credit-file", "--profile", "CN", "--cycle", "2026-11-30", "--out", str(out)]) == 0
    rows = read_csv(out.read_text(encoding="utf-8"))
    assert [(r["account_id"], r["name"], r["currency"]) for r in rows] == [(a.account_id, "欧阳建国", "CNY")]
    assert await main(db, ["credit-file", "--profile", "CN", "--cycle", "2026-13-01", "--out", str(out)]) == 2
    assert "--cycle" in capsys.readouterr().err
    assert await main(db, ["credit-file", "--profile", "XX", "--cycle", "2026-11-30", "--out", str(out)]) == 2
    assert "profile 'XX' not found" in capsys.readouterr().err
