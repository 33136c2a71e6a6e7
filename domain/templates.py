"""Message texts: what an SMS says and what a call speaks, per template name and language.

Texts live in ``policies/templates/<language>.toml`` so they can be translated and reworded without
code changes; the rules a text must obey live here, in code, so no edit of a text file can break
them. They are checked when a language pack loads (so a bad file fails at start-up, not at 21:00 on
a Friday) and again on every render (so a context value such as a company name cannot sneak a
forbidden word in):

- every SMS ends with the language's opt-out instruction, appended by :func:`render` (the one
  exception is the opt-out confirmation, sent because the debtor already opted out: telling them
  how to opt out again would read as if the first STOP had not worked);
- an SMS is at most :data:`MAX_SMS_CHARS` characters (more costs segments and reads as a letter);
- a voice script's first words identify the company, so a callee never hears silence or anything
  before knowing who is calling (Ofcom/FCC: identify at once);
- the limited-content voicemail (Reg F 12 CFR 1006.2(j)) and the third-party locate message carry
  only their allowed placeholders, and no word about debt, payment or money, nor any money figure,
  because a voicemail or an emergency contact must not learn that the debtor owes anything;
- a template may go to a third party (the debtor's emergency contact) only if it says so
  (``audience = ["third_party"]``) in every language, and such a template is held to the same
  limited-content rules: only :data:`THIRD_PARTY_PLACEHOLDERS`, no debt word, no figure. The
  contact gate asks :func:`third_party_safe` before anything goes to a third party.

:func:`render` is pure (the packs are read once and cached), so it may run in an activity or a
workflow alike.
"""

from __future__ import annotations

import math
import re
import string
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.accounts import Channel
from domain.errors import describe
from domain.gate import Audience, Purpose

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "policies" / "templates"
LANGUAGES = ("en", "zh-CN")
MAX_SMS_CHARS = 320
#: The longest typed text a message may quote (a declined plan request's reason): the template with the
#: longest company name, number and such a text still fits one SMS (tests/templates).
MAX_QUOTED_CHARS = 80

# Templates whose content is limited by law, and the only placeholders each may use.
LIMITED_CONTENT: dict[str, frozenset[str]] = {
    # Reg F limited-content message: business name, request to reply, a natural person's name, a phone number.
    "voicemail_limited": frozenset({"company", "agent_name", "callback_number"}),
    # Emergency contact: who is asking, whom they look for, how to reach us. Never the debt.
    "third_party_locate": frozenset({"company", "agent_name", "callback_number", "name"}),
}
# What a message to a third party may name: who asks, whom they look for, how to reach us. No amount,
# due date, stage or link (a link leads to the account).
THIRD_PARTY_PLACEHOLDERS = frozenset({"company", "agent_name", "callback_number", "name"})
# SMS sent *because* the debtor opted out: the one text without an opt-out instruction (see module doc).
NO_OPT_OUT_FOOTER = frozenset({"opt_out_confirmation"})

# Words that reveal a debt, in every language we ship; checked on the rendered text of limited templates.
FORBIDDEN_WORDS_EN = (
    "debt", "debts", "debtor", "debtors", "owe", "owes", "owed", "owing", "overdue", "past due", "arrears",
    "collect", "collects", "collected", "collecting", "collection", "collections", "collector", "collectors",
    "payment", "payments", "pay", "pays", "paid", "repay", "repayment", "repayments", "balance", "balances",
    "amount", "amounts", "loan", "loans", "bill", "bills", "billing", "instalment", "instalments",
    "installment", "installments", "default", "defaulted", "account", "accounts", "settlement", "plan",
)  # fmt: skip
FORBIDDEN_WORDS_ZH = (
    "欠", "债", "逾期", "催收", "催缴", "还款", "还钱", "金额", "余额", "贷款", "借款", "账单", "账户",
    "付款", "缴费", "分期", "违约", "收款", "结清",
)  # fmt: skip
_FORBIDDEN_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in FORBIDDEN_WORDS_EN) + r")\b"
    r"|" + "|".join(re.escape(w) for w in FORBIDDEN_WORDS_ZH),
    re.IGNORECASE,
)
# Money: any currency sign or code (with or without a number), a number with cents, a number of yuan.
_MONEY_RE = re.compile(
    r"[$€£¥￥₩₹]"
    r"|\b(?:USD|CNY|RMB|GBP|EUR|HKD|dollars?|pounds?|quid|bucks|yuan|cents?|pence)\b"
    r"|\d[\d,]*\.\d{2}(?!\d)"
    r"|\d\s?(?:元|块)"
    r"|[零一二三四五六七八九十百千万亿两]+\s?(?:元|块)",
    re.IGNORECASE,
)

