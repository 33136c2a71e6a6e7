"""The what-if: a supervisor compares two policies on a segment of the book, with the strategy lab.

``/console/whatif`` shows a form (two policies, a segment, where the accounts come from, how many
days); posting it runs the lab (``lab/compare.py``: the workflows' own ``domain/`` functions on a
simulated clock, no Temporal) and shows the lab's side-by-side report and its JSON, the same report
``./collect simulate`` writes. Nothing is contacted and nothing about an account changes: the run is
audited (who, which policies, which segment, how many accounts) because it reads the book.

* **Policies**: the files of ``policies/`` that are policies, and every policy version stored at
  intake (``store/rules.py``: what accounts actually run), so a supervisor can compare what is running
  with what might.
* **Accounts**: the segment's accounts in dunning from the database (``store/segments.py``), or a
  seeded synthetic portfolio cut by the same segment. At most :data:`MAX_ACCOUNTS`: a larger segment
  is sampled with the form's seed, and the page says so.
* **One run at a time** per server: a run holds a core for up to a couple of minutes (it runs in a
  worker thread, so the server keeps answering); a second supervisor is told to try again, rather
  than both waiting twice as long.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData

from domain.accounts import Product
from domain.policy import POLICY_DIR, Policy, load_policy, parse_policy
from domain.profiles import PROFILE_DIR
from domain.segments import Segment, matches
from lab.compare import LabAccount, run_policies
from lab.debtors import load_model
from lab.report import Prices, Summary, render_html
from lab.synthetic import synthetic_accounts
from service.auth import Principal
from service.console import PREFIX, _base, _posted, _who, page
from service.state import app_sessions
from store.audit import audit
from store.rules import sources
from store.segments import segment_accounts

router = APIRouter()

PATH = f"{PREFIX}/whatif"
#: the most accounts one what-if simulates (about a minute per policy on one core); more are sampled
MAX_ACCOUNTS = 5_000
#: the simulated days a run may ask for: a cadence runs to charge-off, 180 days past due at most
MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 365, 180
DEFAULT_SYNTHETIC = 1_000
SOURCES = ("portfolio", "synthetic")
_running = asyncio.Lock()


@dataclass
class WhatIf:
    """A posted form, checked: what the run needs, or ``errors`` by field."""

    policy_a: str = "default"
    policy_b: str = ""
    segment: Segment = field(default_factory=Segment)
    source: str = "portfolio"
    count: int = DEFAULT_SYNTHETIC
    days: int = DEFAULT_DAYS
    seed: int = 1
    debtors: str = "answer"  # or "silent": what debtors do once reached (lab/debtors.toml), or nothing
    errors: dict[str, str] = field(default_factory=dict)


# ---- the choices ----------------------------------------------------------------------------------
def policy_files() -> list[str]:
    """The files of ``policies/`` that are policies (``agencies.toml`` is not)."""
    names = []
    for path in sorted(POLICY_DIR.glob("*.toml")):
        try:
            load_policy(path.stem)
        except ValueError:
            continue
        names.append(path.stem)
    return names


def stored_policies(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Every policy version intake stored, by version (``name@digest``), with its text."""
    with sessions.begin() as s:
        return {src.version: src.text for src in sources(s, "policy")}


def profiles() -> list[str]:
    return sorted(p.stem.upper() for p in PROFILE_DIR.glob("*.toml"))


# ---- the form -------------------------------------------------------------------------------------
def read_form(form: FormData, files: list[str], stored: dict[str, str]) -> WhatIf:
    """The form as a :class:`WhatIf`; each bad field named with its reason in ``errors``."""
    got = WhatIf()
    errors = got.errors
    text = {k: str(form.get(k, "")).strip() for k in form}
    choices = set(files) | set(stored)
    for name in ("policy_a", "policy_b"):
        value = text.get(name, "")
        if not value:
            errors[name] = f"{name}: choose a policy"
        elif value not in choices:
            errors[name] = f"{name}: {value!r} is neither a policy file nor a stored policy version"
        setattr(got, name, value)
    if "policy_a" not in errors and "policy_b" not in errors and got.policy_a == got.policy_b:
        errors["policy_b"] = "policy_b: choose a policy other than policy_a, or there is nothing to compare"
    got.source = text.get("source", "portfolio") or "portfolio"
    if got.source not in SOURCES:
        errors["source"] = f"source: {got.source!r} is not one of {', '.join(SOURCES)}"
    got.days = _whole(text, "days", DEFAULT_DAYS, errors, MIN_DAYS, MAX_DAYS)
    got.seed = _whole(text, "seed", 1, errors, 0, 2**31 - 1)
    got.debtors = text.get("debtors", "answer") or "answer"
    if got.debtors not in ("answer", "silent"):
        errors["debtors"] = f"debtors: {got.debtors!r} is not one of answer, silent"
    if got.source == "synthetic":
        got.count = _whole(text, "count", DEFAULT_SYNTHETIC, errors, 1, MAX_ACCOUNTS)
    got.segment = _segment(text, errors)
    return got


def _whole(text: dict[str, str], name: str, default: int, errors: dict[str, str], low: int, high: int) -> int:
    raw = text.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = f"{name}: {raw!r} is not a whole number"
        return default
    if not low <= value <= high:
        errors[name] = f"{name}: {value} is out of range ({low} to {high:,})"
    return value


