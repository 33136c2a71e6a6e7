"""Message texts: every template in every language obeys the rules, with long, realistic values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import Channel
from domain.gate import Purpose
from domain.policy import load_policy
from domain.profiles import PROFILE_DIR, load_profile
from domain.templates import (
    LANGUAGES,
    MAX_QUOTED_CHARS,
    MAX_SMS_CHARS,
    Rendered,
    load_pack,
    parse_pack,
    render,
    template_names,
)

REQUIRED = {
    # what the default policy's cadence sends
    "courtesy_reminder", "early_reminder", "early_voice", "plan_offer", "agent_call", "settlement_offer",
    # what workflows and the inbound handlers send
    "payment_receipt", "plan_confirmation", "plan_reminder", "plan_completed", "plan_broken",
    "opt_out_confirmation", "opt_in_confirmation", "help_reply", "complaint_ack", "dispute_ack", "voicemail_limited",
    "third_party_locate",
    # the notices before credit reporting (issue 15), named by the profiles' [credit_reporting]
    "credit_report_notice", "credit_default_notice",
}  # fmt: skip
#: The answers to the debtor's own requests (issue 14: workflows/notices.py), all acknowledgements.
ANSWERS = {
    "complaint_ack_due", "complaint_ack_case", "dispute_ack_case", "complaint_upheld", "complaint_rejected",
    "complaint_closed", "complaint_decision", "dispute_findings", "complaint_upheld_no_route",
    "complaint_rejected_no_route", "complaint_closed_no_route", "complaint_decision_no_route",
    "dispute_findings_no_route", "plan_request_declined", "plan_request_escalated", "plan_request_lapsed",
    "plan_request_closed",
}  # fmt: skip
REQUIRED |= ANSWERS

#: The shipped profiles' complaint routes (``[complaint_channel]``), which the decision texts quote.
ROUTES = [load_profile(path.stem).complaint_channel for path in sorted(PROFILE_DIR.glob("*.toml"))]


def longest_route(language: str) -> dict[str, str]:
    """The longest authority and contact any shipped profile gives in ``language``: a decision text
    must fit one SMS with the longest of each."""
    routes = [r for r in ROUTES if r is not None]
    return {
        "authority": max((r.authority_in(language) for r in routes), key=len),
        "contact": max((r.contact for r in routes), key=len),
    }


#: The shipped profiles' credit reporting (issue 15): the notices name the longest bureau.
REPORTING = [load_profile(path.stem).credit_reporting for path in sorted(PROFILE_DIR.glob("*.toml"))]


def longest_bureau(language: str) -> str:
    return max((r.bureau_in(language) for r in REPORTING if r is not None), key=len)


#: Issue 14's answers at their longest: the longest case number and reason the messages accept.
NOTICES = {
    "case": "C-" + "9" * 22,  # CASE_ID_PATTERN: at most 24 characters
    "decide_by": "2026-12-06",
    "answer_by": "2026-12-08",
    "report_date": "2026-12-14",  # issue 15: the earliest day the account may be reported
}

LONG = {
    "en": {
        "company": "Northwind Consumer Finance Ltd",
        "amount": "USD 123,456.78",
        "due_date": "2026-11-22",
        "grace_until": "2026-11-25",  # the grace period's last day (issue 15)
        "stage": "middle",
        "self_service_url": "https://pay.northwind-consumer-finance.example.com/me/AB12CD34EF",
        "agent_name": "Alexandra Montgomery-Smith",
        "callback_number": "+1 (800) 555-0199",
        "name": "Christopher",
        # field visits and placement (issue 7)
        "agency_name": "National Recovery Partners of America",
        "agency_number": "+1 (800) 555-0123",
        "visit_date": "2026-12-01",
        "visit_window": "10:00-13:00",
        # the agreement in writing (issue 13)
        "total": "USD 1,234,567.89",
        "count": "60",
        # a receipt for a payment made from the page (issue 13)
        "paid": "USD 123,456.78",
        "balance": "USD 1,234,567.89",
        # answers to the debtor's requests (issue 14)
        **NOTICES,
        "reason": ("we need proof of your income before we can agree payments this low. " * 2)[
            :MAX_QUOTED_CHARS
        ],
        **longest_route("en"),
        "bureau": longest_bureau("en"),
    },
    "zh-CN": {
        "company": "北风消费金融股份有限公司",
        "amount": "CNY 123,456.78",
        "due_date": "2026-11-22",
        "grace_until": "2026-11-25",  # the grace period's last day (issue 15)
        "stage": "middle",
        "self_service_url": "https://pay.northwind-consumer-finance.example.com/me/AB12CD34EF",
        "agent_name": "欧阳晓明",
        "callback_number": "+86 400-800-8888",
        "name": "欧阳建国",
        # 外访与委外（第7项）
        "agency_name": "华东外访服务有限公司",
        "agency_number": "+86 21-5555-0100",
        "total": "CNY 1,234,567.89",
        "count": "60",
        "paid": "CNY 123,456.78",
        "balance": "CNY 1,234,567.89",
        "visit_date": "2026-12-01",
        "visit_window": "10:00-13:00",
        **NOTICES,
        "reason": ("我们需要您先提供收入证明，才能同意这么低的月还款额。" * 4)[:MAX_QUOTED_CHARS],
        **longest_route("zh-CN"),
        "bureau": longest_bureau("zh-CN"),
    },
}
OPT_OUT = {"en": "Reply STOP to opt out.", "zh-CN": "回复TD退订"}
IDENTIFY = {"en": "This is {company}", "zh-CN": "这里是{company}"}

# The test's own list (not the module's): words that would tell a third party there is a debt.
FORBIDDEN = re.compile(
    r"\b(debts?|debtor|owes?|owed|owing|overdue|past[- ]due|arrears|collect\w*|payments?|pay|paid|repay\w*|"
    r"balances?|amounts?|loans?|bills?|instal+ments?|default\w*)\b|欠|债|逾期|催|还款|金额|余额|贷款|借款|账单|付款|分期",
    re.IGNORECASE,
)
MONEY = re.compile(r"[$€£¥￥]|\b(USD|CNY|RMB|GBP|EUR)\b|\d+[.,]\d\d(?!\d)|\d\s*(元|块)")


def every(channel: Channel | None = None) -> list[tuple[str, str, Channel]]:
    out = []
    for language in LANGUAGES:
        pack = load_pack(language)
        for name in sorted(pack.templates):
            for ch in Channel:
                if pack.templates[name].text(ch) is not None and channel in (None, ch):
                    out.append((language, name, ch))
    return out


def purpose_of(language: str, template: str) -> Purpose:
    return load_pack(language).templates[template].purposes[0]


def rendered(language: str, template: str, channel: Channel, **extra: str) -> Rendered:
    return render(
        template,
        language,
        purpose=purpose_of(language, template),
        channel=channel,
        context={**LONG[language], **extra},
    )


# ---- coverage ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_needed_template_exists_in_every_language(language: str) -> None:
    assert set(template_names(language)) >= REQUIRED
    assert template_names(language) == template_names("en")


def test_the_cadence_of_the_default_policy_finds_its_templates_on_its_channels() -> None:
    for rule in load_policy().cadence:
        for language in LANGUAGES:
            r = render(
                rule.template, language, purpose=Purpose.DUNNING, channel=rule.channel, context=LONG[language]
            )
            assert r.text and r.channel == rule.channel


@pytest.mark.parametrize(
    ("template", "purpose"),
    [
        ("payment_receipt", Purpose.RECEIPT),
        ("plan_completed", Purpose.RECEIPT),
        ("plan_reminder", Purpose.PLAN_REMINDER),
        ("opt_out_confirmation", Purpose.OPT_OUT_CONFIRMATION),
        ("opt_in_confirmation", Purpose.ACKNOWLEDGEMENT),
        ("complaint_ack", Purpose.ACKNOWLEDGEMENT),
        ("dispute_ack", Purpose.ACKNOWLEDGEMENT),
        ("help_reply", Purpose.ACKNOWLEDGEMENT),
        ("plan_confirmation", Purpose.RECEIPT),
        *((name, Purpose.ACKNOWLEDGEMENT) for name in sorted(ANSWERS)),
    ],
)
def test_templates_go_with_the_purpose_the_workflows_send_them_for(template: str, purpose: Purpose) -> None:
    for language in LANGUAGES:
        render(template, language, purpose=purpose, channel=Channel.SMS, context=LONG[language])
    with pytest.raises(ValueError, match=f"template {template!r} is for"):
        render(template, "en", purpose=Purpose.DUNNING, channel=Channel.SMS, context=LONG["en"])


# ---- SMS rules ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("language", "template", "channel"), every(Channel.SMS))
def test_every_sms_ends_with_the_opt_out_and_fits_in_320_characters(
    language: str, template: str, channel: Channel
) -> None:
    r = rendered(language, template, channel)
    assert len(r.text) <= MAX_SMS_CHARS, (len(r.text), r.text)
    assert r.segments >= 1 and r.encoding in ("GSM-7", "UCS-2")
    if template == "opt_out_confirmation":
        assert OPT_OUT[language] not in r.text  # they already opted out: no "reply STOP" again
    else:
        assert r.text.endswith(OPT_OUT[language]), r.text
        assert r.text.count(OPT_OUT[language]) == 1
    assert "{" not in r.text and "}" not in r.text
    if LONG[language]["self_service_url"] in r.text:  # a link is never glued to the words after it
        after = r.text.split(LONG[language]["self_service_url"], 1)[1]
        assert after == "" or after[0] in " .,"


def test_english_texts_stay_in_the_gsm_alphabet_and_chinese_ones_are_ucs2() -> None:
    assert rendered("en", "early_reminder", Channel.SMS).encoding == "GSM-7"
    assert rendered("zh-CN", "early_reminder", Channel.SMS).encoding == "UCS-2"


def test_an_sms_that_would_be_too_long_is_refused_not_sent() -> None:
    with pytest.raises(ValueError, match=f"more than the {MAX_SMS_CHARS}"):
        rendered("en", "early_reminder", Channel.SMS, self_service_url="https://example.com/" + "x" * 300)


# ---- voice rules -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("language", "template", "channel"), every(Channel.VOICE))
def test_every_call_begins_by_identifying_the_company(language: str, template: str, channel: Channel) -> None:
    r = rendered(language, template, channel)
    company = LONG[language]["company"]
    assert r.text.startswith(IDENTIFY[language].format(company=company)), r.text
    first_sentence = re.split(r"[.。!?！？]", r.text, maxsplit=1)[0]
    assert company in first_sentence


def test_a_debtors_name_is_only_ever_spoken_after_the_call_identifies_itself() -> None:
    for language, template, channel in every(Channel.VOICE):
        r = rendered(language, template, channel)
        name = LONG[language]["name"]
        if name in r.text:
            assert r.text.index(name) > r.text.index(LONG[language]["company"])


# ---- limited content ---------------------------------------------------------------------------------
LIMITED = [
    (lang, name, ch) for lang, name, ch in every() if name in ("voicemail_limited", "third_party_locate")
]


@pytest.mark.parametrize(("language", "template", "channel"), LIMITED)
def test_limited_messages_say_nothing_about_a_debt(language: str, template: str, channel: Channel) -> None:
    r = rendered(language, template, channel)
    body = r.text.removesuffix(OPT_OUT[language])
    assert not FORBIDDEN.search(body), FORBIDDEN.search(body)
    assert not MONEY.search(body), MONEY.search(body)
    for key in ("amount", "due_date", "self_service_url", "stage"):
        assert LONG[language][key] not in r.text  # even when the context offers them


@pytest.mark.parametrize("language", LANGUAGES)
def test_voicemail_is_business_name_request_to_reply_person_and_number_only(language: str) -> None:
    r = rendered(language, "voicemail_limited", Channel.VOICE)
    ctx = LONG[language]
    assert ctx["company"] in r.text and ctx["agent_name"] in r.text and ctx["callback_number"] in r.text
    assert ctx["name"] not in r.text  # not even the debtor's name: anyone may play the voicemail
    rest = r.text
    for key in ("company", "agent_name", "callback_number"):
        rest = rest.replace(ctx[key], "")
    assert len(rest) < 60, rest  # the glue words only: "This is . My name is . Please call me back at ."
    with pytest.raises(ValueError, match="no sms text"):
        render("voicemail_limited", language, purpose=Purpose.DUNNING, channel=Channel.SMS, context=ctx)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("company", "Acme Debt Collection Services"),
        ("company", "Acme Loans"),
        ("company", "催收服务有限公司"),
        ("agent_name", "USD 100.00"),
        ("agent_name", "¥500"),
        ("name", "Sam (owes 300元)"),
    ],
)
def test_a_context_value_cannot_smuggle_the_debt_into_a_limited_message(key: str, value: str) -> None:
    for template, channel in (("voicemail_limited", Channel.VOICE), ("third_party_locate", Channel.SMS)):
        if key == "name" and template == "voicemail_limited":
            continue
        with pytest.raises(ValueError, match="limited-content message may not say"):
            rendered("en", template, channel, **{key: value})
    # a company called "... Collection ..." may still send its ordinary dunning texts to the debtor
    if key == "company":
        rendered("en", "early_reminder", Channel.SMS, company=value)


# ---- errors ------------------------------------------------------------------------------------------
def test_unknown_template_language_channel_or_purpose_is_a_clear_value_error() -> None:
    ctx = LONG["en"]
    with pytest.raises(ValueError, match=r"unknown template 'early_remindr'.*early_reminder"):
        render("early_remindr", "en", purpose=Purpose.DUNNING, channel=Channel.SMS, context=ctx)
    with pytest.raises(ValueError, match=r"unknown language 'fr'.*en, zh-CN"):
        render("early_reminder", "fr", purpose=Purpose.DUNNING, channel=Channel.SMS, context=ctx)
    with pytest.raises(ValueError, match="fax"):
        render("early_reminder", "en", purpose=Purpose.DUNNING, channel="fax", context=ctx)
    with pytest.raises(ValueError, match="no voice text"):
        render("early_reminder", "en", purpose=Purpose.DUNNING, channel=Channel.VOICE, context=ctx)


@pytest.mark.parametrize("key", ["amount", "due_date", "self_service_url", "company"])
def test_a_missing_or_blank_context_key_is_named(key: str) -> None:
    ctx = {k: v for k, v in LONG["en"].items() if k != key}
    with pytest.raises(ValueError, match=rf"missing context key\(s\): {key}$"):
        render("courtesy_reminder", "en", purpose=Purpose.DUNNING, channel=Channel.SMS, context=ctx)
    with pytest.raises(ValueError, match=rf"missing context key\(s\): {key}$"):
        render("courtesy_reminder", "en", purpose="dunning", channel="sms", context={**ctx, key: "  "})


def test_context_values_are_text_not_template() -> None:
    r = rendered("en", "plan_reminder", Channel.SMS, amount="{company}\nUSD 5.00", unused="ignored")
    assert "USD 5.00" in r.text and "{company}" in r.text and "\n" not in r.text


def test_the_workflows_contexts_render() -> None:
    """What activities/contact_text.py builds: settings, snapshot fields, then the workflow's own keys."""
    base = {
        "company": "Acme Finance",
        "callback_number": "+15005550006",
        "agent_name": "Sam Taylor",
        "self_service_url": "http://localhost:8000/me",
        "name": "Jane",
        "due_date": "2026-11-22",
        "stage": "",
        "amount": "USD 0.00",
    }
    render(
        "payment_receipt",
        "en",
        purpose=Purpose.RECEIPT,
        channel=Channel.SMS,
        context={**base, "paid": "52500"},
    )
    plan = {**base, "amount": "USD 125.00", "due_date": "2026-12-01", "seq": "2"}
    r = render("plan_reminder", "zh-CN", purpose=Purpose.PLAN_REMINDER, channel="sms", context=plan)
    assert "USD 125.00" in r.text and "2026-12-01" in r.text


