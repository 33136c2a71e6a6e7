"""Portfolio intake: every bad row reported with line, column and reason; good rows unaffected."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from domain.accounts import Language, Product
from domain.intake import parse_portfolio

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HEADER = (
    "account_id,name,phone,timezone,language,region,product,currency,balance,fees,due_date,profile,policy"
)
GOOD = "ACC-1,Jane Doe,+12125550142,America/New_York,en,US-NY,credit_line,USD,1234.50,35.00,2026-10-01,US,default"

MALFORMED_REPORT = [
    (3, "phone", "phone must be in international format starting with + (E.164)", "BAD-00002"),
    (4, "phone", "phone has the wrong number of digits for its country", "BAD-00003"),
    (5, "balance", "balance must be greater than 0", "BAD-00004"),
    (6, "balance", "balance must be greater than 0", "BAD-00005"),
    (7, "balance", "amount '12.345' has more than 2 decimal places for USD", "BAD-00006"),
    (8, "due_date", "due_date '2026-13-01' is not a real date", "BAD-00007"),
    (9, "due_date", "due_date '10/01/2026' must be a date as YYYY-MM-DD", "BAD-00008"),
    (10, "product", "product 'mortgage' is not one of: credit_line, closed_end", "BAD-00009"),
    (11, "currency", "currency must be a 3-letter ISO 4217 code", "BAD-00010"),
    (12, "timezone", "timezone 'Mars/Olympus_Mons' is not an IANA time zone", "BAD-00011"),
    (14, "account_id", "duplicate of line 2", "BAD-00001"),
    (15, "profile", "unknown profile 'XX'", "BAD-00013"),
    (16, "policy", "unknown policy 'aggressive'", "BAD-00014"),
    (17, "name", "name is required", "BAD-00015"),
    (18, "fees", "fees must not exceed the balance (fees are part of it)", "BAD-00016"),
    (19, "language", "language 'fr' is not one of: en, zh-CN", "BAD-00017"),
]


def report_of(text: str) -> list[tuple[int, str, str, str | None]]:
    return [(e.line, e.field, e.reason, e.account_id) for e in parse_portfolio(text).errors]


def test_the_malformed_sample_reports_every_bad_row_exactly() -> None:
    text = (DATA / "malformed_portfolio.csv").read_text(encoding="utf-8")
    report = parse_portfolio(text)
    assert [(e.line, e.field, e.reason, e.account_id) for e in report.errors] == MALFORMED_REPORT
    assert [(line, a.account_id) for line, a in report.accounts] == [
        (2, "BAD-00001"),
        (13, "BAD-00012"),
        (20, "BAD-00018"),
    ]


def test_good_rows_are_the_same_with_or_without_the_bad_ones() -> None:
    lines = (DATA / "malformed_portfolio.csv").read_text(encoding="utf-8").splitlines()
    good_only = "\n".join([lines[0], lines[1], lines[12], lines[19]]) + "\n"
    alone = [a for _, a in parse_portfolio(good_only).accounts]
    mixed = [a for _, a in parse_portfolio("\n".join(lines)).accounts]
    assert alone == mixed and len(alone) == 3
    jane = alone[0]
    assert (jane.balance, jane.fees, jane.currency, jane.due_date) == (
        125_000,
        3_500,
        "USD",
        date(2026, 10, 1),
    )


def test_a_missing_required_column_is_one_file_level_error_per_column() -> None:
    text = "account_id,name,phone,timezone,balance,due_date\nA-1,Jane Doe,+12125550142,,10.00,2026-10-01\n"
    report = parse_portfolio(text)
    assert report.accounts == []
    assert [(e.line, e.field) for e in report.errors] == [(1, "currency")]
    text = "name,phone\nJane,+12125550142\n"
    assert [(e.line, e.field) for e in parse_portfolio(text).errors] == [
        (1, "account_id"),
        (1, "currency"),
        (1, "balance"),
        (1, "due_date"),
    ]


def test_utf8_bom_and_chinese_names(tmp_path: Path) -> None:
    row = "CN-1,王小明,+8613900000042,Asia/Shanghai,zh-CN,CN-SH,credit_line,CNY,8800.00,120.00,2026-09-15,CN,default"
    saved_by_excel = tmp_path / "portfolio.csv"
    saved_by_excel.write_text(HEADER + "\r\n" + row + "\r\n", encoding="utf-8-sig", newline="")
    text = saved_by_excel.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    report = parse_portfolio(text)
    assert report.errors == []
    ((line, account),) = report.accounts
    assert line == 2
    assert (account.account_id, account.debtor.name, account.debtor.language) == (
        "CN-1",
        "王小明",
        Language.ZH_CN,
    )
    assert (account.balance, account.fees, account.profile) == (880_000, 12_000, "CN")
    assert parse_portfolio(text.removeprefix("\ufeff")).accounts == report.accounts


def test_amounts_are_exact_minor_units_and_optional_columns_default() -> None:
    text = 'account_id,name,phone,currency,balance,due_date\nA-1,Jane Doe,+1 212 555 0142,usd,"1,234.50",2026-10-01\n'
    report = parse_portfolio(text)
    assert report.errors == []
    ((_, account),) = report.accounts
    assert (account.balance, account.fees, account.currency) == (123_450, 0, "USD")
    assert (account.product, account.profile, account.policy) == (Product.CREDIT_LINE, "US", "default")
    assert (account.debtor.language, account.debtor.timezone, account.debtor.region) == (
        Language.EN,
        None,
        None,
    )
    assert account.debtor.phone == "+12125550142"


def test_line_numbers_are_lines_of_the_file() -> None:
    bad = GOOD.replace("ACC-1", "ACC-2").replace("1234.50", "0")
    quoted = GOOD.replace("ACC-1", "ACC-3").replace("Jane Doe", '"Doe,\nJane"')
    text = "\n".join([HEADER, GOOD, "", quoted, bad]) + "\n"
    report = parse_portfolio(text)
    assert [(line, a.account_id) for line, a in report.accounts] == [(2, "ACC-1"), (4, "ACC-3")]
    assert report_of(text) == [(6, "balance", "balance must be greater than 0", "ACC-2")]


def test_several_problems_in_one_row_are_all_reported() -> None:
    row = "ACC-9,Jane Doe,12125550142,Nowhere/City,en,,credit_line,USD,-1.00,0,2026-02-30,US,default"
    assert [(f, r) for _, f, r, _ in report_of(HEADER + "\n" + row)] == [
        ("phone", "phone must be in international format starting with + (E.164)"),
        ("timezone", "timezone 'Nowhere/City' is not an IANA time zone"),
        ("balance", "balance must be greater than 0"),
        ("due_date", "due_date '2026-02-30' is not a real date"),
    ]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("policy", "../default", "policy name '../default' may only contain letters, digits, '_' and '-'"),
        ("profile", "us/../../x", "profile name 'us/../../x' may only contain letters, digits, '_' and '-'"),
        ("region", "US_MA", "region 'US_MA' must be an ISO 3166-2 code such as US-MA"),
        ("account_id", "ACC 1", "account_id must be 1-64 letters, digits, '.', '_' or '-'"),
    ],
)
def test_unsafe_or_malformed_values_are_rejected(column: str, value: str, reason: str) -> None:
    values = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    values[column] = value
    text = HEADER + "\n" + ",".join(values.values()) + "\n"
    assert [(f, r) for _, f, r, _ in report_of(text)] == [(column, reason)]


def test_a_row_with_too_many_fields_is_reported_not_guessed() -> None:
    assert report_of(HEADER + "\n" + GOOD + ",surplus\n") == [
        (2, "row", "has 14 fields but the header has 13", "ACC-1")
    ]


# ---- the sample portfolio -------------------------------------------------------------------------
def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample_portfolio", ROOT / "scripts" / "make_sample_portfolio.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sample_portfolio_parses_to_240_accounts_without_errors() -> None:
    report = parse_portfolio((DATA / "sample_portfolio.csv").read_text(encoding="utf-8"))
    assert report.errors == []
    accounts = [a for _, a in report.accounts]
    assert len(accounts) == 240 == len({a.account_id for a in accounts})
    assert {a.currency for a in accounts} == {"USD", "CNY", "GBP"}
    assert {a.product for a in accounts} == set(Product)
    assert {a.profile for a in accounts} == {"US", "CN", "UK"}
    assert {a.debtor.language for a in accounts} == set(Language)
    dpd = [(date(2026, 11, 22) - a.due_date).days for a in accounts]
    assert min(dpd) >= -5 and max(dpd) <= 170 and min(dpd) < 0 < 91 < max(dpd)
    assert any(a.debtor.timezone is None for a in accounts)  # derived from the number


def test_sample_numbers_are_fictional_and_cover_every_simulated_outcome() -> None:
    rows = list(csv.DictReader(io.StringIO((DATA / "sample_portfolio.csv").read_text(encoding="utf-8"))))
    fictional = {
        "USD": re.compile(r"^\+1\d{3}55501\d{2}$"),  # 555-01XX: reserved for fiction
        "GBP": re.compile(r"^\+447700900\d{3}$"),  # Ofcom drama range
        "CNY": re.compile(r"^\+8613\d{9}$"),
    }
    assert all(fictional[r["currency"]].match(r["phone"]) for r in rows)
    bands = [
        (0, 59),
        (60, 69),
        (70, 74),
        (75, 79),
        (80, 84),
        (85, 89),
        (90, 94),
        (95, 97),
        (98, 98),
        (99, 99),
    ]
    seen = Counter(next(b for b in bands if b[0] <= int(r["phone"][-2:]) <= b[1]) for r in rows)
    assert set(seen) == set(bands)
    assert seen[(0, 59)] / len(rows) > 0.6  # the demo mostly looks normal


def test_the_sample_generator_is_deterministic(tmp_path: Path) -> None:
    generator = load_generator()
    out = tmp_path / "sample.csv"
    assert generator.main(["--out", str(out)]) == 0
    assert out.read_bytes() == (DATA / "sample_portfolio.csv").read_bytes()
    shifted = tmp_path / "shifted.csv"
    assert generator.main(["--out", str(shifted), "--today", "2027-01-01", "--count", "30"]) == 0
    report = parse_portfolio(shifted.read_text(encoding="utf-8"))
    assert report.errors == [] and len(report.accounts) == 30
    assert report.accounts[0][1].due_date == date(2026, 11, 10)  # the README row stays 52 days past due
