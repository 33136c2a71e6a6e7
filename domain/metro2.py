"""Metro 2 furnishing file, character format: header, one base segment per account, trailer.

Every record is 426 characters, starting with its 4-character Record Descriptor Word ``0426``; records
are written one per line (LF). Field positions are the CDIA Credit Reporting Resource Guide's (Metro 2
Format, character/unpacked layout); one table per record (:data:`HEADER`, :data:`BASE`,
:data:`TRAILER`) drives both the writer and the reader, so what is written is read back field by field
from the same positions. Numeric fields are zero-filled and right-justified, alphanumeric fields
space-filled, left-justified and upper case (but the account number and the furnisher's id,
which are written as they are), dates ``MMDDYYYY`` (all zeros: none), money whole dollars
with the cents dropped (CRRG: "whole dollars only").

What we do not hold stays empty, on purpose: Social Security number, date of birth, telephone and
address are blank or zero (we keep no SSN or postal address; the lender's own file must add them or
the bureau will not match the consumer). ECOA code is ``1`` (individual), the only kind of account
we take in. The name is personal data: it comes from the account's row, is written only into the file
and never into a log or an error message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import Product
from domain.credit_reporting import Furnished, metro2_status, payment_history
from domain.money import exponent

RECORD_LENGTH = 426
RDW = f"{RECORD_LENGTH:04d}"

Kind = Literal["N", "A", "D"]  # numeric, alphanumeric, date MMDDYYYY


class Field_(NamedTuple):
    name: str
    start: int  # 1-based, as the CRRG numbers positions
    length: int
    kind: Kind


def _layout(*fields: tuple[str, int, int, Kind]) -> tuple[Field_, ...]:
    """The fields in order; refuses a gap or an overlap, so a typo in a position cannot ship."""
    out = tuple(Field_(*f) for f in fields)
    at = 1
    for f in out:
        if f.start != at:
            raise ValueError(f"{f.name} starts at {f.start}, expected {at}")
        at += f.length
    if at != RECORD_LENGTH + 1:
        raise ValueError(f"layout is {at - 1} characters, not {RECORD_LENGTH}")
    return out


HEADER = _layout(
    ("record_descriptor_word", 1, 4, "N"),
    ("record_identifier", 5, 6, "A"),
    ("cycle_identifier", 11, 2, "A"),
    ("innovis_program_identifier", 13, 10, "A"),
    ("equifax_program_identifier", 23, 10, "A"),
    ("experian_program_identifier", 33, 5, "A"),
    ("transunion_program_identifier", 38, 10, "A"),
    ("activity_date", 48, 8, "D"),
    ("date_created", 56, 8, "D"),
    ("program_date", 64, 8, "D"),
    ("program_revision_date", 72, 8, "D"),
    ("reporter_name", 80, 40, "A"),
    ("reporter_address", 120, 96, "A"),
    ("reporter_telephone_number", 216, 10, "N"),
    ("software_vendor_name", 226, 40, "A"),
    ("software_version_number", 266, 5, "A"),
    ("prbc_program_identifier", 271, 10, "A"),
    ("reserved", 281, 146, "A"),
)

BASE = _layout(
    ("record_descriptor_word", 1, 4, "N"),
    ("processing_indicator", 5, 1, "N"),
    ("time_stamp", 6, 14, "N"),  # MMDDYYYYHHMMSS
    ("correction_indicator", 20, 1, "N"),
    ("identification_number", 21, 20, "A"),
    ("cycle_identifier", 41, 2, "A"),
    ("consumer_account_number", 43, 30, "A"),
    ("portfolio_type", 73, 1, "A"),
    ("account_type", 74, 2, "A"),
    ("date_opened", 76, 8, "D"),
    ("credit_limit", 84, 9, "N"),
    ("highest_credit", 93, 9, "N"),
    ("terms_duration", 102, 3, "A"),
    ("terms_frequency", 105, 1, "A"),
    ("scheduled_monthly_payment", 106, 9, "N"),
    ("actual_payment_amount", 115, 9, "N"),
    ("account_status", 124, 2, "A"),
    ("payment_rating", 126, 1, "A"),
    ("payment_history_profile", 127, 24, "A"),
    ("special_comment", 151, 2, "A"),
    ("compliance_condition_code", 153, 2, "A"),
    ("current_balance", 155, 9, "N"),
    ("amount_past_due", 164, 9, "N"),
    ("original_charge_off_amount", 173, 9, "N"),
    ("date_of_account_information", 182, 8, "D"),
    ("date_of_first_delinquency", 190, 8, "D"),
    ("date_closed", 198, 8, "D"),
    ("date_of_last_payment", 206, 8, "D"),
    ("interest_type_indicator", 214, 1, "A"),
    ("reserved", 215, 17, "A"),
    ("surname", 232, 25, "A"),
    ("first_name", 257, 20, "A"),
    ("middle_name", 277, 20, "A"),
    ("generation_code", 297, 1, "A"),
    ("social_security_number", 298, 9, "N"),
    ("date_of_birth", 307, 8, "D"),
    ("telephone_number", 315, 10, "N"),
    ("ecoa_code", 325, 1, "A"),
    ("consumer_information_indicator", 326, 2, "A"),
    ("country_code", 328, 2, "A"),
    ("first_line_of_address", 330, 32, "A"),
    ("second_line_of_address", 362, 32, "A"),
    ("city", 394, 20, "A"),
    ("state", 414, 2, "A"),
    ("postal_code", 416, 9, "A"),
    ("address_indicator", 425, 1, "A"),
    ("residence_code", 426, 1, "A"),
)

#: The account statuses the trailer counts, each in its own field (``total_status_code_XX``).
TRAILER_STATUSES = (
    "DA", "05", "11", "13", "61", "62", "63", "64", "65", "71", "78", "80", "82", "83", "84", "88", "89",
    "93", "94", "95", "96", "97",
)  # fmt: skip

TRAILER = _layout(
    ("record_descriptor_word", 1, 4, "N"),
    ("record_identifier", 5, 7, "A"),
    ("total_base_records", 12, 9, "N"),
    ("reserved_1", 21, 9, "A"),
    ("total_status_code_DF", 30, 9, "N"),
    ("total_j1_segments", 39, 9, "N"),
    ("total_j2_segments", 48, 9, "N"),
    ("block_count", 57, 9, "N"),
    *((f"total_status_code_{code}", 66 + 9 * i, 9, "N") for i, code in enumerate(TRAILER_STATUSES)),
    ("total_ecoa_code_z", 264, 9, "N"),
    ("total_employment_segments", 273, 9, "N"),
    ("total_original_creditor_segments", 282, 9, "N"),
    ("total_purchased_from_sold_to_segments", 291, 9, "N"),
    ("total_mortgage_information_segments", 300, 9, "N"),
    ("total_specialized_payment_segments", 309, 9, "N"),
    ("total_change_segments", 318, 9, "N"),
    ("total_ssn_all_segments", 327, 9, "N"),
    ("total_ssn_base_segments", 336, 9, "N"),
    ("total_ssn_j1_segments", 345, 9, "N"),
    ("total_ssn_j2_segments", 354, 9, "N"),
    ("total_dob_all_segments", 363, 9, "N"),
    ("total_dob_base_segments", 372, 9, "N"),
    ("total_dob_j1_segments", 381, 9, "N"),
    ("total_dob_j2_segments", 390, 9, "N"),
    ("total_telephone_all_segments", 399, 9, "N"),
    ("reserved_2", 408, 19, "A"),
)

Value = int | str | date | None


class Reporter(BaseModel):
    """Who furnishes the file: the header's fields and the base segment's Identification Number."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=40)
    address: str = Field(default="", max_length=96)
    telephone: str = Field(default="", description="Digits only are kept (10 at most)")
    identification_number: str = Field(
        min_length=1, max_length=20, description="The furnisher's id assigned by the bureaus"
    )
    equifax_id: str = Field(default="", max_length=10)
    experian_id: str = Field(default="", max_length=5)
    transunion_id: str = Field(default="", max_length=10)
    innovis_id: str = Field(default="", max_length=10)
    cycle_identifier: str = Field(default="", max_length=2)
    software_vendor: str = Field(default="COLLECT", max_length=40)
    software_version: str = Field(default="1", max_length=5)


