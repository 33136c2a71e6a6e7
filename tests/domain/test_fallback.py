"""The substitute for a step a channel cannot carry must say something true for the account's stage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.accounts import Carried, Channel, Product
from domain.cadence import Step, expand, fallback_step
from domain.clock import PolicyClock
from domain.policy import load_policy

POLICY = load_policy()
PRE_DUE_TEMPLATES = {"courtesy_reminder"}


def carried(**fields: object) -> Carried:
    return Carried(clock=PolicyClock(epoch=datetime(2026, 1, 1, tzinfo=UTC)), balance=10_000, **fields)


@pytest.mark.parametrize("product", list(Product))
def test_every_voice_step_falls_back_to_a_text_of_its_own_stage(product: Product) -> None:
    """Each voice step of the default policy, with voice paused by the governor: the SMS instead is
    one the policy sends in the same stage, never the pre-due courtesy reminder once past due."""
    voice = [
        s for s in expand(POLICY) if s.channel == Channel.VOICE and s.dpd < POLICY.chargeoff_for(product)
    ]
    assert voice, "the default policy has voice steps"
    for step in voice:
        alt = fallback_step(POLICY, product, Channel.VOICE, carried(), step)
        assert alt is not None, step
        assert alt.channel == Channel.SMS
        assert alt.key == f"{step.key}>fallback:sms"
        assert alt.template not in PRE_DUE_TEMPLATES, (step, alt)
        sms_days = [
            d
            for rule in POLICY.cadence
            if rule.template == alt.template and rule.channel == Channel.SMS
            for d in rule.days()
        ]
        stages = {POLICY.stage_for(d, product) for d in sms_days}
        assert POLICY.stage_for(step.dpd, product) in stages, (step, alt)


def test_the_early_voice_reminder_falls_back_to_the_early_text() -> None:
    step = Step(key="5:voice:early_voice", dpd=5, channel=Channel.VOICE, template="early_voice")
    alt = fallback_step(POLICY, Product.CREDIT_LINE, Channel.VOICE, carried(), step)
    assert alt is not None and alt.template == "early_reminder"


def test_no_fallback_once_spent_or_when_texts_are_unusable() -> None:
    step = Step(key="5:voice:early_voice", dpd=5, channel=Channel.VOICE, template="early_voice")
    spent = carried(done_steps=["5:voice:early_voice>fallback:sms"])
    assert fallback_step(POLICY, Product.CREDIT_LINE, Channel.VOICE, spent, step) is None
    opted = carried(opted_out=[Channel.SMS])
    assert fallback_step(POLICY, Product.CREDIT_LINE, Channel.VOICE, opted, step) is None


def test_a_stage_without_a_text_has_no_fallback() -> None:
    """A policy that texts only before the due date: a past-due voice step gets no substitute."""
    lean = POLICY.model_copy(
        update={
            "cadence": [
                r for r in POLICY.cadence if r.channel == Channel.VOICE or r.template in PRE_DUE_TEMPLATES
            ]
        }
    )
    step = Step(key="5:voice:early_voice", dpd=5, channel=Channel.VOICE, template="early_voice")
    assert fallback_step(lean, Product.CREDIT_LINE, Channel.VOICE, carried(), step) is None
