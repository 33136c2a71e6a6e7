"""The debtor behaviour model (lab/debtors.py): seeded, documented, and what its file says.

The lab and the demo's debtors both ask it; these tests pin what both rely on: the same question gets
the same answer, the shares of answers over many debtors are the file's probabilities (within
sampling error), lateness and the hour change them as documented, and a file that cannot be meant is
refused naming the field.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from domain.accounts import Channel, ContactOutcome
from lab.debtors import DEFAULT_FILE, Reaction, load_model, reach_of

MODEL = load_model()
N = 20_000


def shares(reach: str, hour: int, dpd: int, segment: str, n: int = N) -> Counter[Reaction]:
    return Counter(MODEL.respond(f"ACC-{i}", 1, reach, hour, dpd, segment).reaction for i in range(n))  # type: ignore[arg-type]


def within_sampling_error(seen: int, p: float, n: int = N) -> bool:
    return abs(seen / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_the_same_contact_gets_the_same_answer_and_others_are_independent() -> None:
    first = [MODEL.respond("ACC-7", k, "sms", 10, 20, "US") for k in range(1, 200)]
    again = [load_model().respond("ACC-7", k, "sms", 10, 20, "US") for k in range(1, 200)]
    assert first == again
    assert len({r.reaction for r in first}) > 2  # the n-th contact is its own draw


@pytest.mark.parametrize(("segment", "dpd", "band"), [("US", 20, 0), ("UK", 60, 1), ("CN", 150, 2)])
def test_the_shares_of_answers_are_the_files_probabilities(segment: str, dpd: int, band: int) -> None:
    seg, lateness = MODEL.segments[segment], MODEL.lateness[band]
    engage = MODEL.engage_p("sms", 10)
    got = shares("sms", 10, dpd, segment)
    expected = {
        Reaction.PAY_FULL: seg.pay_full * lateness.pay,
        Reaction.PAY_PART: seg.pay_part * lateness.pay,
        Reaction.PLAN: seg.plan * lateness.plan,
        Reaction.STOP: seg.stop * lateness.stop,
        Reaction.COMPLAIN: seg.complain * lateness.complain,
    }
    for reaction, p in expected.items():
        assert within_sampling_error(got[reaction], engage * p), (reaction, got[reaction] / N, engage * p)


def test_late_debtors_pay_less_and_complain_more_and_the_evening_answers_more_than_the_afternoon() -> None:
    early, late = shares("voice", 10, 10, "US"), shares("voice", 10, 150, "US")
    paid = (Reaction.PAY_FULL, Reaction.PAY_PART)
    assert sum(late[r] for r in paid) < sum(early[r] for r in paid) / 2
    assert late[Reaction.COMPLAIN] > early[Reaction.COMPLAIN]
    afternoon, evening = shares("sms", 14, 10, "US"), shares("sms", 19, 10, "US")
    assert evening[Reaction.NOTHING] < afternoon[Reaction.NOTHING]


def test_a_part_payment_is_a_part_and_a_plan_has_the_files_lengths() -> None:
    answers = [MODEL.respond(f"A{i}", 1, "voice", 19, 10, "UK") for i in range(N)]
    parts = [a.share for a in answers if a.reaction == Reaction.PAY_PART]
    lo, hi = MODEL.segments["UK"].pay_part_share
    assert parts and all(lo <= s <= hi for s in parts)
    periods = Counter(a.periods for a in answers if a.reaction == Reaction.PLAN)
    assert set(periods) == set(MODEL.segments["UK"].plan_periods)


def test_plans_are_kept_at_the_files_rate() -> None:
    kept = sum(MODEL.keeps(f"A{i}", 1, 1, "CN") for i in range(N))
    assert within_sampling_error(kept, MODEL.segments["CN"].keep)


def test_only_a_delivered_text_a_conversation_or_a_voicemail_reaches_the_debtor() -> None:
    assert reach_of(Channel.SMS, ContactOutcome.DELIVERED) == "sms"
    assert reach_of(Channel.VOICE, ContactOutcome.CONVERSATION) == "voice"
    assert reach_of(Channel.VOICE, ContactOutcome.VOICEMAIL) == "voicemail"
    for channel, outcome in [
        (Channel.SMS, ContactOutcome.UNDELIVERABLE),
        (Channel.SMS, ContactOutcome.OPTED_OUT),
        (Channel.VOICE, ContactOutcome.NO_ANSWER),
        (Channel.VOICE, ContactOutcome.SILENT),
        (Channel.VOICE, ContactOutcome.BUSY),
    ]:
        assert reach_of(channel, outcome) is None
    never = load_model()
    assert never.respond("X", 1, "sms", 10, 10, "XX").reaction == Reaction.NOTHING  # no such segment


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (("pay_full = 0.10", "pay_full = 0.9"), "segments.US"),
        (("hours = [8, 12]", "hours = [12, 8]"), "engage.0"),
        (("keep = 0.85", "keep = 1.5"), "segments.US.keep"),
        (("plan_periods = [3, 4, 6]", "plan_periods = [1]"), "segments.US"),
        (("until = 90", "until = 10"), "lateness"),
        (("seed = 17", "seed = 'x'"), "seed"),
    ],
)
def test_a_file_that_cannot_be_meant_is_refused_naming_the_field(
    tmp_path: Path, change: tuple[str, str], names: str
) -> None:
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "model.toml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ValueError, match=names.replace(".", r"\.")):
        load_model(path)
