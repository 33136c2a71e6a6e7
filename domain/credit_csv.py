"""The furnishing file for bureaus that do not take Metro 2 (the CN and UK profiles): a documented CSV.

Neither the PBOC Credit Reference Center's interface (个人征信数据采集接口规范) nor the UK credit
reference agencies' SHARE/Insight formats are public enough to implement faithfully; this CSV holds
the same facts in the open, for the lender's own loader (or a person) to map. UTF-8 without BOM,
comma separated, one header row, ISO 8601 dates (empty: none), amounts as integer minor units with
the currency beside them. No personal identifier is in the file but the name; the bureau matches on
the lender's account number and its own records.

============================  ==============================================================
column                        meaning
============================  ==============================================================
account_id                    the lender's account number
name                          the debtor's name as the lender gave it (personal data)
product                       credit_line or closed_end
currency                      ISO 4217 code of every amount in the row
original_minor                what was owed when the account was taken in
balance_minor                 what is owed at the cycle date
past_due_minor                the part of it that is past due
charged_off_minor             the balance when it was charged off (0: not charged off)
paid_in_cycle_minor           paid in the cycle's month up to the cycle date
cycle_date                    the date the row describes
date_opened                   when the account was taken in
due_date                      the missed payment's due date
first_delinquency             the day the account became 30 days past due
days_past_due                 at the cycle date (open) or when it closed
status                        open, paid, settled, charged_off, placed, written_off
settled_for_less              true when it closed paid for less than the full balance
closed_on                     when it closed
last_payment_on               the last payment's date
dispute                       none, open (disputed, under investigation) or resolved
notice_delivered_on           when the notice before reporting went out
record_stays_until            the last day the record may stay (empty: not known yet)
============================  ==============================================================
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date

from domain.credit_reporting import Furnished, ReportingRules, record_stays_until

COLUMNS = (
    "account_id", "name", "product", "currency", "original_minor", "balance_minor", "past_due_minor",
    "charged_off_minor", "paid_in_cycle_minor", "cycle_date", "date_opened", "due_date", "first_delinquency",
    "days_past_due", "status", "settled_for_less", "closed_on", "last_payment_on", "dispute",
    "notice_delivered_on", "record_stays_until",
)  # fmt: skip


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def write_csv(items: Sequence[Furnished], rules: ReportingRules) -> str:
    """The rows of :data:`COLUMNS`, one per account, in the order given."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        f = item.facts
        writer.writerow(
            [
                f.account_id, item.name, f.product.value, f.currency, f.original_minor, f.balance_minor,
                f.past_due_minor, f.charged_off_minor, f.paid_in_cycle_minor, _day(f.cycle_date),
                _day(f.date_opened), _day(f.due_date), _day(f.first_delinquency), f.days_past_due, f.state.value,
                "true" if f.settled_for_less else "false", _day(f.closed_on), _day(f.last_payment_on),
                f.dispute.value, _day(f.notice_delivered_at.date() if f.notice_delivered_at else None),
                _day(record_stays_until(f, rules)),
            ]
        )  # fmt: skip
    return out.getvalue()


def read_csv(text: str) -> list[dict[str, str]]:
    """The rows back, by column name; refuses a file whose header is not :data:`COLUMNS`."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"the header must be: {','.join(COLUMNS)}")
    return [dict(zip(COLUMNS, row, strict=True)) for row in reader]
