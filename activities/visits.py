"""Database side of field visits and agency placement: choosing the agency and recording each step.

Idempotent like every activity: a visit or placement is keyed by the id the workflow gives it, so a
retried assignment returns the agency chosen the first time instead of choosing (and loading) again.

The choice is :func:`domain.agencies.pick`: an agency whose licence does not cover the day of the work
(the visit's own day; the placement's day) is refused, and the audit line names it with the rule
(``agencies.licence_expired``), as it names ``visits.no_agency_capacity`` when nobody has room.
"""

from __future__ import annotations

from temporalio import activity

from activities.deps import Deps
from domain.agencies import (
    END_PLACEMENT,
    PLACE_ACCOUNT,
    EndPlacement,
    Placed,
    PlaceRequest,
    Work,
    load_agencies,
    pick,
)
from domain.visits import VISIT_ASSIGN, VISIT_UPDATE, Assigned, AssignRequest, VisitUpdate
from store import agencies
from store.audit import audit


class VisitActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=VISIT_ASSIGN)
    def assign_visit(self, req: AssignRequest) -> Assigned:
        """Pick an agency serving the debtor's region with room for one more visit, and store the visit."""
        book = load_agencies(self.deps.settings.agencies_file)
        with self.deps.sessions.begin() as s:
            existing = agencies.visit(s, req.visit_id)
            if existing is None:
                visits, _ = agencies.agency_load(s)
                # the visitor stands at the door on the window's day (the debtor's calendar): the
                # licence must cover that day, not only today
                on = max(req.at.date(), req.window_start.date())
                choice = pick(book, Work.VISIT, region=req.region, country=req.country, load=visits, on=on)
                agency = choice.agency
                existing = agencies.create_visit(
                    s,
                    visit_id=req.visit_id,
                    account_id=req.account_id,
                    agency_id=agency.id if agency else None,
                    window_start=req.window_start,
                    window_end=req.window_end,
                    report_due=req.report_due,
                    now=req.at,
                    reason=choice.rule,
                )
                audit(
                    s,
                    at=req.at,
                    clock="policy",
                    account_id=req.account_id,
                    actor="workflow",
                    action="visit_assigned" if agency else "visit_unassigned",
                    decision="visit_assigned" if agency else "visit_unassigned",
                    rule=choice.rule,
                    details={
                        "visit": req.visit_id,
                        "agency": agency.id if agency else None,
                        "window": f"{req.window_start.isoformat()}/{req.window_end.isoformat()}",
                        **({"refused": choice.refused} if choice.refused else {}),
                    },
                )
        agency = book.get(existing.agency_id) if existing.agency_id else None
        if agency is None:
            return Assigned(agency_id=None, rule=existing.cancel_reason)
        return Assigned(agency_id=agency.id, agency_name=agency.name, agency_number=agency.callback_number)

    @activity.defn(name=VISIT_UPDATE)
    def update_visit(self, change: VisitUpdate) -> None:
        fields = {
            "status": change.status,
            "outcome": change.outcome.value if change.outcome else None,
            "recording_ref": change.recording_ref,
            "notes": change.notes,
            "cancel_reason": change.cancel_reason,
            "window_start": change.window_start,
            "window_end": change.window_end,
            "report_due": change.report_due,
            "reschedules": change.reschedules,
        }
        with self.deps.sessions.begin() as s:
            agencies.update_visit(s, change.visit_id, change.at, **fields)
            audit(
                s,
                at=change.at,
                clock="policy",
                account_id=change.account_id,
                actor=change.actor,
                action=change.action,
                decision=change.action,
                rule=change.rule,
                details={"visit": change.visit_id, "detail": change.detail},
            )

    @activity.defn(name=PLACE_ACCOUNT)
    def place_account(self, req: PlaceRequest) -> Placed:
        """Place a charged-off account with the agency that has room in its region (once per placement id)."""
        book = load_agencies(self.deps.settings.agencies_file)
        with self.deps.sessions.begin() as s:
            existing = agencies.placement(s, req.placement_id)
            if existing is None:
                _, placed = agencies.agency_load(s)
                choice = pick(
                    book,
                    Work.PLACEMENT,
                    region=req.region,
                    country=req.country,
                    load=placed,
                    on=req.at.date(),
                    exclude=set(req.exclude),
                )
                agency = choice.agency
                if agency is None or choice.refused:  # a retry writes the identical line: kept once
                    audit(
                        s,
                        at=req.at,
                        clock="policy",
                        account_id=req.account_id,
                        actor="workflow",
                        action="placement_assigned" if agency else "placement_unassigned",
                        decision="placement_assigned" if agency else "placement_unassigned",
                        rule=choice.rule,
                        details={
                            "placement": req.placement_id,
                            "agency": agency.id if agency else None,
                            "refused": choice.refused,
                        },
                    )
                if agency is None:
                    return Placed(agency_id=None, rule=choice.rule)
                agencies.create_placement(
                    s,
                    placement_id=req.placement_id,
                    account_id=req.account_id,
                    agency_id=agency.id,
                    currency=req.currency,
                    balance_minor=req.balance,
                    now=req.at,
                )
                agency_id = agency.id
            else:
                agency_id = existing.agency_id
        agency = book.get(agency_id)
        return Placed(
            agency_id=agency_id,
            agency_name=agency.name if agency else agency_id,
            agency_number=agency.callback_number if agency else "",
        )

    @activity.defn(name=END_PLACEMENT)
    def end_placement(self, req: EndPlacement) -> None:
        with self.deps.sessions.begin() as s:
            agencies.end_placement(s, req.placement_id, req.status, req.reason, req.at)
