"""The debtor's "who contacts you" list: every contact coming up and every one of the last days, by
channel, and each home visit with the agency's name, its licence and the collector's ID.

Why it reads what it reads:

* **Coming up** is the workflow's own ``timeline`` (the contacts it will make if nothing changes, so
  the list cannot promise quiet that the workflow will not keep) plus the open visits in the database.
* **Recent** is the application database's record of attempts that reached, or may have reached, the
  debtor (accepted or indeterminate; refused or deferred ones never went out), ours and the agency's
  calls alike, and the visits of the same period.
* **In plain words, never the message itself:** each contact says what it was about (its template,
  else its purpose) in the page's language; a body may quote amounts or names a phone's other reader
  should not see twice, and the debtor has the text anyway. Contacts with an emergency contact are not
  the debtor's and are not listed.
* **The visitor can be checked:** the collector ID the agency named shows beside the window, with a
  link to the public ``/verify`` page anyone at the door can use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from domain.agencies import AgencyBook
from domain.gate import Audience
from domain.timeline import Timeline
from store import agencies
from store.contacts import COUNTED_ATTEMPT_STATES, contact_attempts

#: How far back "recent" reaches, and how many rows each part shows at most.
RECENT_DAYS = 30
UPCOMING_SHOWN = 8
RECENT_SHOWN = 20
AGENCY_TEMPLATE = "agency:"


class Words:
    """What a contact was about, in the page's language: its template's words, else its purpose's."""

    def __init__(self, t: Any, known: set[str]) -> None:
        self.t, self.known = t, known

    def about(self, template: str | None, purpose: str | None) -> str:
        for key in (f"about_{template}", f"purpose_{purpose}"):
            if key in self.known:
                return str(self.t(key))
        return str(self.t("purpose_dunning"))

    def channel(self, channel: str) -> str:
        key = f"channel_{channel}"
        return str(self.t(key)) if key in self.known else channel


def _visit_row(visit: agencies.VisitView, book: AgencyBook, zone: ZoneInfo, t: Any) -> dict[str, Any]:
    agency = book.get(visit.agency_id) if visit.agency_id else None
    start, end = visit.window_start.astimezone(zone), visit.window_end.astimezone(zone)
    name = agency.name if agency else (visit.agency_id or "")
    return {
        "at": visit.window_start,
        "channel": t("channel_visit"),
        "about": t(f"visit_status_{visit.status}"),
        "who": name,
        "visit": {
            "window": t(
                "visit_window", date=start.date().isoformat(), start=f"{start:%H:%M}", end=f"{end:%H:%M}"
            ),
            "agency": t("visit_agency", agency=name, licence=agency.licence_number if agency else "-"),
            "collector": t("visit_collector", collector=visit.collector_id)
            if visit.collector_id
            else t("visit_no_collector"),
            "collector_id": visit.collector_id,
            "open": visit.status in agencies.OPEN_VISIT_STATUSES,
        },
    }


def contact_list(
    sessions: sessionmaker[Session],
    account_id: str,
    timeline: Timeline,
    now: datetime,
    zone: str,
    t: Any,
    known: set[str],
    company: str,
    book: AgencyBook,
) -> dict[str, Any]:
    """``upcoming`` (soonest first) and ``recent`` (newest first) rows for the account page.

    ``now`` is the workflow's policy time (what the timeline and the stored times speak), ``zone`` the
    debtor's home zone, ``t`` the page's strings and ``known`` the keys they have."""
    words = Words(t, known)
    tz = ZoneInfo(zone)
    since = now - timedelta(days=RECENT_DAYS)
    with sessions.begin() as s:
        attempts = contact_attempts(s, account_id)
        visits = agencies.visits_for_account(s, account_id)

    upcoming: list[dict[str, Any]] = []
    for entry in timeline.entries:
        if entry.channel and entry.at >= now and len(upcoming) < UPCOMING_SHOWN:
            purpose = "plan_reminder" if entry.kind == "reminder" else "dunning"
            upcoming.append(
                {
                    "at": entry.at,
                    "channel": words.channel(entry.channel),
                    "about": words.about(entry.template, purpose),
                    "who": t("contacts_us", company=company),
                }
            )
    recent: list[dict[str, Any]] = []
    for attempt in attempts:
        at = attempt.sent_at or attempt.created_at
        if attempt.audience != Audience.DEBTOR or attempt.state.value not in COUNTED_ATTEMPT_STATES:
            continue
        if not since <= at <= now:
            continue
        if attempt.template.startswith(AGENCY_TEMPLATE):
            agency_id = attempt.template.removeprefix(AGENCY_TEMPLATE)
            agency = book.get(agency_id)
            who, about = (agency.name if agency else agency_id), t("about_agency_call")
        else:
            who, about = t("contacts_us", company=company), words.about(attempt.template, attempt.purpose)
        recent.append({"at": at, "channel": words.channel(attempt.channel.value), "about": about, "who": who})
    for visit in visits:
        if visit.status == "unassigned" or visit.agency_id is None:
            continue
        row = _visit_row(visit, book, tz, t)
        if visit.window_end > now:  # planned, or called off: its status says which
            upcoming.append(row)
        elif visit.window_end >= since:
            recent.append(row)
    upcoming.sort(key=lambda r: r["at"])
    recent.sort(key=lambda r: r["at"], reverse=True)
    return {"upcoming": upcoming, "recent": recent[:RECENT_SHOWN], "days": RECENT_DAYS}