# ---- the pack's own rules, checked when a file loads ---------------------------------------------------
PACK = """language = "en"
opt_out = "Reply STOP to opt out."
identify = "This is {company}"
"""


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            '[templates.x]\npurposes = ["dunning"]\nvoice = "Hello, {company} here."\n',
            ["templates.x.voice", "begin with"],
        ),
        (
            '[templates.x]\npurposes = ["dunning"]\nsms = "Hi. Reply STOP to opt out."\n',
            ["templates.x.sms", "appended"],
        ),
        (
            '[templates.voicemail_limited]\npurposes = ["dunning"]\nvoice = "This is {company}. {amount}"\n',
            ["may not use amount"],
        ),
        (
            '[templates.third_party_locate]\npurposes = ["dunning"]\nsms = "About the debt of {name}."\n',
            ["may not say debt"],
        ),
        ('[templates.x]\npurposes = ["dunning"]\nsms = "{amount:>10}"\n', ["plain name"]),
        ('[templates.x]\npurposes = ["marketing"]\nsms = "Hi"\n', ["templates.x.purposes.0"]),
        ('[templates.x]\npurposes = ["dunning"]\n', ["templates.x", "sms or a voice"]),
        ('[templates.x]\npurposes = ["dunning"]\nemail = "Hi"\n', ["templates.x.email"]),
    ],
)
def test_a_bad_language_pack_fails_at_load_naming_file_and_field(body: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        parse_pack(PACK + body, source="policies/templates/en.toml")
    message = str(err.value)
    assert message.startswith("policies/templates/en.toml: ")
    for word in words:
        assert word in message, (word, message)


# ---- random values -------------------------------------------------------------------------------------
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from(every()), st.dictionaries(st.sampled_from(sorted(LONG["en"])), values))
def test_any_context_either_renders_within_the_rules_or_is_refused_with_a_value_error(
    case: tuple[str, str, Channel], noise: dict[str, str]
) -> None:
    language, template, channel = case
    ctx = {**LONG[language], **noise}
    try:
        r = render(template, language, purpose=purpose_of(language, template), channel=channel, context=ctx)
    except ValueError:
        return
    if channel == Channel.SMS:
        assert len(r.text) <= MAX_SMS_CHARS
        assert template == "opt_out_confirmation" or r.text.endswith(OPT_OUT[language])
    else:
        company = " ".join(ctx["company"].split())
        assert r.text.startswith(IDENTIFY[language].format(company=company))
    if template in ("voicemail_limited", "third_party_locate"):
        body = r.text.removesuffix(OPT_OUT[language])
        assert not FORBIDDEN.search(body) and not MONEY.search(body), body
