"""``./collect credit-file``: the monthly furnishing file of one profile, and why accounts were left out.

The file holds personal data (names): it is written where the operator says and nowhere else; what
is printed are counts and reasons, never a name.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from domain.credit_csv import write_csv
from domain.credit_reporting import Furnished, reportable
from domain.metro2 import Reporter, write_file
from domain.profiles import load_profile
from runtime.cli_common import console, err, sessions_for
from runtime.settings import Settings


class CreditFile(BaseModel):
    """A furnishing file and what it left out: reason -> accounts."""

    model_config = ConfigDict(frozen=True)

    text: str
    format: str
    reported: int
    held_back: dict[str, int]


def build_credit_file(
    s: Session, *, profile: str, cycle_date: date, reporter: Reporter | None, created: date
) -> CreditFile:
    """The file of ``profile`` for ``cycle_date``; ``reporter`` is required for Metro 2.

    Raises ValueError when the profile does not report (no ``[credit_reporting]``) or a Metro 2 file
    has no furnisher identification.
    """
    from store.credit_facts import furnishing_facts

    rules = load_profile(profile).credit_reporting
    if rules is None:
        raise ValueError(
            f"profile {profile}: no [credit_reporting] table, so its accounts are never reported"
        )
    items = furnishing_facts(
        s, profile=profile.upper(), cycle_date=cycle_date, notice_template=rules.notice_template
    )
    kept: list[Furnished] = []
    held: Counter[str] = Counter()
    for item in items:
        ok, reason = reportable(item.facts, rules, cycle_date)
        if ok:
            kept.append(item)
        else:
            held[reason] += 1
    if rules.format == "metro2":
        if reporter is None:
            raise ValueError(
                "furnisher id: a Metro 2 file needs the id the bureaus assigned (--furnisher-id)"
            )
        text = write_file(kept, reporter, cycle_date=cycle_date, created=created)
    else:
        text = write_csv(kept, rules)
    return CreditFile(
        text=text, format=rules.format, reported=len(kept), held_back=dict(sorted(held.items()))
    )


async def cmd_credit_file(args: argparse.Namespace, settings: Settings) -> int:
    try:
        cycle = date.fromisoformat(args.cycle)
    except ValueError:
        err.print(f"--cycle: {args.cycle!r} is not a date YYYY-MM-DD")
        return 2
    furnisher = args.furnisher_id or os.environ.get("COLLECT_FURNISHER_ID") or ""
    reporter = (
        Reporter(
            name=settings.company_name, identification_number=furnisher, telephone=settings.callback_number
        )
        if furnisher
        else None
    )
    try:
        done = await asyncio.to_thread(_write, settings, args.profile, cycle, reporter, Path(args.out))
    except ValueError as exc:
        err.print(str(exc))
        return 2
    console.print(f"{args.out}: {done.format}, {done.reported} accounts reported for {cycle.isoformat()}")
    for reason, n in done.held_back.items():
        console.print(f"held back: {n} {reason}", highlight=False)
    return 0


def _write(settings: Settings, profile: str, cycle: date, reporter: Reporter | None, out: Path) -> CreditFile:
    """Build the file and write it readable by its owner only (it names people)."""
    with sessions_for(settings).begin() as s:
        done = build_credit_file(
            s, profile=profile, cycle_date=cycle, reporter=reporter, created=datetime.now(UTC).date()
        )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(done.text)
    return done
