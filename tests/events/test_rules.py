"""The pure rules: which changes can mean an event, the line's freeze and restore, the retry waits."""

from __future__ import annotations

import random

import pytest

from domain.accounts import Channel, Hold, HoldKind, Mode, Stage
from domain.lender_events import Before, EventType, change_key, draft_events, may_publish, retry_delay
from runtime.settings import Settings
from store.models import EVENT_TYPES
from tests.events.conftest import NOW, change

USD = Before(currency="USD", mode="dunning")


def kinds(drafts: list) -> list[str]:  # type: ignore[type-arg]
    return [d.type.value for d in drafts]


def test_the_database_allows_exactly_the_event_types_the_rules_draft() -> None:
    assert set(EVENT_TYPES) == {t.value for t in EventType}


def test_progress_and_contact_writes_mean_nothing_to_the_lender() -> None:
    """Most writes (a balance, a contact's outcome, an audit line) are not even read for events."""
    assert not may_publish(change("A", balance=100, paid_total=5))
    assert not may_publish(
        change("A", channel_status=(Channel.SMS, "unreachable"), decision="channel_unreachable")
    )
    assert not may_publish(change("A", stage=Stage.PRE_DUE, dpd=-3, decision="stage"))
    assert not may_publish(change("A", decision="visit_arranged"))
    assert may_publish(change("A", stage=Stage.EARLY, dpd=1))


@pytest.mark.parametrize("stage", [Stage.EARLY, Stage.MIDDLE, Stage.LATE, Stage.CHARGED_OFF])
def test_the_line_freezes_at_the_first_dunning_stage_only(stage: Stage) -> None:
    assert kinds(draft_events(change("A", stage=stage, dpd=1), USD)) == ["line_frozen"]
    frozen = USD.model_copy(update={"line_frozen": True})
    assert draft_events(change("A", stage=stage, dpd=1), frozen) == []


def test_the_line_is_restored_only_when_frozen_and_only_by_paying_settling_or_completing() -> None:
    frozen = USD.model_copy(update={"line_frozen": True})
    paid = change("A", mode=Mode.CLOSED, close_reason="paid", balance=0)
    assert kinds(draft_events(paid, frozen)) == ["closed", "line_restored"]
    assert kinds(draft_events(paid, USD)) == ["closed"]  # paid before it was ever frozen
    for reason in ("written_off", "complaint_upheld", "deceased", "bankrupt"):
        closed = change("A", mode=Mode.CLOSED, close_reason=reason, balance=500)
        assert kinds(draft_events(closed, frozen)) == ["closed"], reason
    # paid after a charge-off: a new close (paid), and the line comes back
    charged = frozen.model_copy(update={"mode": "closed", "close_reason": "charged_off"})
    assert kinds(draft_events(paid, charged)) == ["closed", "line_restored"]
    # the same close again (no change_key to catch it): nothing
    closed_paid = frozen.model_copy(update={"mode": "closed", "close_reason": "paid"})
    assert draft_events(paid, closed_paid) == []


def test_holds_are_told_when_they_change_not_when_asked_again() -> None:
    pause = Hold(kind=HoldKind.PAUSE, reason="typed by an agent", since=NOW)
    on = USD.model_copy(update={"active_holds": frozenset({("pause", None)})})
    assert kinds(draft_events(change("A", hold_added=pause), USD)) == ["hold_added"]
    assert draft_events(change("A", hold_added=pause), on) == []
    resume = change("A", hold_lifted=HoldKind.PAUSE, holds_lifted=[HoldKind.PAUSE, HoldKind.NEGOTIATION])
    assert [d.data for d in draft_events(resume, on)] == [{"kind": "pause"}]
    assert draft_events(resume, USD) == []
    cease_sms = Hold(kind=HoldKind.CEASE, reason="", since=NOW, channel=Channel.SMS)
    [added] = draft_events(change("A", hold_added=cease_sms), on)
    assert added.data == {"kind": "cease", "channel": "sms", "until": None}


def test_a_change_keeps_its_key_when_written_again_after_a_failed_send() -> None:
    one = change("A", stage=Stage.EARLY, dpd=1, decision="stage")
    assert change_key(one) == change_key(one.model_copy(update={"unless_sent": "A/step-3"}))
    assert change_key(one) != change_key(one.model_copy(update={"dpd": 2}))


def test_retry_waits_double_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for failures in range(1, 30):
        ceiling = min(21_600, 5 * 2 ** (failures - 1))
        for _ in range(20):
            wait = retry_delay(failures, base=5, cap=21_600, rand=rng.random)
            assert ceiling / 2 <= wait <= ceiling
    assert retry_delay(1, base=5, cap=60, rand=lambda: 0.0) == 2.5
    assert retry_delay(3, base=5, cap=60, rand=lambda: 1.0) == 20
    assert retry_delay(10, base=5, cap=60, rand=lambda: 1.0) == 60
    # the default settings keep trying for about a day before a dead letter (the README says so)
    d = Settings(_env_file=None)  # type: ignore[call-arg]
    waits = [
        retry_delay(n, base=d.events_backoff_seconds, cap=d.events_backoff_max_seconds, rand=lambda: 1.0)
        for n in range(1, d.events_max_attempts)
    ]
    assert 20 * 3600 < sum(waits) < 26 * 3600
