"""What being late means for the debtor's credit, said plainly (issue 15, item 5).

Seed 002 is a debtor who did not know a grace period existed, found the credit line frozen without a
word, watched charges grow and feared a credit record nobody explained. One pure function answers
all of it from facts the system already holds: the account's pinned rules, its charges (the status
query's summary), the line events the lender was sent, the notice delivered before the first report,
and the reporting facts the monthly file itself would use, so the page cannot promise what the file
does not do. Each line is a string key and its values; the page says it in the debtor's language.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.accounts import Product
from domain.charge_view import ChargesSummary
from domain.credit_reporting import (
    AccountFacts,
    RetentionStart,
    earliest_report_date,
    record_stays_until,
    reportable,
)
from domain.money import format_minor
from domain.policy import Policy
from domain.profiles import Profile


class Line(BaseModel):
    """One sentence of the answer: a string key (service/templates/selfservice/strings.toml) and its values."""

    model_config = ConfigDict(frozen=True)

    key: str
    values: dict[str, str] = Field(default_factory=dict)


class LineEvent(BaseModel):
    """The last line freeze or restore the lender was sent (store/outbox.py)."""

    model_config = ConfigDict(frozen=True)

    kind: str  # line_frozen / line_restored
    on: date


def consequences(
    *,
    policy: Policy,
    profile: Profile,
    product: Product,
    due_date: date,
    today: date,
    language: str,
    charges: ChargesSummary | None,
    line: LineEvent | None,
    facts: AccountFacts | None,
    open_account: bool = True,
) -> list[Line]:
    """The lines the debtor's page shows under "What this means for your credit", in order:
    grace, the credit line, charges, credit reporting, how long a record stays."""
    out: list[Line] = []
    grace = policy.grace_for(product)
    if grace and open_account:
        last = due_date + timedelta(days=grace)
        out.append(
            Line(
                key="cq_grace_until" if today <= last else "cq_grace_over", values={"date": last.isoformat()}
            )
        )
    freeze_on = due_date + timedelta(days=policy.early_start(product))
    if line is not None and line.kind == "line_frozen":
        out.append(Line(key="cq_line_frozen", values={"date": line.on.isoformat()}))
    elif line is not None and line.kind == "line_restored":
        out.append(Line(key="cq_line_restored", values={"date": line.on.isoformat()}))
    elif open_account and today < freeze_on:
        out.append(Line(key="cq_line_will_freeze", values={"date": freeze_on.isoformat()}))
    if charges is not None:
        out.extend(_charges(charges, language))
    elif open_account:
        out.append(Line(key="cq_no_charges"))
    out.extend(_reporting(policy, profile, due_date, today, language, facts))
    return out


def _charges(charges: ChargesSummary, language: str) -> list[Line]:
    money = lambda minor: format_minor(minor, charges.currency)  # noqa: E731
    lines = []
    if charges.through is None:
        lines.append(Line(key="cq_charges_from", values={"date": charges.starts.isoformat()}))
    else:
        lines.append(
            Line(
                key="cq_charges_added",
                values={
                    "interest": money(charges.interest_added),
                    "fees": money(charges.fees_added),
                    "since": charges.starts.isoformat(),
                    "through": charges.through.isoformat(),
                },
            )
        )
    lines.append(
        Line(
            key="cq_charges_formula",
            values={"formula": charges.formula.get(language) or charges.formula["en"]},
        )
    )
    if charges.frozen:
        lines.append(Line(key="cq_charges_frozen"))
    if charges.capped:
        lines.append(Line(key="cq_charges_capped", values={"source": charges.cap_source or ""}))
    return lines


def _reporting(
    policy: Policy,
    profile: Profile,
    due_date: date,
    today: date,
    language: str,
    facts: AccountFacts | None,
) -> list[Line]:
    law = profile.credit_reporting
    if policy.credit_reporting is None or law is None:
        return [Line(key="cq_not_reported")]
    bureau = law.bureau_in(language)
    sent = facts.notice_delivered_at.date() if facts is not None and facts.notice_delivered_at else None
    lines: list[Line] = []
    if sent is None:
        if facts is not None and facts.balance_minor <= 0:
            return [Line(key="cq_not_reported_paid", values={"bureau": bureau})]
        notice_on = due_date + timedelta(days=policy.credit_reporting.notice_dpd)
        planned = earliest_report_date(max(notice_on, today), law, due_date)
        lines.append(
            Line(
                key="cq_report_will_notice",
                values={
                    "bureau": bureau,
                    "notice": max(notice_on, today).isoformat(),
                    "date": planned.isoformat(),
                    "days": str(law.waiting_days),
                },
            )
        )
    else:
        first = earliest_report_date(sent, law, due_date)
        ok, _ = reportable(facts, law, today) if facts is not None else (False, "")
        key = (
            "cq_report_active"
            if ok or (today >= first and facts is not None and facts.balance_minor > 0)
            else "cq_report_noticed"
        )
        if facts is not None and facts.balance_minor <= 0:
            key = "cq_report_paid" if today >= first else "cq_not_reported_paid"
        lines.append(
            Line(key=key, values={"bureau": bureau, "notice": sent.isoformat(), "date": first.isoformat()})
        )
    until = record_stays_until(facts, law) if facts is not None and sent is not None else None
    if until is not None:
        lines.append(
            Line(key="cq_record_until", values={"date": until.isoformat(), "source": law.retention_source})
        )
    else:
        lines.append(
            Line(
                key=f"cq_record_rule_{RetentionStart(law.retention_from).value}",
                values={"years": str(law.retention_years), "source": law.retention_source},
            )
        )
    return lines
