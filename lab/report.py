"""What a simulated portfolio did, per policy: counts a collection leader compares strategies by.

One :class:`Summary` per policy run over the same accounts: contacts by channel, by stage and by
template, gate refusals by rule, outcomes, channels lost, how accounts ended, the cost of the
messages and calls (prices per message and per call are inputs), and the same per segment (the
jurisdiction profile). :func:`write_html` draws them side by side in one self-contained file.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from domain.accounts import Channel
from lab.engine import Portfolio


class Prices(BaseModel):
    """What one text and one call attempt cost, in the currency the report is read in."""

    sms: float = Field(default=0.0079, ge=0, description="Per text sent (Twilio US list price, 2026)")
    call: float = Field(default=0.014, ge=0, description="Per call attempt (one billed minute)")


class Totals(BaseModel):
    accounts: int = 0
    contacts: int = 0
    by_channel: dict[str, int] = Field(default_factory=dict)
    by_stage: dict[str, int] = Field(default_factory=dict)
    by_template: dict[str, int] = Field(default_factory=dict)
    outcomes: dict[str, int] = Field(default_factory=dict)
    refusals: dict[str, int] = Field(default_factory=dict, description="Gate and governor refusals by rule")
    ended: dict[str, int] = Field(default_factory=dict, description="charged_off, placed, or open")
    opted_out: int = 0
    contact_lost: int = 0
    visits: int = 0
    cost: float = 0.0
    contacts_per_account: float = 0.0
    recovered: dict[str, int] = Field(default_factory=dict, description="Minor units collected, per currency")
    opening: dict[str, int] = Field(default_factory=dict, description="Opening balances, per currency")
    recovered_share: float = Field(
        default=0.0, description="Share of the opening balances collected (mean of the currencies' shares)"
    )
    paid: int = Field(default=0, description="Accounts that made a payment")
    reactions: dict[str, int] = Field(default_factory=dict, description="What debtors did, by reaction")
    plans: int = 0
    kept_plans: int = 0
    broken_plans: int = 0
    complaints: int = 0


class Summary(BaseModel):
    policy: str
    days: int
    accounts: int
    totals: Totals
    segments: dict[str, Totals] = Field(description="Per jurisdiction profile")
    contacts_by_day: list[int] = Field(description="Contacts sent on each simulated day")
    recovery_by_day: list[float] = Field(
        default_factory=list, description="Share of the opening balances collected by the end of each day"
    )


def summarise(policy: str, lab: Portfolio, start: datetime, days: int, prices: Prices) -> Summary:
    totals = Totals()
    segments: dict[str, Totals] = {}
    per_day = [0] * (days + 1)
    paid_by_day: dict[str, list[int]] = {}
    for a in lab.accounts.values():
        for t in (totals, segments.setdefault(a.terms.profile, Totals())):
            _add(t, a, prices)
        for s in a.sent:
            day = (s.at - start).days
            if 0 <= day <= days:
                per_day[day] += 1
        for at, amount in a.money.payments:
            day = min(max((at - start).days, 0), days)
            paid_by_day.setdefault(a.terms.currency, [0] * (days + 1))[day] += amount
    for t in (totals, *segments.values()):
        t.contacts_per_account = round(t.contacts / t.accounts, 2) if t.accounts else 0.0
        t.cost = round(t.cost, 2)
        t.recovered_share = _share(t.recovered, t.opening)
    curve: list[float] = []
    running = dict.fromkeys(paid_by_day, 0)
    for day in range(days + 1):
        for currency, amounts in paid_by_day.items():
            running[currency] += amounts[day]
        curve.append(_share(running, totals.opening))
    return Summary(
        policy=policy,
        days=days,
        accounts=totals.accounts,
        totals=totals,
        segments=dict(sorted(segments.items())),
        contacts_by_day=per_day,
        recovery_by_day=curve,
    )


def _share(recovered: dict[str, int], opening: dict[str, int]) -> float:
    """The mean over currencies of the share collected: amounts in different currencies never add."""
    shares = [recovered.get(c, 0) / total for c, total in opening.items() if total > 0]
    return round(sum(shares) / len(shares), 4) if shares else 0.0


def _add(t: Totals, a, prices: Prices) -> None:  # type: ignore[no-untyped-def]
    t.accounts += 1
    t.contacts += len(a.sent)
    _count(t.by_channel, (s.channel.value for s in a.sent))
    _count(t.by_stage, (s.stage.value for s in a.sent))
    _count(t.by_template, (s.template for s in a.sent))
    _count(t.outcomes, (s.outcome.value for s in a.sent))
    _count(t.refusals, (r.rule for r in a.refused))
    _count(t.ended, [a.ended or "open"])
    t.opted_out += int(bool(a.carried.opted_out))
    t.contact_lost += int(a.carried.contact_lost)
    t.visits += a.carried.visits
    t.cost += sum(prices.sms if s.channel == Channel.SMS else prices.call for s in a.sent)
    m = a.money
    currency = a.terms.currency
    t.opening[currency] = t.opening.get(currency, 0) + m.opening
    t.recovered[currency] = t.recovered.get(currency, 0) + m.recovered
    t.paid += int(bool(m.payments))
    for reaction, n in m.reactions.items():
        t.reactions[reaction] = t.reactions.get(reaction, 0) + n
    t.plans += m.plans
    t.kept_plans += m.kept_plans
    t.broken_plans += m.broken_plans
    t.complaints += m.complaints


def _count(into: dict[str, int], items) -> None:  # type: ignore[no-untyped-def]
    for key, n in Counter(items).items():
        into[key] = into.get(key, 0) + n


# ---- the HTML report ------------------------------------------------------------------------------
_COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2"]


def write_html(path: Path, summaries: list[Summary], title: str) -> None:
    path.write_text(render_html(summaries, title), encoding="utf-8")


def render_html(summaries: list[Summary], title: str) -> str:
    """One page, no scripts and nothing fetched: bar charts as inline SVG, tables as tables."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:72rem}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:right}th:first-child,td:first-child{text-align:left}h2{margin-top:2rem}</style>",
        f"<h1>{e(title)}</h1>",
        f"<p>{summaries[0].accounts if summaries else 0} accounts, {summaries[0].days if summaries else 0} days, "
        "every contact decided by the same rules the workflows run (domain/).</p>",
    ]
    names = [s.policy for s in summaries]
    rows = [
        ("contacts", [s.totals.contacts for s in summaries]),
        ("contacts per account", [s.totals.contacts_per_account for s in summaries]),
        ("cost", [s.totals.cost for s in summaries]),
        ("opted out", [s.totals.opted_out for s in summaries]),
        ("contact lost", [s.totals.contact_lost for s in summaries]),
        ("field visits", [s.totals.visits for s in summaries]),
        ("share of balances recovered", [f"{s.totals.recovered_share:.1%}" for s in summaries]),
        ("accounts that paid", [s.totals.paid for s in summaries]),
        (
            "plans agreed / kept / broken",
            [f"{s.totals.plans} / {s.totals.kept_plans} / {s.totals.broken_plans}" for s in summaries],
        ),
        ("complaints", [s.totals.complaints for s in summaries]),
    ]
    for currency in sorted({c for s in summaries for c in s.totals.recovered}):
        rows.append(
            (f"recovered, {currency} (minor units)", [s.totals.recovered.get(currency, 0) for s in summaries])
        )
    parts.append(_table("Per policy", names, rows))
    for heading, attr in (
        ("Contacts by channel", "by_channel"),
        ("Contacts by stage", "by_stage"),
        ("Outcomes", "outcomes"),
        ("Gate refusals by rule", "refusals"),
        ("How accounts ended", "ended"),
        ("What debtors did", "reactions"),
    ):
        keys = sorted({k for s in summaries for k in getattr(s.totals, attr)})
        parts.append(
            _table(
                heading, names, [(k, [getattr(s.totals, attr).get(k, 0) for s in summaries]) for k in keys]
            )
        )
        parts.append(
            _bars(keys, [[getattr(s.totals, attr).get(k, 0) for k in keys] for s in summaries], names)
        )
    parts.append("<h2>Contacts per day</h2>")
    parts.append(_curve([s.contacts_by_day for s in summaries], names))
    parts.append("<h2>Recovery: share of the opening balances collected, by day</h2>")
    parts.append(_curve([[round(v * 10_000) for v in s.recovery_by_day] for s in summaries], names))
    if summaries and summaries[0].recovery_by_day:
        parts.append(
            "<p>At the end: "
            + ", ".join(f"{html.escape(s.policy)} {s.recovery_by_day[-1]:.1%}" for s in summaries)
            + "</p>"
        )
    for s in summaries:
        parts.append(
            _table(
                f"{s.policy}: per segment",
                list(s.segments),
                [
                    (label, [getattr(t, attr) for t in s.segments.values()])
                    for label, attr in (
                        ("accounts", "accounts"),
                        ("contacts", "contacts"),
                        ("contacts per account", "contacts_per_account"),
                        ("cost", "cost"),
                        ("opted out", "opted_out"),
                        ("share recovered", "recovered_share"),
                        ("plans", "plans"),
                        ("complaints", "complaints"),
                    )
                ],
            )
        )
    return "".join(parts) + "</html>"


