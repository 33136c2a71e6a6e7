"""Portfolio files as lenders really send them: every row's verdict, whatever the file's shape.

The set: UTF-8 with a BOM and CRLF, Excel-on-Chinese-Windows GBK, Excel's UTF-16 "Unicode text" (tabs),
an ``.xlsx`` workbook with real number and date cells, full-width characters, a European file with
semicolons and decimal commas, an unknown currency and JPY (no minor unit).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from domain.intake import parse_portfolio, parse_portfolio_file
from domain.intake_files import FileRefused
from domain.money import CURRENCIES, exponent, parse_major

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["account_id", "name", "phone", "currency", "balance", "due_date", "profile"]


def csv_text(rows: list[list[str]], sep: str = ",", newline: str = "\n") -> str:
    """As a spreadsheet writes it: a cell holding the separator is quoted."""
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator=newline).writerows([HEADER, *rows])
    return out.getvalue()


def verdicts(data: bytes, name: str = "f.csv", **kw: object) -> tuple[str, list[tuple]]:
    file, report = parse_portfolio_file(data, name=name, **kw)  # type: ignore[arg-type]
    ok = [(line, a.account_id, a.debtor.name, a.balance, a.currency) for line, a in report.accounts]
    bad = [(e.line, e.field, e.reason) for e in report.errors]
    return file.describe(), ok + bad


CHINESE = [
    ["CN-1", "张伟", "+8613800138000", "CNY", "1234.50", "2026-10-01", "CN"],
    ["CN-2", "王芳", "+8613900139000", "CNY", "88", "2026-10-02", "CN"],
]


def test_utf8_with_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + csv_text(CHINESE, newline="\r\n").encode("utf-8")
    how, rows = verdicts(data)
    assert how == "UTF-8 with BOM (detected), fields separated by commas"
    assert rows == [(2, "CN-1", "张伟", 123_450, "CNY"), (3, "CN-2", "王芳", 8_800, "CNY")]


def test_a_cell_with_a_nul_character_is_reported_and_its_row_skipped() -> None:
    """PostgreSQL cannot store a NUL: the row is reported naming the column, and the others go in."""
    rows = [
        ["NUL-1", "Jane\x00Doe", "+12125550142", "USD", "10", "2026-10-01", "US"],
        ["NUL-2", "Jane Doe", "+12125550144", "USD", "10", "2026-10-01", "US"],
    ]
    _, verdict = verdicts(csv_text(rows).encode("utf-8"))
    assert verdict == [
        (3, "NUL-2", "Jane Doe", 1_000, "USD"),
        (2, "name", "name must not contain the NUL character (\\x00)"),
    ]


def test_gbk_from_excel_on_a_chinese_system_is_detected() -> None:
    data = csv_text(CHINESE, newline="\r\n").encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # what crashed intake before
    how, rows = verdicts(data)
    assert how == "GB18030 (detected), fields separated by commas"
    assert rows == [(2, "CN-1", "张伟", 123_450, "CNY"), (3, "CN-2", "王芳", 8_800, "CNY")]


def test_utf16_unicode_text_from_excel_with_tabs() -> None:
    data = csv_text(CHINESE, sep="\t", newline="\r\n").encode("utf-16")  # BOM, little-endian
    how, rows = verdicts(data, name="export.txt")
    assert how == "UTF-16 (detected), fields separated by tabs"
    assert [r[:3] for r in rows] == [(2, "CN-1", "张伟"), (3, "CN-2", "王芳")]


def test_a_western_file_that_is_not_utf8_is_refused_whole_until_its_encoding_is_given() -> None:
    rows = [["DE-1", "Jürgen Müller", "+4915112345678", "EUR", "1.234,50", "2026-10-01", "UK"]]
    data = csv_text(rows, sep=";").encode("cp1252")
    with pytest.raises(FileRefused, match=r"not UTF-8 \(byte 0xfc on line 2\).*--encoding"):
        parse_portfolio_file(data)  # read as GBK it would be "J黵gen M黮ler": never guessed
    how, got = verdicts(data, encoding="cp1252", decimal_comma=True)
    assert how == "cp1252 (as given), fields separated by semicolons"
    assert got == [(2, "DE-1", "Jürgen Müller", 123_450, "EUR")]
    with pytest.raises(FileRefused, match="not utf-8: byte 0xfc on line 2"):
        parse_portfolio_file(data, encoding="utf-8")
    with pytest.raises(FileRefused, match="unknown encoding 'latin-9000'"):
        parse_portfolio_file(data, encoding="latin-9000")


def test_decimal_commas_are_never_read_as_thousands() -> None:
    rows = [
        # Lisbon landlines: a Portuguese mobile is nationwide, and the Azores keep another clock
        ["EU-1", "Ana Pereira", "+351212345678", "EUR", "12,50", "2026-10-01", "UK"],
        ["EU-2", "Ana Pereira", "+351212345679", "EUR", "1,250", "2026-10-01", "UK"],
    ]
    _, got = verdicts(csv_text(rows).encode())
    assert got == [
        (
            3,
            "EU-2",
            "Ana Pereira",
            125_000,
            "EUR",
        ),  # grouping by three is unambiguous in a decimal-point file
        (
            2,
            "balance",
            "amount '12,50' is ambiguous: the decimal mark here is '.', and ',' only groups thousands (by three)"
            "; a file written with decimal commas is read with --decimal-comma",
        ),
    ]
    rows.append(["EU-4", "Ana Pereira", "+351212345671", "EUR", "1.234,50", "2026-10-01", "UK"])
    _, got = verdicts(csv_text(rows, sep=";").encode(), decimal_comma=True)
    assert got == [
        (2, "EU-1", "Ana Pereira", 1_250, "EUR"),
        (4, "EU-4", "Ana Pereira", 123_450, "EUR"),
        (3, "balance", "amount '1,250' has more than 2 decimal places for EUR"),
    ]
    _, got = verdicts(
        csv_text([["EU-3", "Ana", "+351212345670", "EUR", "12.50", "2026-10-01", "UK"]], sep=";").encode(),
        decimal_comma=True,
    )
    assert got == [
        (
            2,
            "balance",
            "amount '12.50' is ambiguous: the decimal mark here is ',', and '.' only groups thousands (by three)"
            "; this file is read with --decimal-comma",
        )
    ]


def test_full_width_characters_are_read_as_their_ascii_forms_in_every_column() -> None:
    rows = [
        [
            "ＣＮ－９",
            "李娜",
            "＋８６ １３８ ００１３ ８００１",
            "ＣＮＹ",
            "１，２３４．５０",
            "２０２６－１０－０１",
            "CN",
        ]
    ]
    _, got = verdicts(csv_text(rows).encode())
    assert got == [(2, "CN-9", "李娜", 123_450, "CNY")]
    ((_, account),) = parse_portfolio(csv_text(rows)).accounts
    assert account.debtor.phone == "+8613800138001"
    assert account.due_date == date(2026, 10, 1)


def test_currencies_come_from_iso_4217_with_their_minor_units() -> None:
    rows = [
        ["X-1", "Jane Doe", "+12125550142", "XYZ", "100.00", "2026-10-01", "US"],
        ["X-2", "Jane Doe", "+12125550143", "XXX", "100.00", "2026-10-01", "US"],
        ["J-1", "Sato Yui", "+819012345678", "JPY", "¥120,000", "2026-10-01", "US"],
        ["J-2", "Sato Yui", "+819012345679", "JPY", "1200.50", "2026-10-01", "US"],
        ["K-1", "Jane Doe", "+12125550144", "KWD", "1.234", "2026-10-01", "US"],
        ["U-1", "Jane Doe", "+12125550145", "USD", "€10.00", "2026-10-01", "US"],
    ]
    _, got = verdicts(csv_text(rows).encode())
    assert got == [
        (4, "J-1", "Sato Yui", 120_000, "JPY"),
        (6, "K-1", "Jane Doe", 1_234, "KWD"),
        (2, "currency", "currency 'XYZ' is not an ISO 4217 currency in use (e.g. USD, EUR, CNY, JPY)"),
        (3, "currency", "currency 'XXX' is not an ISO 4217 currency in use (e.g. USD, EUR, CNY, JPY)"),
        (5, "balance", "amount '1200.50' has decimals, but JPY has no minor unit"),
        (7, "balance", "amount '€10.00' is marked € but the currency is USD"),
    ]
    # the maintained list, not a hand-typed one: ISK has no minor unit, TND three
    assert (exponent("ISK"), exponent("TND"), exponent("CNY"), len(CURRENCIES) > 150) == (0, 3, 2, True)
    with pytest.raises(ValueError, match="is not a number"):
        parse_major("1²", "USD")  # NFKC would make it 12


def test_an_xlsx_workbook_with_number_and_date_cells() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([*HEADER, None])  # a trailing empty column, as spreadsheets have
    sheet.append(["XL-1", "Jane Doe", "+12125550142", "USD", 1234.5, datetime(2026, 10, 1), "US"])
    sheet.append(["XL-2", "John Roe", "+12125550143", "USD", 80, date(2026, 10, 2), "US"])
    sheet.append([None] * 7)
    sheet.append(["XL-3", "No Phone", 12125550144, "USD", 10, datetime(2026, 10, 3), "US"])
    buf = io.BytesIO()
    book.save(buf)
    how, got = verdicts(buf.getvalue(), name="portfolio.xlsx")
    assert how == "an Excel workbook (first sheet)"
    assert got == [
        (2, "XL-1", "Jane Doe", 123_450, "USD"),
        (3, "XL-2", "John Roe", 8_000, "USD"),
        (5, "phone", "phone must be in international format starting with + (E.164)"),
    ]
    with pytest.raises(FileRefused, match=r"not a readable \.xlsx"):
        parse_portfolio_file(b"PK\x03\x04 broken", name="portfolio.xlsx")
    with pytest.raises(FileRefused, match=r"old binary \.xls"):
        parse_portfolio_file(b"\xd0\xcf\x11\xe0junk", name="portfolio.xls")


def test_the_cli_refuses_an_unreadable_file_in_one_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "lender.csv"
    path.write_bytes(
        csv_text([["DE-1", "Jürgen Müller", "+4915112345678", "EUR", "10", "2026-10-01", "UK"]]).encode(
            "cp1252"
        )
    )
    done = subprocess.run(
        [sys.executable, "starter.py", "intake", str(path), "--as", "alice"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--encoding" in lines[0], done.stderr