# GSM 03.38: texts in this alphabet go 160 characters a segment, others (UCS-2) 70.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def forbidden_in(text: str) -> list[str]:
    """The debt-revealing words and money figures in ``text`` (empty: safe for a third party)."""
    return [m.group(0) for m in _FORBIDDEN_RE.finditer(text)] + [m.group(0) for m in _MONEY_RE.finditer(text)]


def placeholders(text: str) -> list[str]:
    """The ``{names}`` in a template, in order; anything but a plain name is refused."""
    names: list[str] = []
    for _, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} must be a plain name like {{company}}")
        names.append(field)
    return names


def sms_segments(text: str) -> tuple[Literal["GSM-7", "UCS-2"], int]:
    """How a carrier will encode and split ``text`` (what the message costs)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        return "GSM-7", 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


class TemplateSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    purposes: list[Purpose] = Field(min_length=1, description="What it may be sent for")
    audience: list[Audience] = Field(
        default_factory=lambda: [Audience.DEBTOR],
        min_length=1,
        description="Whom it may be sent to; third_party only for texts that cannot disclose the debt",
    )
    sms: str | None = None
    voice: str | None = None

    @model_validator(mode="after")
    def _some_text(self) -> TemplateSpec:
        if self.sms is None and self.voice is None:
            raise ValueError("needs an sms or a voice text")
        for text in (self.sms, self.voice):
            if text is not None:
                placeholders(text)
        return self

    def text(self, channel: Channel) -> str | None:
        return self.sms if channel == Channel.SMS else self.voice


class LanguagePack(BaseModel):
    """One language's texts plus the fixed phrases the rules need (opt-out, identification)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str
    opt_out: str = Field(min_length=1, description="Appended to every SMS, e.g. 'Reply STOP to opt out.'")
    separator: str = Field(default=" ", description="Between an SMS body and the opt-out")
    identify: str = Field(description="How every voice script begins, e.g. 'This is {company}'")
    templates: dict[str, TemplateSpec]

    @model_validator(mode="after")
    def _rules(self) -> LanguagePack:
        if placeholders(self.identify) != ["company"]:
            raise ValueError("identify must name the company and nothing else, e.g. 'This is {company}'")
        problems: list[str] = []
        for name, spec in self.templates.items():
            if spec.voice is not None and not spec.voice.startswith(self.identify):
                problems.append(f"templates.{name}.voice: must begin with {self.identify!r}")
            if spec.sms is not None and self.opt_out in spec.sms:
                problems.append(f"templates.{name}.sms: leave out the opt-out, it is appended automatically")
            allowed = LIMITED_CONTENT.get(name)
            if Audience.THIRD_PARTY in spec.audience:
                allowed = (allowed or THIRD_PARTY_PLACEHOLDERS) & THIRD_PARTY_PLACEHOLDERS
                if spec.purposes != [Purpose.DUNNING]:
                    problems.append(f"templates.{name}.purposes: a third-party text is for dunning only")
            if allowed is None:
                continue
            for channel, text in (("sms", spec.sms), ("voice", spec.voice)):
                if text is None:
                    continue
                extra = sorted(set(placeholders(text)) - allowed)
                if extra:
                    problems.append(f"templates.{name}.{channel}: may not use {', '.join(extra)}")
                bad = forbidden_in(string.Formatter().vformat(text, (), _Blank()))
                if bad:
                    problems.append(f"templates.{name}.{channel}: may not say {', '.join(sorted(set(bad)))}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class Rendered(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    template: str
    language: str
    channel: Channel
    purpose: Purpose
    encoding: Literal["GSM-7", "UCS-2"] | None = Field(default=None, description="SMS only")
    segments: int = Field(default=0, description="SMS segments the carrier will bill (0 for voice)")


def parse_pack(text: str, *, source: str = "<templates>") -> LanguagePack:
    """Validate a language pack; errors name the file and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    try:
        return LanguagePack.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe(exc, source).replace("Value error, ", "")) from None


@lru_cache(maxsize=16)
def load_pack(language: str, directory: Path | None = None) -> LanguagePack:
    if language not in LANGUAGES and directory is None:
        raise ValueError(f"unknown language {language!r}; available: {', '.join(LANGUAGES)}")
    path = (directory or TEMPLATE_DIR) / f"{language}.toml"
    if not path.is_file():
        raise ValueError(f"unknown language {language!r}: no {path}")
    pack = parse_pack(path.read_text(encoding="utf-8"), source=str(path))
    if pack.language != language:
        raise ValueError(f"{path}: language: says {pack.language!r}, file is for {language!r}")
    return pack


@lru_cache(maxsize=256)
def third_party_safe(template: str) -> bool:
    """May ``template`` go to a third party? Only if every shipped language marks it so.

    Marking it so is what subjects it to the limited-content rules at load (no amount or debt
    placeholder, no debt word, no figure), so a True here means "cannot disclose the debt". An
    unknown template is not safe.
    """
    specs = [load_pack(language).templates.get(template) for language in LANGUAGES]
    return all(spec is not None and Audience.THIRD_PARTY in spec.audience for spec in specs)


def _value(context: Mapping[str, object], key: str) -> str | None:
    """A context value as one line of text; None when absent or blank (a blank name is a missing name)."""
    raw = context.get(key)
    if raw is None:
        return None
    value = " ".join(str(raw).split())
    return value or None


def render(
    template: str,
    language: str,
    *,
    purpose: Purpose | str,
    channel: Channel | str,
    context: Mapping[str, object],
    audience: Audience | str = Audience.DEBTOR,
) -> Rendered:
    """The text of ``template`` in ``language`` for one contact, with every rule checked.

    Raises ``ValueError`` for an unknown template, language, channel or purpose, a template sent for
    a purpose it is not meant for, a missing (or blank) context key (naming it), and a rendered text
    that breaks a rule (too long, forbidden word in a limited message, no identification first).
    Extra context keys are ignored. A text for a third party must be marked for one (``audience``)
    and is checked again for debt words and figures after the context is filled in.
    """
    pack = load_pack(str(language))
    spec = pack.templates.get(template)
    if spec is None:
        raise ValueError(
            f"unknown template {template!r} for language {language!r}; known: {', '.join(sorted(pack.templates))}"
        )
    channel = Channel(channel)
    purpose = Purpose(purpose)
    if purpose not in spec.purposes:
        allowed = ", ".join(p.value for p in spec.purposes)
        raise ValueError(f"template {template!r} is for {allowed}, not {purpose.value}")
    audience = Audience(audience)
    if audience == Audience.THIRD_PARTY and audience not in spec.audience:
        raise ValueError(f"template {template!r} is not marked for a third party (audience)")
    text = spec.text(channel)
    if text is None:
        raise ValueError(f"template {template!r} ({language}) has no {channel.value} text")
    names = placeholders(text)
    values = {name: _value(context, name) for name in names}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(
            f"template {template!r} ({language}, {channel.value}): missing context key(s): {', '.join(missing)}"
        )
    body = text.format_map(values).strip()
    where = f"template {template!r} ({language}, {channel.value})"

    if template in LIMITED_CONTENT or audience == Audience.THIRD_PARTY:
        bad = forbidden_in(body)
        if bad:
            raise ValueError(f"{where}: a limited-content message may not say {', '.join(sorted(set(bad)))}")
    if channel == Channel.VOICE:
        opening = pack.identify.format(company=values["company"])
        if not body.startswith(opening):
            raise ValueError(f"{where}: a call must begin by identifying the company ({opening!r})")
        return Rendered(
            text=body, template=template, language=pack.language, channel=channel, purpose=purpose
        )

    if template not in NO_OPT_OUT_FOOTER:
        # after a link or a Latin word a space is needed even in Chinese, or the link would swallow it
        ends_latin = body[-1:].isascii() and (body[-1:].isalnum() or body.endswith("/"))
        sep = " " if ends_latin else pack.separator
        body = f"{body}{sep}{pack.opt_out}"
    if len(body) > MAX_SMS_CHARS:
        raise ValueError(f"{where}: {len(body)} characters, more than the {MAX_SMS_CHARS} an SMS may have")
    encoding, segments = sms_segments(body)
    return Rendered(
        text=body,
        template=template,
        language=pack.language,
        channel=channel,
        purpose=purpose,
        encoding=encoding,
        segments=segments,
    )


def template_names(language: str) -> list[str]:
    """Every template a language pack defines."""
    return sorted(load_pack(language).templates)