def _table(heading: str, columns: list[str], rows: list[tuple[str, list[object]]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{e(label)}</td>{''.join(f'<td>{e(str(v))}</td>' for v in values)}</tr>"
        for label, values in rows
    )
    return f"<h2>{e(heading)}</h2><table><tr><th></th>{head}</tr>{body}</table>"


def _bars(keys: list[str], series: list[list[int]], names: list[str]) -> str:
    if not keys:
        return ""
    top = max((v for vs in series for v in vs), default=0) or 1
    width, row_h, label_w = 640, 14, 220
    height = len(keys) * (row_h * len(series) + 6)
    out = [f"<svg width='{width + label_w}' height='{height}' role='img'>"]
    y = 0
    for i, key in enumerate(keys):
        out.append(f"<text x='0' y='{y + row_h}' font-size='12'>{html.escape(key)}</text>")
        for j, values in enumerate(series):
            w = int(width * values[i] / top)
            colour = _COLOURS[j % len(_COLOURS)]
            out.append(
                f"<rect x='{label_w}' y='{y}' width='{w}' height='{row_h - 2}' fill='{colour}'>"
                f"<title>{html.escape(names[j])}: {values[i]}</title></rect>"
            )
            y += row_h
        y += 6
    out.append("</svg>")
    return "".join(out)


def _curve(series: list[list[int]], names: list[str]) -> str:
    width, height = 860, 200
    top = max((v for vs in series for v in vs), default=0) or 1
    out = [f"<svg width='{width}' height='{height + 20}' role='img'>"]
    for j, values in enumerate(series):
        step = width / max(len(values) - 1, 1)
        points = " ".join(f"{i * step:.1f},{height - height * v / top:.1f}" for i, v in enumerate(values))
        colour = _COLOURS[j % len(_COLOURS)]
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{points}'>")
        out.append(f"<title>{html.escape(names[j])}</title></polyline>")
    out.append(f"<text x='0' y='{height + 16}' font-size='12'>day 0</text>")
    out.append(
        f"<text x='{width - 60}' y='{height + 16}' font-size='12'>day {len(series[0]) - 1 if series else 0}</text>"
    )
    out.append("</svg>")
    legend = " ".join(
        f"<span style='color:{_COLOURS[j % len(_COLOURS)]}'>■ {html.escape(n)}</span>"
        for j, n in enumerate(names)
    )
    return "".join(out) + f"<p>{legend}</p>"


__all__ = ["Prices", "Summary", "Totals", "render_html", "summarise", "write_html"]
