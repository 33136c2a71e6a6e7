"""Portfolio intake: CSV text to validated :class:`~domain.accounts.Account` models, and a report of every bad row.

Pure (no database, no clock), so the CLI, the API and tests share it. A bad row never stops the good
ones: each error names the line, the column and the reason, the row is skipped, and the operator fixes
the file and runs intake again (storing is idempotent). Amounts are major units in the file ("1234.50")
and become integer minor units without passing through float.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.accounts import Account, Language, Product, validate_e164
from domain.intake_files import PortfolioFile, csv_rows, read_portfolio
from domain.money import parse_major
from domain.policy import load_policy
from domain.profiles import load_profile

COLUMNS = (
    "account_id",
    "name",
    "phone",
    "timezone",
    "language",
    "region",
    "product",
    "currency",
    "balance",
    "fees",
    "due_date",
    "profile",
    "policy",
    "emergency_name",
    "emergency_phone",
    "date_of_birth",
)
REQUIRED = ("account_id", "name", "phone", "currency", "balance", "due_date")
DEFAULTS = {
    "language": Language.EN.value,
    "product": Product.CREDIT_LINE.value,
    "fees": "0",
    "profile": "US",
    "policy": "default",
}

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
# Profile and policy names become file names: no path separators, no dots.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Where pydantic reports an error -> the CSV column the operator has to fix.
_LOC_TO_COLUMN = {
    ("debtor", "name"): "name",
    ("debtor", "phone"): "phone",
    ("debtor", "timezone"): "timezone",
    ("debtor", "language"): "language",
    ("debtor", "region"): "region",
    ("debtor", "date_of_birth"): "date_of_birth",
    ("emergency", "name"): "emergency_name",
    ("emergency", "phone"): "emergency_phone",
}


class RowError(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int = Field(description="1-based line in the file; 1 is the header")
    field: str = Field(description="The CSV column to fix (or 'row' for the shape of the row)")
    reason: str
    account_id: str | None = None


class IntakeReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    accounts: list[tuple[int, Account]] = Field(default_factory=list, description="(line, account)")
    errors: list[RowError] = Field(default_factory=list)
    policy_given: list[str] = Field(
        default_factory=list,
        description="Accounts whose row named a policy: a champion/challenger strategy leaves them be",
    )


def _known(loader: Callable[[str], object], name: str, what: str) -> str | None:
    """Why ``name`` is not a usable profile/policy, or None if it loads."""
    if not _FILE_NAME.match(name):
        return f"{what} name {name!r} may only contain letters, digits, '_' and '-'"
    try:
        loader(name)
    except ValueError as exc:
        if "not found" in str(exc):
            return f"unknown {what} {name!r}"
        return f"{what} {name!r} does not load: {exc}"
    return None


def _same_number(a: str, b: str) -> bool:
    """Both numbers valid and equal once normalised (an invalid one is reported on its own)."""
    try:
        return validate_e164(a) == validate_e164(b)
    except ValueError:
        return False


def _reason(column: str, err: dict[str, object]) -> str:
    """pydantic's message, phrased for someone editing a spreadsheet."""
    ctx = err.get("ctx") or {}
    assert isinstance(ctx, dict)
    kind = err.get("type")
    if kind == "greater_than":
        return f"{column} must be greater than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"{column} must not be less than {ctx.get('ge')}"
    if kind == "enum":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{column} {err.get('input')!r} is not one of: {expected}"
    return str(err.get("msg", "is invalid")).removeprefix("Value error, ")


