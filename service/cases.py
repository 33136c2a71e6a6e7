"""Opening and answering cases: the store row first, then the case's clock (``CaseWorkflow``).

Every path that takes a request from a debtor (the page, a text, a call's keypad, the API on their
behalf) opens its case here, so each gets the same number, deadline and queue. A case is answered once,
by whatever path decides it (a complaint decided, a plan agreed or declined, a reply sent): the answer
stops its clock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.cases import CaseInput, CaseKind, case_workflow_id, deadlines
from domain.profiles import Profile, load_profile
from runtime.settings import Settings
from store import cases as store
from store import rules
from store.accounts import account_snapshot
from store.cases import CaseView

log = logging.getLogger("humane_collect.cases")

#: The calendar and tiers of a case that no account can be found for (a text from an unknown number).
DEFAULT_PROFILE, DEFAULT_ZONE = "US", "America/New_York"


def _calendar(s: Session, account_id: str | None) -> tuple[Profile, str]:
    """The account's pinned profile (its response tiers) and home zone; defaults without an account."""
    snap = account_snapshot(s, account_id) if account_id else None
    if snap is None:
        return load_profile(DEFAULT_PROFILE), DEFAULT_ZONE
    profile = rules.profile(s, snap.profile_version, snap.profile)  # the version the account runs
    return profile, snap.timezone or (snap.zones[0] if snap.zones else DEFAULT_ZONE)


async def open_case(
    client: Client,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    source_key: str,
    account_id: str | None,
    kind: CaseKind,
    channel: str,
    summary: str,
    actor: str,
) -> CaseView:
    """The case for ``source_key``, opened once; its clock is started with it."""
    now = datetime.now(UTC)

    def write() -> tuple[CaseView, bool, CaseInput]:
        with sessions.begin() as s:
            profile, zone = _calendar(s, account_id)
            due = deadlines(kind, now, profile.response_tiers, zone)
            view, created = store.open_case(
                s, source_key=source_key, account_id=account_id, kind=kind, channel=channel,
                summary=summary, deadlines=due, actor=actor, now=now,
            )  # fmt: skip
            return (
                view,
                created,
                CaseInput(
                    case_id=view.id, kind=kind, account_id=account_id, zone=zone, tiers=profile.response_tiers
                ),
            )

    view, created, case_input = await asyncio.to_thread(write)
    if created:
        try:
            await client.start_workflow(
                "CaseWorkflow",
                case_input,
                id=case_workflow_id(view.number),
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"{view.number}: {kind.value} by {channel}",
            )
        except WorkflowAlreadyStartedError:
            pass
    return view


async def open_unless_open(
    client: Client,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    account_id: str,
    kind: CaseKind,
    channel: str,
    summary: str,
    actor: str,
) -> CaseView:
    """The account's open case of ``kind``, or a new one: a request made twice is one case."""

    def find() -> CaseView | None:
        with sessions.begin() as s:
            return store.open_case_of(s, account_id, kind)

    found = await asyncio.to_thread(find)
    if found is not None:
        return found
    return await open_case(
        client, sessions, settings, source_key=f"{channel}/{kind.value}/{account_id}/{uuid.uuid4().hex}",
        account_id=account_id, kind=kind, channel=channel, summary=summary, actor=actor,
    )  # fmt: skip


async def answer_case(
    client: Client, sessions: sessionmaker[Session], case_id: int, person: str, text: str
) -> bool:
    """Answer the case once and stop its clock; False when it had been answered already."""
    now = datetime.now(UTC)

    def write() -> tuple[bool, CaseView | None]:
        with sessions.begin() as s:
            first = store.answer(s, case_id, person, text, now)
            return first, store.case(s, case_id)

    first, view = await asyncio.to_thread(write)
    if first and view is not None:
        await _stop_clock(client, view)
    return first


async def answer_open(
    client: Client, sessions: sessionmaker[Session], account_id: str, kind: CaseKind, person: str, text: str
) -> CaseView | None:
    """Answer the account's open case of ``kind`` (the oldest), if there is one: a decision taken on the
    account (a complaint decided in the console or the CLI, a plan agreed) answers its case too."""

    def find() -> CaseView | None:
        with sessions.begin() as s:
            return store.open_case_of(s, account_id, kind)

    found = await asyncio.to_thread(find)
    if found is not None:
        await answer_case(client, sessions, found.id, person, text)
    return found


async def _stop_clock(client: Client, view: CaseView) -> None:
    try:
        await client.get_workflow_handle(case_workflow_id(view.number)).signal("answered")
    except RPCError as err:  # its run has ended (answered late, or never started): nothing to stop
        log.info("case %s: clock not signalled (%s)", view.number, err.message)
