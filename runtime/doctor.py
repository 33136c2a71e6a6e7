"""``./collect doctor``: is everything a worker needs there, and if not, what to do about it.

An operator's first hour goes to finding out which of five things is wrong: the database (reachable, at
this release's schema), Temporal (reachable, our search attributes registered in the namespace), the
carrier (Twilio's credentials, or the simulator listening where the settings say) and the clock (a
skewed host clock puts quiet hours in the wrong place). Each check says what it found and, when it
fails, the one thing to do next.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from runtime.settings import Settings

#: More than this between this host's clock and the database server's is reported.
MAX_SKEW_SECONDS = 2.0
TEMPORAL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order an operator fixes things (a later one may depend on an earlier)."""
    checks = [await asyncio.to_thread(check_database, settings)]
    temporal, client = await check_temporal(settings)
    checks.append(temporal)
    if client is not None:
        checks.append(await check_search_attributes(client, settings))
    else:
        checks.append(Check("search attributes", False, "not checked: Temporal is unreachable", temporal.fix))
    checks.append(await asyncio.to_thread(check_carrier, settings))
    checks.append(await asyncio.to_thread(check_clock, settings))
    return checks


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_database(settings: Settings) -> Check:
    from store.db import schema_revisions

    shown = _shown_url(settings.database_url)
    try:
        current, head = schema_revisions(settings.database_url)
    except Exception as exc:  # the driver's own words are the useful part
        return Check(
            "database",
            False,
            f"{shown}: {str(exc).splitlines()[0]}",
            "check COLLECT_DATABASE_URL and that it runs",
        )
    if current != head:
        return Check(
            "database",
            False,
            f"{shown} is at migration {current or '(empty)'}, this release needs {head}",
            "./collect migrate",
        )
    return Check("database", True, f"{shown} at migration {head}")


async def check_temporal(settings: Settings) -> tuple[Check, object | None]:
    from runtime.temporal import connect

    try:
        client = await asyncio.wait_for(connect(settings), TEMPORAL_TIMEOUT_SECONDS)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fix = (
            "./collect server (a local dev server), or set COLLECT_TEMPORAL_ADDRESS"
            if settings.temporal_is_local
            else "check COLLECT_TEMPORAL_ADDRESS, COLLECT_TEMPORAL_TLS and COLLECT_TEMPORAL_API_KEY"
        )
        return Check("temporal", False, f"cannot reach {settings.temporal_address}: {reason}", fix), None
    return Check(
        "temporal", True, f"{settings.temporal_address}, namespace {settings.temporal_namespace}"
    ), client


async def check_search_attributes(client: object, settings: Settings) -> Check:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from workflows.search import CLI_TYPES

    try:
        listed = await client.operator_service.list_search_attributes(  # type: ignore[attr-defined]
            ListSearchAttributesRequest(namespace=settings.temporal_namespace)
        )
    except Exception as exc:
        return Check(
            "search attributes", False, f"cannot list them: {exc}", "python -m runtime.setup_temporal"
        )
    have = {name: IndexedValueType.Name(kind) for name, kind in listed.custom_attributes.items()}
    wrong = [
        f"{name} ({kind})"
        for name, kind in CLI_TYPES.items()
        if have.get(name) != f"INDEXED_VALUE_TYPE_{kind.upper()}"
    ]
    if wrong:
        return Check(
            "search attributes",
            False,
            f"missing or of another type in {settings.temporal_namespace}: {', '.join(wrong)}",
            "python -m runtime.setup_temporal",
        )
    return Check("search attributes", True, f"all {len(CLI_TYPES)} registered")


def check_carrier(settings: Settings) -> Check:
    """One real SDK call (the latest message), through the same client and base URL a worker uses."""
    from twilio.base.exceptions import TwilioException

    from activities.twilio_client import make_twilio_client

    simulator = settings.using_simulator
    name = "carrier" if simulator else "twilio"
    where = settings.twilio_base or "api.twilio.com"
    what = f"the simulator at {where}" if simulator else f"Twilio ({where})"
    twilio = make_twilio_client(settings.twilio_sid, settings.twilio_token, settings.twilio_base)
    try:
        twilio.messages.list(limit=1)
    except TwilioException as exc:
        # a list call raises the base class with the response beside the message ("Unable to fetch
        # page", <Response 401>); other calls raise TwilioRestException with .status
        status = getattr(exc, "status", None) or next(
            (a.status_code for a in exc.args if hasattr(a, "status_code")), None
        )
        if status in (401, 403):
            return Check(
                name,
                False,
                f"{what} refused the credentials ({status})",
                "check COLLECT_TWILIO_ACCOUNT_SID and COLLECT_TWILIO_AUTH_TOKEN",
            )
        return Check(name, False, f"{what} answered {status}: {exc.args[0]}", "see Twilio's status page")
    except Exception as exc:  # requests' connection errors: nothing answers there
        fix = (
            "python -m carrier (the simulator), or set COLLECT_TWILIO_ACCOUNT_SID and COLLECT_TWILIO_AUTH_TOKEN"
            if simulator
            else "check this host's outbound HTTPS (and COLLECT_TWILIO_API_BASE_URL if set)"
        )
        return Check(name, False, f"cannot reach {what}: {type(exc).__name__}", fix)
    if simulator:
        return Check(name, True, f"no Twilio account set: {what} answers")
    return Check(name, True, f"{what} takes account {settings.twilio_sid[:6]}…'s credentials")


def check_clock(settings: Settings) -> Check:
    """This host against the database server: the one other clock every process here shares."""
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(settings.database_url)
    if engine.dialect.name != "postgresql":
        return Check("clock", True, "SQLite: the database shares this host's clock")
    try:
        before = datetime.now(UTC)
        with engine.connect() as connection:
            theirs = connection.execute(text("SELECT now()")).scalar_one()
        after = datetime.now(UTC)
    except Exception as exc:
        return Check("clock", False, f"not checked: {str(exc).splitlines()[0]}", "fix the database first")
    skew = (theirs - (before + (after - before) / 2)).total_seconds()
    if abs(skew) > MAX_SKEW_SECONDS:
        return Check(
            "clock",
            False,
            f"this host is {skew:+.1f} s off the database server",
            "synchronise both with NTP (chrony, systemd-timesyncd): quiet hours depend on it",
        )
    return Check("clock", True, f"within {abs(skew):.2f} s of the database server")
