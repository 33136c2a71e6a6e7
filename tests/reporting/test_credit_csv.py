"""The CSV the CN and UK profiles furnish: documented columns, UTF-8, ISO dates, minor units with the
currency, read back as written."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.accounts import Product
from domain.credit_csv import COLUMNS, read_csv, write_csv
from domain.credit_reporting import AccountFacts, AccountState, DisputeState, Furnished
from domain.profiles import load_profile

CN = load_profile("CN").credit_reporting
UK = load_profile("UK").credit_reporting


def item(name: str, **changes: object) -> Furnished:
    base: dict[str, object] = {
        "account_id": "CN-1", "product": Product.CLOSED_END, "currency": "CNY", "cycle_date": date(2026, 11, 30),
        "date_opened": date(2026, 8, 2), "due_date": date(2026, 8, 1), "original_minor": 1_234_567,
        "balance_minor": 1_234_567, "past_due_minor": 1_234_567, "days_past_due": 121, "state": AccountState.OPEN,
        "notice_delivered_at": datetime(2026, 10, 1, 2, tzinfo=UTC), "dispute": DisputeState.OPEN,
    }  # fmt: skip
    return Furnished(name=name, facts=AccountFacts.model_validate({**base, **changes}))


def test_a_cn_file_reads_back_column_by_column() -> None:
    assert CN is not None
    rows = [
        item("欧阳建国"),
        item("王五", account_id="CN-2", state=AccountState.SETTLED, settled_for_less=True, balance_minor=0,
             past_due_minor=0, closed_on=date(2026, 11, 20), last_payment_on=date(2026, 11, 20),
             paid_in_cycle_minor=800_000, dispute=DisputeState.NONE),
    ]  # fmt: skip
    text = write_csv(rows, CN)
    assert text.encode("utf-8").decode("utf-8") == text and not text.startswith("\ufeff")
    back = read_csv(text)
    assert back[0] == {
        "account_id": "CN-1", "name": "欧阳建国", "product": "closed_end", "currency": "CNY",
        "original_minor": "1234567", "balance_minor": "1234567", "past_due_minor": "1234567",
        "charged_off_minor": "0", "paid_in_cycle_minor": "0", "cycle_date": "2026-11-30",
        "date_opened": "2026-08-02", "due_date": "2026-08-01", "first_delinquency": "2026-08-31",
        "days_past_due": "121", "status": "open", "settled_for_less": "false", "closed_on": "",
        "last_payment_on": "", "dispute": "open", "notice_delivered_on": "2026-10-01", "record_stays_until": "",
    }  # fmt: skip
    assert back[1]["status"] == "settled" and back[1]["settled_for_less"] == "true"
    assert back[1]["record_stays_until"] == "2031-11-20"  # 5 years from the end of the default
    assert list(back[0]) == list(COLUMNS)


def test_a_uk_file_carries_the_default_dates_retention() -> None:
    assert UK is not None
    back = read_csv(write_csv([item("Jane Doe", account_id="UK-1", currency="GBP")], UK))
    assert (
        back[0]["currency"] == "GBP" and back[0]["record_stays_until"] == "2032-10-29"
    )  # notice + 28 d + 6 y


def test_a_file_with_other_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="header must be"):
        read_csv("account_id,name\nX,Y\n")
