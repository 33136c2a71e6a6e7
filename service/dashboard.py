"""The reporting dashboard: one page, charts drawn on the server as SVG from the database.

No JavaScript, no CDN, nothing fetched by the browser but the page itself: the charts are inline SVG
built by the small pure functions below (each takes plain numbers and returns markup, so a test can
look at them without a browser), and the numbers come from :func:`store.reporting.dashboard_data`.

Charts: the portfolio funnel by stage, the recovery rate over time, contact outcomes by channel, the
silent/abandoned-call rate against the 3% line, settlements proposed/accepted/kept/broken, holds and
complaints with their SLA status, field visits and placements; and, while a champion/challenger test
runs, each variant's results with their 95% intervals (:func:`variants_table`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from domain.money import format_minor
from service.auth import Principal, require
from service.state import app_sessions
from store.audit import latest_event_at
from store.governor import latest_attempt_at
from store.reporting import DashboardData, dashboard_data
from store.variants import Rate, VariantResult

router = APIRouter(tags=["dashboard"])
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
Reader = Annotated[Principal, Depends(require("read"))]

ABANDONED_LIMIT = 0.03  # Reg F / Ofcom: at most 3% of live-answered calls abandoned
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
STAGE_COLOURS = {
    "pre_due": "#93c5fd",
    "early": "#60a5fa",
    "middle": "#3b82f6",
    "late": "#1d4ed8",
    "charged_off": "#1e3a8a",
}
OUTCOME_COLOURS = {
    "delivered": "#10b981",
    "conversation": "#059669",
    "sent": "#a7f3d0",
    "voicemail": "#818cf8",
    "no_answer": "#fbbf24",
    "busy": "#f59e0b",
    "silent": "#ef4444",
    "undeliverable": "#f87171",
    "failed": "#b91c1c",
    "opted_out": "#9ca3af",
    "indeterminate": "#d1d5db",
}
SLA_COLOURS = {"within_sla": "#10b981", "overdue": "#f59e0b", "escalated": "#ef4444", "resolved": "#9ca3af"}


def _t(text: object) -> str:
    return escape(str(text))


def _svg(width: int, height: int, body: str, label: str) -> Markup:
    # every text in ``body`` went through _t (escape) when the chart was drawn
    return Markup(  # nosec B704
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_t(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">{body}</svg>'
    )


def funnel_svg(stages: list[tuple[str, int]]) -> Markup:
    """Centred bars, one per stage, widths by count: the shape of the portfolio at a glance."""
    width, row = 400, 46
    top = max([n for _, n in stages] + [1])
    parts = []
    for i, (stage, n) in enumerate(stages):
        w = max(6.0, 240 * n / top)
        x = 120 + (240 - w) / 2
        y = 8 + i * row
        colour = STAGE_COLOURS.get(stage, "#3b82f6")
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 10}" rx="6" fill="{colour}"/>'
            f'<text x="110" y="{y + row / 2 + 1}" text-anchor="end" fill="{INK}" font-size="15">'
            f"{_t(stage.replace('_', ' '))}</text>"
            f'<text x="{x + w + 8:.1f}" y="{y + row / 2}" fill="{MUTED}" font-size="14" font-weight="600">{n}</text>'
        )
    return _svg(width, 16 + row * len(stages), "".join(parts), "Portfolio funnel by stage")


def recovery_svg(points: list[tuple[datetime | object, int, int]], opening_total: int) -> Markup:
    """Weekly collections as bars, the cumulative recovery rate as a line (right axis, %)."""
    width, height, left, right, top, bottom = 560, 240, 48, 48, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    peak = max([p[1] for p in points] + [1])
    rates = [100 * p[2] / opening_total if opening_total else 0.0 for p in points]
    rate_top = max([*rates, 1.0]) * 1.15
    step = plot_w / n
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{GRID}"/>'
    ]
    for k in range(1, 5):
        y = top + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}" '
            f'stroke-dasharray="2 4"/><text x="{width - right + 6}" y="{y + 4:.1f}" fill="{MUTED}" '
            f'font-size="11">{rate_top * k / 4:.0f}%</text>'
        )
    line = []
    for i, (week, amount, _) in enumerate(points):
        h = plot_h * amount / peak
        x = left + i * step
        parts.append(
            f'<rect x="{x + step * 0.18:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.64:.1f}" '
            f'height="{h:.1f}" rx="3" fill="#bfdbfe"><title>{_t(week)}: {amount / 100:,.2f}</title></rect>'
        )
        line.append(f"{x + step / 2:.1f},{top + plot_h - plot_h * rates[i] / rate_top:.1f}")
        if i % 2 == 0:
            label = week.strftime("%d %b") if hasattr(week, "strftime") else str(week)
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 14}" text-anchor="middle" fill="{MUTED}" '
                f'font-size="11">{_t(label)}</text>'
            )
    if line:
        area = (
            f"{left + step / 2:.1f},{top + plot_h} "
            + " ".join(line)
            + f" {line[-1].split(',')[0]},{top + plot_h}"
        )
        parts.append(f'<polygon points="{area}" fill="#2563eb" fill-opacity="0.08"/>')
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#2563eb" stroke-width="3"/>')
        last_x, last_y = line[-1].split(",")
        parts.append(
            f'<circle cx="{last_x}" cy="{last_y}" r="5" fill="#2563eb"/>'
            f'<text x="{float(last_x) - 8:.1f}" y="{float(last_y) - 10:.1f}" text-anchor="end" fill="#1d4ed8" '
            f'font-size="13" font-weight="700">{rates[-1]:.1f}%</text>'
        )
    return _svg(width, height, "".join(parts), "Recovery rate over time")


def stacked_svg(rows: dict[str, dict[str, int]], colours: dict[str, str], label: str) -> Markup:
    """One 100% bar per row (channel), segments by outcome, with a legend underneath."""
    width, row, left = 560, 46, 70
    keys = [k for k in colours if any(k in r for r in rows.values())]
    keys += sorted({k for r in rows.values() for k in r} - set(keys))
    parts = []
    for i, (name, counts) in enumerate(sorted(rows.items())):
        total = sum(counts.values()) or 1
        x, y = float(left), 8 + i * row
        parts.append(
            f'<text x="{left - 10}" y="{y + 20}" text-anchor="end" fill="{INK}" font-size="14">{_t(name)}</text>'
        )
        for key in keys:
            n = counts.get(key, 0)
            if not n:
                continue
            w = (width - left - 20) * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="30" fill="{colours.get(key, "#9ca3af")}">'
                f"<title>{_t(key)}: {n}</title></rect>"
            )
            if w > 34:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 20}" text-anchor="middle" fill="white" '
                    f'font-size="12" font-weight="600">{100 * n / total:.0f}%</text>'
                )
            x += w
    y = 14 + len(rows) * row
    x = float(left)
    for key in keys:
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" rx="2" fill="{colours.get(key, "#9ca3af")}"/>'
            f'<text x="{x + 16:.1f}" y="{y + 11}" fill="{MUTED}" font-size="12">{_t(key.replace("_", " "))}</text>'
        )
        x += 22 + 7.2 * len(key)
        if x > width - 90:
            x, y = float(left), y + 20
    return _svg(width, y + 24, "".join(parts), label)


def silent_svg(
    days: list[tuple[object, int, int]], limit: float = ABANDONED_LIMIT, window: int = 7
) -> Markup:
    """The silent/abandoned share of answered calls over a trailing ``window`` days, against the 3% line.

    A trailing window, because the rule is a rate over a period (30 days Reg F, 24 h Ofcom) and one
    quiet day's single silent call would otherwise draw a spike that says nothing.
    """
    width, height, left, right, top, bottom = 560, 220, 44, 24, 16, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    rates: list[tuple[object, float | None]] = []
    for i, (d, _, _) in enumerate(days):
        recent = days[max(0, i - window + 1) : i + 1]
        silent, answered = sum(r[1] for r in recent), sum(r[2] for r in recent)
        rates.append((d, 100 * silent / answered if answered else None))
    ceiling = max([r for _, r in rates if r is not None] + [limit * 100 * 2])
    ceiling = float(int(ceiling) + 1)
    n = max(len(rates) - 1, 1)

    def y_of(rate: float) -> float:
        return top + plot_h - plot_h * rate / ceiling

    parts = []
    for k in range(0, 5):
        v = ceiling * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y_of(v):.1f}" x2="{width - right}" y2="{y_of(v):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y_of(v) + 4:.1f}" text-anchor="end" fill="{MUTED}" font-size="11">{v:.1f}%</text>'
        )
    limit_y = y_of(limit * 100)
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{limit_y - top:.1f}" fill="#fee2e2" fill-opacity="0.6"/>'
        f'<line x1="{left}" y1="{limit_y:.1f}" x2="{width - right}" y2="{limit_y:.1f}" stroke="#dc2626" '
        f'stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{left + 8}" y="{limit_y - 6:.1f}" text-anchor="start" fill="#dc2626" font-size="12" '
        f'font-weight="700">{limit:.0%} legal limit</text>'
    )
    pts = []
    for i, (day, rate) in enumerate(rates):
        if rate is None:
            continue
        x = left + plot_w * i / n
        pts.append((x, y_of(rate), rate, day))
    if pts:
        parts.append(
            '<polyline points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
            + '" fill="none" stroke="#0f766e" stroke-width="2.5"/>'
        )
        for x, y, rate, day in pts:
            colour = "#dc2626" if rate > limit * 100 else "#0f766e"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{_t(day)}: {rate:.1f}%</title></circle>'
            )
    for i, anchor in ((0, "start"), (len(rates) // 2, "middle"), (len(rates) - 1, "end")):
        if 0 <= i < len(rates):
            day = rates[i][0]
            label = day.strftime("%d %b") if hasattr(day, "strftime") else str(day)
            parts.append(
                f'<text x="{left + plot_w * i / n:.1f}" y="{height - 10}" text-anchor="{anchor}" fill="{MUTED}" '
                f'font-size="11">{_t(label)}</text>'
            )
    return _svg(width, height, "".join(parts), "Silent and abandoned call rate against the 3% line")


def bars_svg(items: list[tuple[str, int]], colours: list[str], label: str) -> Markup:
    """Vertical bars with their numbers on top (settlements, holds, visits)."""
    width, height, top, bottom = 420, 200, 24, 40
    peak = max([n for _, n in items] + [1])
    slot = width / max(len(items), 1)
    parts = [f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{GRID}"/>']
    for i, (name, n) in enumerate(items):
        h = (height - top - bottom) * n / peak
        x = i * slot + slot * 0.2
        colour = colours[i % len(colours)]
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{slot * 0.6:.1f}" height="{max(h, 1):.1f}" '
            f'rx="5" fill="{colour}"/>'
            f'<text x="{x + slot * 0.3:.1f}" y="{height - bottom - h - 6:.1f}" text-anchor="middle" '
            f'fill="{INK}" font-size="14" font-weight="700">{n}</text>'
            f'<text x="{x + slot * 0.3:.1f}" y="{height - bottom + 18}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="12">{_t(name.replace("_", " "))}</text>'
        )
    return _svg(width, height, "".join(parts), label)


def donut_svg(parts_in: dict[str, int], colours: dict[str, str], label: str) -> Markup:
    """A ring of shares with the total in the middle and a legend at the side."""
    import math

    width, height, cx, cy, r = 420, 200, 100, 100, 70
    total = sum(parts_in.values())
    parts = []
    if total == 0:
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{GRID}" stroke-width="26"/>')
    angle = -math.pi / 2
    for key, n in parts_in.items():
        if not n:
            continue
        sweep = 2 * math.pi * n / total
        if n == total:
            parts.append(
                f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{colours[key]}" stroke-width="26"/>'
            )
        else:
            x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
            x2, y2 = cx + r * math.cos(angle + sweep), cy + r * math.sin(angle + sweep)
            large = 1 if sweep > math.pi else 0
            parts.append(
                f'<path d="M {x1:.1f} {y1:.1f} A {r} {r} 0 {large} 1 {x2:.1f} {y2:.1f}" fill="none" '
                f'stroke="{colours[key]}" stroke-width="26"><title>{_t(key)}: {n}</title></path>'
            )
        angle += sweep
    parts.append(
        f'<text x="{cx}" y="{cy + 4}" text-anchor="middle" fill="{INK}" font-size="26" font-weight="700">{total}</text>'
        f'<text x="{cx}" y="{cy + 22}" text-anchor="middle" fill="{MUTED}" font-size="11">complaints</text>'
    )
    for i, (key, n) in enumerate(parts_in.items()):
        y = 50 + i * 28
        parts.append(
            f'<rect x="220" y="{y - 11}" width="14" height="14" rx="3" fill="{colours[key]}"/>'
            f'<text x="242" y="{y}" fill="{INK}" font-size="14">{_t(key.replace("_", " "))}</text>'
            f'<text x="400" y="{y}" text-anchor="end" fill="{INK}" font-size="14" font-weight="700">{n}</text>'
        )
    return _svg(width, height, "".join(parts), label)


def _pct(rate: Rate) -> str:
    """``12.0% (9.1–15.6%)``: the share and its 95% Wilson interval; a dash when nobody qualifies."""
    if not rate.of:
        return "–"
    return f"{rate.share:.1%} <small>({rate.low:.1%}–{rate.high:.1%})</small>"


def variants_table(results: list[VariantResult]) -> Markup:
    """One row per variant (and currency): its accounts and each result with its 95% interval.

    Intervals that do not overlap are a difference the sample supports; overlapping ones are not yet
    (the table says so, so nobody promotes a challenger on noise)."""
    if not results:
        return Markup("")
    head = (
        "<tr><th>Variant</th><th>Policy</th><th>Accounts</th><th>Recovered</th><th>Collected</th>"
        "<th>Contacts per 100 recovered</th><th>Complained</th><th>Opted out</th><th>Broke a plan</th></tr>"
    )
    rows = []
    for r in results:
        if r.contacts_per_100 is None:
            per = "–"
        else:
            est, low, high = r.contacts_per_100
            per = f"{est:.2f} <small>({low:.2f}–{high:.2f})</small>"
        collected = r.paid_minor / r.opening_minor if r.opening_minor else 0.0
        broke = _pct(r.broke_plan) + (f" <small>of {r.broke_plan.of}</small>" if r.broke_plan.of else "")
        rows.append(
            f"<tr><th scope='row'>{_t(r.variant)}</th><td>{_t(', '.join(r.policies))}</td>"
            f"<td>{r.accounts:,} <small>({r.open_accounts:,} open)</small></td>"
            f"<td>{_pct(r.recovered)}</td>"
            f"<td>{collected:.1%} <small>{_t(format_minor(r.paid_minor, r.currency))}</small></td>"
            f"<td>{per} <small>{_t(r.currency)}</small></td>"
            f"<td>{_pct(r.complained)}</td><td>{_pct(r.opted_out)}</td><td>{broke}</td></tr>"
        )
    # every cell's text went through _t or is a number formatted here
    return Markup(f'<table class="variants">{head}{"".join(rows)}</table>')  # nosec B704


def render_dashboard(data: DashboardData, now: datetime) -> str:
    answered = sum(a for _, _, a in data.silent)
    silent = sum(s for _, s, _ in data.silent)
    rate = silent / answered if answered else 0.0
    collected = data.recovery[-1][2] if data.recovery else 0
    recovery = collected / data.opening_total if data.opening_total else 0.0
    # every account not closed: what `temporal workflow count --query "WorkflowType IN
    # ('DelinquencyWorkflow', 'SettlementWorkflow') AND ExecutionStatus = 'Running'"` counts (a bare
    # count also counts the field visits, child workflows of their accounts)
    open_accounts = data.open_accounts
    open_complaints = (
        data.complaints["within_sla"] + data.complaints["overdue"] + data.complaints["escalated"]
    )
    tiles = [
        ("Open accounts", f"{open_accounts:,}", f"{sum(n for _, n in data.closed):,} closed", "ok"),
        ("Recovered", f"{recovery:.1%}", f"{format_minor(collected, data.currency)} collected", "ok"),
        (
            "Abandoned calls (30 d)",
            f"{rate:.2%}",
            f"{silent} of {answered} answered calls",
            "bad" if rate > ABANDONED_LIMIT else "ok",
        ),
        (
            "Open complaints",
            str(open_complaints),
            f"{data.complaints['overdue'] + data.complaints['escalated']} past SLA",
            "bad" if data.complaints["overdue"] + data.complaints["escalated"] else "ok",
        ),
    ]
    template = TEMPLATES.get_template("dashboard.html")
    return template.render(
        now=now,
        tiles=tiles,
        currency=data.currency,
        funnel=funnel_svg(data.funnel),
        closed=bars_svg(data.closed or [("none", 0)], ["#6366f1", "#8b5cf6", "#a855f7", "#64748b"], "Closed"),
        recovery=recovery_svg(data.recovery, data.opening_total),
        outcomes=stacked_svg(data.outcomes, OUTCOME_COLOURS, "Contact outcomes by channel"),
        silent=silent_svg(data.silent),
        settlements=bars_svg(
            list(data.settlements.items()), ["#94a3b8", "#3b82f6", "#10b981", "#ef4444"], "Settlements"
        ),
        holds=bars_svg(
            data.holds or [("none", 0)], ["#f59e0b", "#fb923c", "#f97316", "#ea580c"], "Holds by kind"
        ),
        complaints=donut_svg(data.complaints, SLA_COLOURS, "Complaints by SLA status"),
        visits=bars_svg(
            sorted(data.visits.items()) or [("none", 0)],
            ["#0ea5e9", "#14b8a6", "#22c55e", "#eab308"],
            "Visits",
        ),
        placements=bars_svg(
            sorted(data.placements.items()) or [("none", 0)], ["#6366f1", "#10b981", "#f43f5e"], "Placements"
        ),
        variants=variants_table(data.variants),
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, who: Reader) -> HTMLResponse:
    """The reporting dashboard (any role that may read: agent, supervisor, auditor)."""
    now = datetime.now(UTC)
    with app_sessions(request).begin() as s:
        # policy time: under the demo's day scaling it runs ahead of the wall clock; the newest audit
        # line or contact attempt says how far (store/governor.py: the campaign's clock)
        now = max([now, *(t for t in (latest_event_at(s), latest_attempt_at(s)) if t is not None)])
        data = dashboard_data(s, now)
    return HTMLResponse(render_dashboard(data, now))
