"""Which texts may reach a third party (the debtor's emergency contact), and that they cannot disclose."""

from __future__ import annotations

import pytest

from domain.accounts import Channel
from domain.gate import Audience, Purpose
from domain.templates import (
    LANGUAGES,
    THIRD_PARTY_PLACEHOLDERS,
    forbidden_in,
    load_pack,
    parse_pack,
    placeholders,
    render,
    template_names,
    third_party_safe,
)

PACK = """language = "en"
opt_out = "Reply STOP to opt out."
identify = "This is {company}"
"""
CONTEXT = {
    "company": "Acme Finance",
    "agent_name": "Sam Taylor",
    "callback_number": "+15005550006",
    "name": "Jane",
    "amount": "USD 1,234.56",
    "due_date": "2026-10-01",
    "self_service_url": "https://pay.example/acc",
}


def test_only_the_locate_text_is_marked_for_third_parties() -> None:
    marked = {t for t in template_names("en") if third_party_safe(t)}
    assert marked == {"third_party_locate"}
    assert not third_party_safe("no_such_template")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE])
def test_the_locate_text_names_nobody_but_the_debtor_and_no_debt(language: str, channel: Channel) -> None:
    spec = load_pack(language).templates["third_party_locate"]
    text = spec.text(channel)
    assert text is not None
    assert set(placeholders(text)) <= THIRD_PARTY_PLACEHOLDERS
    out = render(
        "third_party_locate",
        language,
        purpose=Purpose.DUNNING,
        channel=channel,
        context=CONTEXT,
        audience=Audience.THIRD_PARTY,
    )
    assert forbidden_in(out.text) == []
    assert "1,234.56" not in out.text and "Jane" in out.text


def test_a_debtors_text_cannot_be_rendered_for_a_third_party() -> None:
    with pytest.raises(ValueError, match="'early_reminder' is not marked for a third party"):
        render(
            "early_reminder",
            "en",
            purpose=Purpose.DUNNING,
            channel=Channel.SMS,
            context=CONTEXT,
            audience=Audience.THIRD_PARTY,
        )


def test_a_context_value_cannot_smuggle_the_debt_to_a_third_party() -> None:
    with pytest.raises(ValueError, match="may not say"):
        render(
            "third_party_locate",
            "en",
            purpose=Purpose.DUNNING,
            channel=Channel.SMS,
            context={**CONTEXT, "company": "Acme Debt Collection"},
            audience=Audience.THIRD_PARTY,
        )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (  # any template marked for third parties is held to the limited-content rules
            '[templates.ask]\npurposes = ["dunning"]\naudience = ["third_party"]\nsms = "{company}: {amount}"\n',
            ["templates.ask.sms", "may not use amount"],
        ),
        (
            '[templates.ask]\npurposes = ["dunning"]\naudience = ["third_party"]\n'
            'sms = "{company}: please ask {name} to pay us"\n',
            ["templates.ask.sms", "may not say pay"],
        ),
        (
            '[templates.ask]\npurposes = ["dunning"]\naudience = ["third_party"]\nsms = "{company}: {self_service_url}"\n',
            ["may not use self_service_url"],
        ),
        (
            '[templates.ask]\npurposes = ["receipt"]\naudience = ["third_party"]\nsms = "{company}: hello"\n',
            ["templates.ask.purposes", "dunning only"],
        ),
        (
            '[templates.ask]\npurposes = ["dunning"]\naudience = ["neighbour"]\nsms = "Hi"\n',
            ["templates.ask.audience"],
        ),
    ],
)
def test_a_pack_that_would_let_a_third_party_learn_of_the_debt_fails_at_load(
    body: str, words: list[str]
) -> None:
    with pytest.raises(ValueError) as err:
        parse_pack(PACK + body, source="policies/templates/en.toml")
    message = str(err.value)
    assert message.startswith("policies/templates/en.toml: ")
    for word in words:
        assert word in message, (word, message)