def _parse_row(
    values: dict[str, str], line: int, decimal_comma: bool
) -> tuple[Account | None, list[RowError]]:
    """One data row: the account, or every problem found in it (the row is then skipped)."""
    account_id = values.get("account_id") or None
    errors: list[RowError] = []

    def bad(field: str, reason: str) -> None:
        if field not in {e.field for e in errors}:  # one reason per column is enough to fix it
            errors.append(RowError(line=line, field=field, reason=reason, account_id=account_id))

    for column, value in values.items():
        if "\x00" in value:  # PostgreSQL cannot store it: reported here, not a database error
            bad(column, f"{column} must not contain the NUL character (\\x00)")
    for column in REQUIRED:
        if not values.get(column):
            bad(column, f"{column} is required")
    get = {c: values.get(c) or DEFAULTS.get(c, "") for c in COLUMNS}
    currency = get["currency"].upper()

    amounts: dict[str, int] = {}
    for column in ("balance", "fees"):
        if get[column]:
            try:
                amounts[column] = parse_major(get[column], currency or "XXX", decimal_comma=decimal_comma)
            except ValueError as exc:
                reason = str(exc)
                if "ambiguous" in reason:
                    reason += (
                        "; this file is read with --decimal-comma"
                        if decimal_comma
                        else "; a file written with decimal commas is read with --decimal-comma"
                    )
                bad(column, reason)

    due: date | None = None
    if get["due_date"]:
        if not _ISO_DATE.match(get["due_date"]):
            bad("due_date", f"due_date {get['due_date']!r} must be a date as YYYY-MM-DD")
        else:
            try:
                due = date.fromisoformat(get["due_date"])
            except ValueError:
                bad("due_date", f"due_date {get['due_date']!r} is not a real date")

    born: date | None = None
    if get["date_of_birth"]:
        if not _ISO_DATE.match(get["date_of_birth"]):
            bad("date_of_birth", f"date_of_birth {get['date_of_birth']!r} must be a date as YYYY-MM-DD")
        else:
            try:
                born = date.fromisoformat(get["date_of_birth"])
            except ValueError:
                bad("date_of_birth", f"date_of_birth {get['date_of_birth']!r} is not a real date")

    language = next((lang.value for lang in Language if lang.value.lower() == get["language"].lower()), None)
    if language is None:
        allowed = ", ".join(lang.value for lang in Language)
        bad("language", f"language {get['language']!r} is not one of: {allowed}")

    region = get["region"].upper() or None
    if region is not None and not _REGION.match(region):
        bad("region", f"region {get['region']!r} must be an ISO 3166-2 code such as US-MA")

    for column, loader in (("profile", load_profile), ("policy", load_policy)):
        if reason := _known(loader, get[column], column):
            bad(column, reason)

    # An emergency contact is optional, but half of one (a name without a number) is a mistake.
    emergency: dict[str, str] | None = None
    if get["emergency_name"] or get["emergency_phone"]:
        for column, other in (("emergency_name", "emergency_phone"), ("emergency_phone", "emergency_name")):
            if not get[column]:
                bad(column, f"{column} is required when {other} is given")
        emergency = {"name": get["emergency_name"] or "-", "phone": get["emergency_phone"] or "+10"}
        if get["emergency_phone"] and get["phone"] and _same_number(get["emergency_phone"], get["phone"]):
            bad("emergency_phone", "emergency_phone must not be the debtor's own number")

    # Validate the rest with the domain model itself (placeholders where a column already failed),
    # so intake, the API and the workflow agree on what a valid account is.
    account: Account | None = None
    try:
        account = Account.model_validate(
            {
                "account_id": get["account_id"],
                "debtor": {
                    "name": get["name"],
                    "phone": get["phone"],
                    "timezone": get["timezone"] or None,
                    "language": language or Language.EN.value,
                    "region": region,
                    "date_of_birth": born,
                },
                "product": get["product"].lower(),
                "currency": currency,
                "balance": amounts.get("balance", 1),
                "fees": amounts.get("fees", 0),
                "due_date": due or date(2000, 1, 1),
                "profile": get["profile"],
                "policy": get["policy"],
                "emergency": emergency,
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            column = _LOC_TO_COLUMN.get(loc[:2], loc[0] if loc else "row")
            if not loc and "emergency_phone" in str(err.get("msg")):
                column = "emergency_phone"  # the model's own check: the debtor's number as emergency number
            if loc == ("debtor",) and "timezone is required" in str(err.get("msg")):
                column = "timezone"  # the debtor's own check: a number with no region and no zone
            reason = _reason(column, dict(err))
            if column == "emergency_phone":  # the shared phone validator says "phone ..."
                reason = reason.replace("phone ", "emergency_phone ", 1)
            bad(column, reason)
    if account is not None and account.fees > account.balance:
        bad("fees", "fees must not exceed the balance (fees are part of it)")
    if errors:
        order = {c: i for i, c in enumerate(COLUMNS)}
        return None, sorted(errors, key=lambda e: order.get(e.field, len(order)))
    return account, []


def parse_portfolio(text: str, *, delimiter: str = ",", decimal_comma: bool = False) -> IntakeReport:
    """Parse portfolio CSV text (BOM tolerated); see :func:`parse_rows`."""
    return parse_rows(csv_rows(text, delimiter), decimal_comma=decimal_comma)


def parse_portfolio_file(
    data: bytes, *, name: str = "", encoding: str | None = None, decimal_comma: bool = False
) -> tuple[PortfolioFile, IntakeReport]:
    """A file as the lender sent it (CSV in UTF-8, UTF-16 or GB18030, or ``.xlsx``): how it was read,
    and its report. Raises :class:`~domain.intake_files.FileRefused` for a file that can't be read."""
    file = read_portfolio(data, name=name, encoding=encoding)
    return file, parse_rows(file.rows, decimal_comma=decimal_comma)


def _normal(cell: object) -> str:
    """NFKC, so a full-width "＋８６" is "+86" before any check (every column alike), then trimmed."""
    return unicodedata.normalize("NFKC", str(cell)).strip()


def parse_rows(rows: Iterable[tuple[int, list[str]]], *, decimal_comma: bool = False) -> IntakeReport:
    """Rows ``(line, cells)``, the header first, into accounts and per-row errors.

    Duplicate ``account_id``: the first occurrence wins, later ones are errors ("duplicate of line N").
    A missing required column is a file-level error (line 1) and yields no accounts at all, because
    every row would be wrong in the same way.
    """
    it = iter(rows)
    try:
        _, header = next(it)
    except StopIteration:
        return IntakeReport(errors=[RowError(line=1, field="header", reason="the file is empty")])
    columns = [_normal(h).lower() for h in header]
    while columns and not columns[-1]:  # a spreadsheet's empty trailing columns
        columns.pop()
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        return IntakeReport(
            errors=[RowError(line=1, field=c, reason=f"required column {c!r} is missing") for c in missing]
        )

    accounts: list[tuple[int, Account]] = []
    errors: list[RowError] = []
    policy_given: list[str] = []
    first_seen: dict[str, int] = {}
    for line, raw in it:
        row = [_normal(cell) for cell in raw]
        while len(row) > len(columns) and not row[-1]:
            row.pop()
        if not any(row):
            continue  # blank line
        if len(row) > len(columns):
            errors.append(
                RowError(
                    line=line,
                    field="row",
                    reason=f"has {len(row)} fields but the header has {len(columns)}",
                    account_id=dict(zip(columns, row, strict=False)).get("account_id") or None,
                )
            )
            continue
        values = {c: v for c, v in zip(columns, row, strict=False) if c}
        account_id = values.get("account_id")
        if account_id and account_id in first_seen:
            errors.append(
                RowError(
                    line=line,
                    field="account_id",
                    reason=f"duplicate of line {first_seen[account_id]}",
                    account_id=account_id,
                )
            )
            continue
        if account_id:
            first_seen[account_id] = line
        account, row_errors = _parse_row(values, line, decimal_comma)
        if account is not None:
            accounts.append((line, account))
            if values.get("policy"):
                policy_given.append(account.account_id)
        errors.extend(row_errors)
    return IntakeReport(accounts=accounts, errors=errors, policy_given=policy_given)