def _ascii(text: str) -> str:
    """Printable ASCII: accents dropped (Zoë: Zoe), other characters a space; Metro 2 takes no more."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c if 32 <= ord(c) < 127 else " " for c in plain)


#: Identifiers written as they are: upper-casing ``acc-1`` could make it another account's ``ACC-1``.
#: Every other alphanumeric field is upper case, as the CRRG asks.
KEEP_CASE = frozenset({"consumer_account_number", "identification_number"})


def _render(f: Field_, value: Value) -> str:
    if f.kind == "D":
        text = "0" * 8 if value is None else value.strftime("%m%d%Y")  # type: ignore[union-attr]
    elif f.kind == "N":
        number = 0 if value is None or value == "" else int(value)  # type: ignore[arg-type]
        if number < 0:
            raise ValueError(f"{f.name}: a Metro 2 number cannot be negative ({number})")
        text = str(number).rjust(f.length, "0")
    elif f.name in KEEP_CASE:
        text = _ascii("" if value is None else str(value)).ljust(f.length)
    else:
        text = _ascii("" if value is None else str(value)).upper().ljust(f.length)
    if len(text) != f.length:
        raise ValueError(f"{f.name}: {len(text)} characters do not fit in {f.length}")
    return text


def write_record(layout: Sequence[Field_], values: Mapping[str, Value]) -> str:
    """One fixed-width record; a field not given is blank or zero. Unknown names are refused."""
    unknown = set(values) - {f.name for f in layout}
    if unknown:
        raise ValueError(f"unknown Metro 2 field(s): {', '.join(sorted(unknown))}")
    return "".join(_render(f, values.get(f.name)) for f in layout)


def _parse(f: Field_, text: str) -> Value:
    if f.kind == "D":
        if text == "0" * 8 or not text.strip():
            return None
        return date(int(text[4:8]), int(text[0:2]), int(text[2:4]))
    if f.kind == "N":
        if not text.isdigit():
            raise ValueError(f"{f.name} (position {f.start}): {text!r} is not a zero-filled number")
        return int(text)
    return text.rstrip()


def read_record(layout: Sequence[Field_], record: str) -> dict[str, Value]:
    """Each field of ``record`` from its position in ``layout``: numbers as int, dates as date, text stripped."""
    if len(record) != RECORD_LENGTH:
        raise ValueError(f"a record is {RECORD_LENGTH} characters, this one {len(record)}")
    return {f.name: _parse(f, record[f.start - 1 : f.start - 1 + f.length]) for f in layout}


class Metro2File(NamedTuple):
    header: dict[str, Value]
    bases: list[dict[str, Value]]
    trailer: dict[str, Value]


def read_file(text: str) -> Metro2File:
    """A whole file back into fields; refuses a file without its header first and trailer last."""
    lines = [line for line in text.split("\n") if line]
    if len(lines) < 2 or lines[0][4:10] != "HEADER" or lines[-1][4:11] != "TRAILER":
        raise ValueError("a Metro 2 file starts with a HEADER record and ends with a TRAILER record")
    return Metro2File(
        header=read_record(HEADER, lines[0]),
        bases=[read_record(BASE, line) for line in lines[1:-1]],
        trailer=read_record(TRAILER, lines[-1]),
    )


def whole_dollars(minor: int, currency: str) -> int:
    """Minor units to whole units, the cents dropped (Metro 2 reports whole dollars only)."""
    if currency != "USD":
        raise ValueError(f"Metro 2 reports US dollars; this account is in {currency}")
    return minor // 10 ** exponent(currency)


def _name_parts(name: str) -> tuple[str, str, str]:
    """Surname, first and middle name from the one name we hold: first word, last word, the rest."""
    words = _ascii(name).upper().split()
    if not words:
        raise ValueError("the debtor's name has no letters Metro 2 can carry")
    if len(words) == 1:
        return words[0], "", ""
    return words[-1], words[0], " ".join(words[1:-1])


#: Portfolio type and account type per product (CRRG): a credit line is revolving "R" with account type
#: 15 (line of credit); a closed-end loan installment "I" with account type 01 (unsecured).
PORTFOLIO: dict[Product, tuple[str, str]] = {
    Product.CREDIT_LINE: ("R", "15"),
    Product.CLOSED_END: ("I", "01"),
}


DELINQUENT_STATUSES = frozenset(
    {"61", "62", "63", "64", "65", "71", "78", "80", "82", "83", "84", "93", "97"}
)


DELINQUENT_RATINGS = frozenset("123456GL")


def base_values(item: Furnished, reporter: Reporter) -> dict[str, Value]:
    """The base segment of one account; the codes are :func:`domain.credit_reporting.metro2_status`'s."""
    f = item.facts
    status = metro2_status(f)
    surname, first, middle = _name_parts(item.name)
    portfolio, account_type = PORTFOLIO[f.product]
    # CRRG: the Date of First Delinquency goes with a delinquent status, or a paid one rated delinquent.
    negative = status.account_status in DELINQUENT_STATUSES or status.payment_rating in DELINQUENT_RATINGS
    return {
        "record_descriptor_word": RECORD_LENGTH,
        "processing_indicator": 1,
        "time_stamp": int(f.cycle_date.strftime("%m%d%Y") + "000000"),
        "correction_indicator": 0,
        "identification_number": reporter.identification_number,
        "cycle_identifier": reporter.cycle_identifier,
        "consumer_account_number": f.account_id,
        "portfolio_type": portfolio,
        "account_type": account_type,
        "date_opened": f.date_opened,
        "credit_limit": 0,
        "highest_credit": whole_dollars(f.original_minor, f.currency),
        "terms_duration": "REV" if portfolio == "R" else "001",
        "terms_frequency": "M" if portfolio == "R" else "P",  # P: deferred/single payment
        "scheduled_monthly_payment": 0,
        "actual_payment_amount": whole_dollars(f.paid_in_cycle_minor, f.currency),
        "account_status": status.account_status,
        "payment_rating": status.payment_rating,
        "payment_history_profile": payment_history(f),
        "special_comment": status.special_comment,
        "compliance_condition_code": status.compliance_condition,
        "current_balance": whole_dollars(f.balance_minor, f.currency),
        "amount_past_due": whole_dollars(f.past_due_minor, f.currency),
        "original_charge_off_amount": whole_dollars(f.charged_off_minor, f.currency),
        "date_of_account_information": f.cycle_date,
        "date_of_first_delinquency": f.first_delinquency if negative else None,
        "date_closed": f.closed_on,
        "date_of_last_payment": f.last_payment_on,
        "surname": surname,
        "first_name": first,
        "middle_name": middle,
        "ecoa_code": "1",
    }


