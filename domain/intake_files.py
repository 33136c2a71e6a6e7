"""Portfolio files as lenders really have them, turned into rows for :mod:`domain.intake`.

A lender's export is rarely clean UTF-8 CSV: Excel on a Chinese system saves GBK, Excel's "Unicode
text" is UTF-16 with tabs, a European Excel writes ``;`` between fields and decimal commas, and many
send the ``.xlsx`` itself. Reading the wrong encoding does not fail loudly, it garbles names, so the
rules here are strict: an encoding is used only when it is given or can be told for sure, and a file
that can't be read is refused whole, with the reason and the way out (``--encoding``), never half-read.

Pure: bytes in, rows out (no file system), so the CLI, the API and tests share it.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

#: The columns intake knows (kept here as well as in :mod:`domain.intake` to tell the delimiter).
_DELIMITERS = (",", ";", "\t")
#: Share of a GB18030 reading's non-ASCII characters that must be common (GB2312) Chinese for the file
#: to be taken as GBK without being told: "Jürgen" in cp1252 reads as "J黵gen", a rare character.
_COMMON_CHINESE = 0.9
_ZIP = b"PK\x03\x04"


class FileRefused(ValueError):
    """The whole file can't be read as given; the message says why and what to do."""


@dataclass(frozen=True)
class PortfolioFile:
    """What was read: every row with its 1-based line (the header first), and how it was read."""

    rows: list[tuple[int, list[str]]]
    encoding: str
    detected: bool
    delimiter: str | None

    def describe(self) -> str:
        if self.encoding == "xlsx":
            return "an Excel workbook (first sheet)"
        how = "detected" if self.detected else "as given"
        sep = {",": "commas", ";": "semicolons", "\t": "tabs"}.get(self.delimiter or ",", "commas")
        return f"{self.encoding} ({how}), fields separated by {sep}"


def read_portfolio(data: bytes, *, name: str = "", encoding: str | None = None) -> PortfolioFile:
    """Rows of a CSV (any of the encodings above) or an ``.xlsx`` workbook."""
    lower = name.lower()
    if lower.endswith(".xls") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused("an old binary .xls workbook can't be read: save it as .xlsx or as CSV")
    if lower.endswith(".xlsx") or data.startswith(_ZIP):
        return PortfolioFile(rows=list(_xlsx_rows(data)), encoding="xlsx", detected=True, delimiter=None)
    text, used, detected = decode(data, encoding)
    delimiter = _delimiter(text)
    return PortfolioFile(
        rows=list(csv_rows(text, delimiter)), encoding=used, detected=detected, delimiter=delimiter
    )


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str, bool]:
    """(text, encoding used, whether it was detected rather than given)."""
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise FileRefused(f"unknown encoding {encoding!r} (try utf-8, gb18030, utf-16, cp1252)") from None
        if codec == "utf-8":
            codec = "utf-8-sig"  # a BOM is not part of the first column's name
        return _strict(data, codec), encoding, False
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return _strict(data, codec), "UTF-8 with BOM" if codec == "utf-8-sig" else "UTF-16", True
    try:
        return data.decode("utf-8"), "UTF-8", True
    except UnicodeDecodeError as exc:
        first_bad = exc
    if len(data) >= 4 and data.count(0) * 3 >= len(data):  # UTF-16 without its BOM: a NUL in every other byte
        codec = "utf-16-le" if data[1::2].count(0) > data[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(codec), codec.upper(), True
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    wide = [c for c in text if ord(c) > 0x7F]
    if wide and sum(_is_common_chinese(c) for c in wide) >= _COMMON_CHINESE * len(wide):
        return text, "GB18030", True
    line = data[: first_bad.start].count(b"\n") + 1
    raise FileRefused(
        f"the file is not UTF-8 (byte 0x{data[first_bad.start]:02x} on line {line}) and its encoding can't be "
        "told for sure: give it with --encoding (cp1252 for Western European Excel, gb18030 for Chinese, "
        "shift_jis, …) or save the file as UTF-8"
    )


def _is_common_chinese(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _strict(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileRefused(
            f"the file is not {codec.removesuffix('-sig')}: byte 0x{data[exc.start]:02x} on line {line} "
            "can't be read; give the file's own encoding with --encoding"
        ) from None


def _delimiter(text: str) -> str:
    """The separator that splits the header into the most fields (a European Excel writes ``;``)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    return max(_DELIMITERS, key=lambda d: (len(header.split(d)), d == ","))


def csv_rows(text: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=delimiter)
    last_line = 0
    for row in reader:
        yield last_line + 1, row
        last_line = reader.line_num


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors alike
        raise FileRefused(f"not a readable .xlsx workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [_cell(v) for v in values]
    finally:
        book.close()


def _cell(value: object) -> str:
    """A cell as the text a CSV export would have held (dates ISO, whole numbers without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