def _segment(text: dict[str, str], errors: dict[str, str]) -> Segment:
    values: dict[str, Any] = {}
    profile = text.get("profile", "")
    if profile:
        if profile not in profiles():
            errors["profile"] = f"profile: {profile!r} is not one of {', '.join(profiles())}"
        values["profile"] = profile
    product = text.get("product", "")
    if product:
        if product not in Product.__members__.values():
            errors["product"] = f"product: {product!r} is not one of {', '.join(p.value for p in Product)}"
        else:
            values["product"] = product
    for name in ("balance_min", "balance_max"):
        if raw := text.get(name, "").replace(",", ""):
            try:
                values[name] = Decimal(raw)
            except InvalidOperation:
                errors[name] = f"{name}: {text[name]!r} is not an amount (e.g. 1000 or 250.50)"
    for name in ("dpd_min", "dpd_max"):
        if raw := text.get(name, ""):
            try:
                values[name] = int(raw)
            except ValueError:
                errors[name] = f"{name}: {raw!r} is not a whole number of days"
    if errors.keys() & {"profile", "product", "balance_min", "balance_max", "dpd_min", "dpd_max"}:
        return Segment()
    try:
        return Segment.model_validate(values)
    except ValidationError as exc:
        for e in exc.errors():
            message = str(e["msg"]).removeprefix("Value error, ")
            name = str(e["loc"][0]) if e["loc"] else message.split(" ", 1)[0]
            errors[name] = message if message.startswith(name) else f"{name}: {message}"
        return Segment()


# ---- the run --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    summaries: list[Summary]
    accounts: int
    matched: int  # accounts of the segment (of the synthetic portfolio, or in dunning in the book)
    report_html: str
    report_json: str
    start: datetime


def _policy(key: str, stored: dict[str, str]) -> Policy:
    if key in stored:
        return parse_policy(stored[key], source=key)
    return load_policy(key)


def run(sessions: sessionmaker[Session], who: Principal, w: WhatIf, stored: dict[str, str]) -> Outcome | str:
    """The what-if (in a worker thread): the accounts, both policies, the report, the audit line.
    A segment without accounts is returned as its error message."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    accounts: list[LabAccount]
    if w.source == "synthetic":
        portfolio = synthetic_accounts(w.count, seed=w.seed, now=start, prefix="WHATIF")
        accounts = [LabAccount(a) for a in portfolio if matches(w.segment, a, start.date())]
        matched = len(accounts)
    else:
        with sessions.begin() as s:
            draw = segment_accounts(s, w.segment, start.date(), limit=MAX_ACCOUNTS, seed=w.seed)
        accounts = [LabAccount(d.account, tuple(d.opted_out), tuple(d.unreachable)) for d in draw.accounts]
        matched = draw.total
    if not accounts:
        where = "of the synthetic portfolio" if w.source == "synthetic" else "in dunning"
        return f"segment: no account {where} matches ({w.segment.describe()})"
    policies = {key: _policy(key, stored) for key in (w.policy_a, w.policy_b)}
    summaries = run_policies(
        policies, accounts, start, w.days, Prices(), debtors=load_model() if w.debtors == "answer" else None
    )
    title = f"What-if: {w.policy_a} and {w.policy_b} on {w.segment.describe()}"
    with sessions.begin() as s:
        audit(
            s,
            at=datetime.now(UTC),
            clock="wall",
            account_id=None,
            actor=who.name,
            action="whatif_run",
            decision="ran",
            details={
                "policies": [w.policy_a, w.policy_b],
                "segment": w.segment.model_dump(mode="json", exclude_none=True),
                "source": w.source,
                "accounts": len(accounts),
                "matched": matched,
                "seed": w.seed,
                "days": w.days,
                "debtors": w.debtors,
            },
        )
    return Outcome(
        summaries=summaries,
        accounts=len(accounts),
        matched=matched,
        report_html=render_html(summaries, title),
        report_json=json.dumps([s.model_dump() for s in summaries], indent=1, ensure_ascii=False),
        start=start,
    )


# ---- the page -------------------------------------------------------------------------------------
def _context(
    request: Request, who: Principal, w: WhatIf, files: list[str], stored: dict[str, str], **more: Any
) -> dict[str, Any]:
    return _base(
        request,
        who,
        w=w,
        files=files,
        stored=sorted(stored),
        profiles=profiles(),
        products=[p.value for p in Product],
        sources=SOURCES,
        max_accounts=MAX_ACCOUNTS,
        min_days=MIN_DAYS,
        max_days=MAX_DAYS,
        **more,
    )


@router.get(PATH, response_class=HTMLResponse, include_in_schema=False)
async def whatif_form(request: Request) -> Response:
    who = _who(request, "approve")
    if isinstance(who, Response):
        return who
    stored = await asyncio.to_thread(stored_policies, app_sessions(request))
    files = policy_files()
    w = WhatIf(policy_b=next((f for f in files if f != "default"), ""))
    return page(request, "console/whatif.html", _context(request, who, w, files, stored))


@router.post(PATH, response_class=HTMLResponse, include_in_schema=False)
async def whatif_run(request: Request) -> Response:
    posted = await _posted(request, "approve")
    if isinstance(posted, Response):
        return posted
    who, form = posted
    sessions = app_sessions(request)
    stored = await asyncio.to_thread(stored_policies, sessions)
    files = policy_files()
    w = read_form(form, files, stored)
    if w.errors:
        return page(request, "console/whatif.html", _context(request, who, w, files, stored), status_code=422)
    if _running.locked():
        busy = "Another what-if is running on this server (one at a time); try again when it has finished."
        return page(request, "console/whatif.html", _context(request, who, w, files, stored, busy=busy), 429)
    async with _running:
        outcome = await asyncio.to_thread(run, sessions, who, w, stored)
    if isinstance(outcome, str):
        w.errors["segment"] = outcome
        return page(request, "console/whatif.html", _context(request, who, w, files, stored), status_code=422)
    return page(request, "console/whatif.html", _context(request, who, w, files, stored, outcome=outcome))