def write_file(items: Sequence[Furnished], reporter: Reporter, *, cycle_date: date, created: date) -> str:
    """The whole file: header, a base segment per account in the order given, trailer with the counts."""
    header = write_record(
        HEADER,
        {
            "record_descriptor_word": RECORD_LENGTH,
            "record_identifier": "HEADER",
            "cycle_identifier": reporter.cycle_identifier,
            "innovis_program_identifier": reporter.innovis_id,
            "equifax_program_identifier": reporter.equifax_id,
            "experian_program_identifier": reporter.experian_id,
            "transunion_program_identifier": reporter.transunion_id,
            "activity_date": cycle_date,
            "date_created": created,
            "reporter_name": reporter.name,
            "reporter_address": reporter.address,
            "reporter_telephone_number": int(
                "".join(c for c in reporter.telephone if c.isdigit())[-10:] or 0
            ),
            "software_vendor_name": reporter.software_vendor,
            "software_version_number": reporter.software_version,
        },
    )
    bases = [base_values(item, reporter) for item in items]
    counts: dict[str, Value] = {f"total_status_code_{code}": 0 for code in TRAILER_STATUSES}
    for values in bases:
        key = f"total_status_code_{values['account_status']}"
        counts[key] = int(counts[key] or 0) + 1
    trailer = write_record(
        TRAILER,
        {
            "record_descriptor_word": RECORD_LENGTH,
            "record_identifier": "TRAILER",
            "total_base_records": len(bases),
            "block_count": 0,  # fixed-length records are not blocked
            **counts,
        },
    )
    return "\n".join([header, *(write_record(BASE, v) for v in bases), trailer]) + "\n"
