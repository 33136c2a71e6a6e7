"""The Metro 2 file, read back field by field from the CDIA layout against a golden file written once
from fixed facts; the writer must reproduce that file byte for byte.

Regenerate the golden file (only after checking every expected value below by hand):
``PYTHONPATH=. .venv/bin/python -m tests.reporting.test_metro2``
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.accounts import Product
from domain.credit_reporting import AccountFacts, AccountState, DisputeState, Furnished
from domain.metro2 import BASE, HEADER, RECORD_LENGTH, TRAILER, Reporter, read_file, write_file

GOLDEN = Path(__file__).parent / "golden" / "metro2_us.txt"
CYCLE = date(2026, 11, 30)
CREATED = date(2026, 12, 1)
REPORTER = Reporter(
    name="Acme Finance",
    address="1 Main Street, Springfield IL 62701",
    telephone="+1 (800) 555-0199",
    identification_number="ACME0001",
    equifax_id="EFX123",
    experian_id="EXP12",
    transunion_id="TU12345",
)


def _facts(**changes: object) -> AccountFacts:
    base: dict[str, object] = {
        "product": Product.CREDIT_LINE,
        "currency": "USD",
        "cycle_date": CYCLE,
        "notice_delivered_at": datetime(2026, 10, 20, 15, 0, tzinfo=UTC),
    }
    return AccountFacts.model_validate({**base, **changes})


ITEMS = [
    # open, 76 days past due: 78; two months of history since it was taken in
    Furnished(
        name="Jane Q Public",
        facts=_facts(account_id="ACC-1", date_opened=date(2026, 9, 20), due_date=date(2026, 9, 15),
                     original_minor=125_050, balance_minor=125_050, past_due_minor=125_050, days_past_due=76,
                     state=AccountState.OPEN),
    ),
    # charged off (closed-end, 120 days), unpaid, disputed now: 97 and XB
    Furnished(
        name="John Roe",
        facts=_facts(account_id="ACC-2", product=Product.CLOSED_END, date_opened=date(2026, 4, 5),
                     due_date=date(2026, 4, 1), original_minor=80_000, balance_minor=80_000,
                     past_due_minor=80_000, charged_off_minor=80_000, days_past_due=243,
                     state=AccountState.CHARGED_OFF, closed_on=date(2026, 7, 30),
                     charged_off_on=date(2026, 7, 30), dispute=DisputeState.OPEN),
    ),
    # settled for less at 162 days past due, a dispute resolved earlier: 13, rating 5, AU, XH
    Furnished(
        name="Zoë Ann Smith-Jones",
        facts=_facts(account_id="ACC-3", date_opened=date(2026, 6, 3), due_date=date(2026, 6, 1),
                     original_minor=99_999, balance_minor=0, past_due_minor=0, days_past_due=162,
                     state=AccountState.SETTLED, closed_on=date(2026, 11, 10), settled_for_less=True,
                     last_payment_on=date(2026, 11, 10), paid_in_cycle_minor=40_075,
                     dispute=DisputeState.RESOLVED),
    ),
    # charged off, placed, then paid in full: 64, rating L
    Furnished(
        name="Li",
        facts=_facts(account_id="ACC-4", date_opened=date(2026, 3, 2), due_date=date(2026, 3, 1),
                     original_minor=60_099, balance_minor=0, past_due_minor=0, charged_off_minor=60_099,
                     days_past_due=274, state=AccountState.PLACED, closed_on=date(2026, 8, 28),
                     charged_off_on=date(2026, 8, 28), last_payment_on=date(2026, 11, 2),
                     paid_in_cycle_minor=60_099),
    ),
]  # fmt: skip


def golden_text() -> str:
    return write_file(ITEMS, REPORTER, cycle_date=CYCLE, created=CREATED)


# What each account's base segment must say, written out by hand from the CRRG (not from the writer).
COMMON = {
    "record_descriptor_word": 426, "processing_indicator": 1, "time_stamp": 11302026000000,
    "correction_indicator": 0, "identification_number": "ACME0001", "cycle_identifier": "",
    "credit_limit": 0, "scheduled_monthly_payment": 0, "date_of_account_information": CYCLE,
    "interest_type_indicator": "", "reserved": "", "generation_code": "",
    # what we do not hold: no SSN, date of birth, telephone or address
    "social_security_number": 0, "date_of_birth": None, "telephone_number": 0, "ecoa_code": "1",
    "consumer_information_indicator": "", "country_code": "", "first_line_of_address": "",
    "second_line_of_address": "", "city": "", "state": "", "postal_code": "", "address_indicator": "",
    "residence_code": "",
}  # fmt: skip
EXPECTED = [
    {
        "consumer_account_number": "ACC-1", "portfolio_type": "R", "account_type": "15",
        "date_opened": date(2026, 9, 20), "highest_credit": 1250, "terms_duration": "REV", "terms_frequency": "M",
        "actual_payment_amount": 0, "account_status": "78", "payment_rating": "",
        "payment_history_profile": "10" + "B" * 22, "special_comment": "", "compliance_condition_code": "",
        "current_balance": 1250, "amount_past_due": 1250, "original_charge_off_amount": 0,
        "date_of_first_delinquency": date(2026, 10, 15), "date_closed": None, "date_of_last_payment": None,
        "surname": "PUBLIC", "first_name": "JANE", "middle_name": "Q",
    },
    {
        "consumer_account_number": "ACC-2", "portfolio_type": "I", "account_type": "01",
        "date_opened": date(2026, 4, 5), "highest_credit": 800, "terms_duration": "001", "terms_frequency": "P",
        "actual_payment_amount": 0, "account_status": "97", "payment_rating": "",
        "payment_history_profile": "LLLL320" + "B" * 17, "special_comment": "", "compliance_condition_code": "XB",
        "current_balance": 800, "amount_past_due": 800, "original_charge_off_amount": 800,
        "date_of_first_delinquency": date(2026, 5, 1), "date_closed": date(2026, 7, 30),
        "date_of_last_payment": None, "surname": "ROE", "first_name": "JOHN", "middle_name": "",
    },
    {
        "consumer_account_number": "ACC-3", "portfolio_type": "R", "account_type": "15",
        "date_opened": date(2026, 6, 3), "highest_credit": 999, "terms_duration": "REV", "terms_frequency": "M",
        "actual_payment_amount": 400, "account_status": "13", "payment_rating": "5",
        # month ends Oct..Jun: 152, 121, 91, 60, 29 days past the 1 June due date; before 3 June: B
        "payment_history_profile": "54320" + "B" * 19, "special_comment": "AU", "compliance_condition_code": "XH",
        "current_balance": 0, "amount_past_due": 0, "original_charge_off_amount": 0,
        "date_of_first_delinquency": date(2026, 7, 1), "date_closed": date(2026, 11, 10),
        "date_of_last_payment": date(2026, 11, 10), "surname": "SMITH-JONES", "first_name": "ZOE",
        "middle_name": "ANN",
    },
    {
        "consumer_account_number": "ACC-4", "portfolio_type": "R", "account_type": "15",
        "date_opened": date(2026, 3, 2), "highest_credit": 600, "terms_duration": "REV", "terms_frequency": "M",
        "actual_payment_amount": 600, "account_status": "64", "payment_rating": "L",
        # charged off 28 Aug (L from the August month end on); Jul..Mar: 152, 121, 91, 60, 30 days
        "payment_history_profile": "LLL54321" + "B" * 16, "special_comment": "", "compliance_condition_code": "",
        "current_balance": 0, "amount_past_due": 0, "original_charge_off_amount": 600,
        "date_of_first_delinquency": date(2026, 3, 31), "date_closed": date(2026, 8, 28),
        "date_of_last_payment": date(2026, 11, 2), "surname": "LI", "first_name": "", "middle_name": "",
    },
]  # fmt: skip


def test_the_writer_reproduces_the_golden_file_byte_for_byte() -> None:
    assert golden_text().encode("ascii") == GOLDEN.read_bytes()


def test_every_record_is_426_characters_behind_its_record_descriptor_word() -> None:
    lines = GOLDEN.read_text(encoding="ascii").split("\n")
    assert lines[-1] == "" and len(lines) == 1 + len(ITEMS) + 1 + 1
    for line in lines[:-1]:
        assert len(line) == RECORD_LENGTH and line[:4] == "0426"
    assert lines[0][4:10] == "HEADER" and lines[-2][4:11] == "TRAILER"


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_each_base_segment_reads_back_field_by_field_as_the_layout_says(index: int) -> None:
    base = read_file(GOLDEN.read_text(encoding="ascii")).bases[index]
    expected = {**COMMON, **EXPECTED[index]}
    assert set(expected) == {f.name for f in BASE}  # every field of the layout is checked
    for name, value in expected.items():
        assert base[name] == value, name


def test_the_fields_sit_where_the_crrg_puts_them() -> None:
    """A few positions straight from the guide, read from the raw text (not through the layout)."""
    record = GOLDEN.read_text(encoding="ascii").split("\n")[2]  # ACC-2
    assert record[123:125] == "97"  # account status, 124-125
    assert record[152:154] == "XB"  # compliance condition code, 153-154
    assert record[154:163] == "000000800"  # current balance, 155-163, zero-filled
    assert record[189:197] == "05012026"  # date of first delinquency, 190-197, MMDDYYYY
    assert record[231:256] == "ROE".ljust(25)  # surname, 232-256, space-filled
    assert record[297:306] == "000000000"  # SSN, 298-306: not held


def test_header_and_trailer_read_back() -> None:
    f = read_file(GOLDEN.read_text(encoding="ascii"))
    assert {k: f.header[k] for k in ("record_identifier", "activity_date", "date_created", "reporter_name")} == {
        "record_identifier": "HEADER", "activity_date": CYCLE, "date_created": CREATED, "reporter_name": "ACME FINANCE",
    }  # fmt: skip
    assert (
        f.header["equifax_program_identifier"] == "EFX123"
        and f.header["reporter_telephone_number"] == 8005550199
    )
    assert {f.name for f in HEADER} == set(f.header)
    totals = {k: v for k, v in f.trailer.items() if k.startswith("total_status_code_") and v}
    assert totals == {"total_status_code_78": 1, "total_status_code_97": 1, "total_status_code_13": 1,
                      "total_status_code_64": 1}  # fmt: skip
    assert f.trailer["total_base_records"] == 4 and f.trailer["record_identifier"] == "TRAILER"
    assert {f.name for f in TRAILER} == set(f.trailer)


def test_a_name_is_never_in_the_repr_that_logs_would_show() -> None:
    assert "Public" not in repr(ITEMS[0]) and "Public" not in str(ITEMS[0])


def test_a_non_dollar_account_or_a_negative_number_is_refused_naming_the_field() -> None:
    euro = Furnished(name="A B", facts=ITEMS[0].facts.model_copy(update={"currency": "EUR"}))
    with pytest.raises(ValueError, match="Metro 2 reports US dollars"):
        write_file([euro], REPORTER, cycle_date=CYCLE, created=CREATED)


def test_a_damaged_file_is_refused_with_the_position() -> None:
    lines = GOLDEN.read_text(encoding="ascii").split("\n")
    bad = lines[1][:154] + "00000X800" + lines[1][163:]
    with pytest.raises(ValueError, match=r"current_balance \(position 155\)"):
        read_file("\n".join([lines[0], bad, *lines[2:]]))
    with pytest.raises(ValueError, match="426 characters"):
        read_file("\n".join([lines[0], lines[1][:-1], *lines[2:]]))


if __name__ == "__main__":
    GOLDEN.write_bytes(golden_text().encode("ascii"))
    print(f"wrote {GOLDEN}")
