"""Which texts from a debtor are keywords, and what each one asks for: opt out, opt back in, help, a plan.

A pure function over the message body (:func:`classify`), so the inbound-SMS webhook, the README's
table and the tests all read the same lists. Why these lists, and why matching is this strict:

* **Only a message that *is* a keyword counts.** Twilio and the carriers match the whole message,
  never a word inside it: "please don't stop calling me" or "I will stop by" must not end a debtor's
  texts, and "yes, I paid" must not opt anyone back in. What is forgiven is what a phone adds or a
  person types around a word: case, surrounding whitespace and punctuation (``"Stop."``, ``"STOP!!"``,
  ``“退订”``, ``【TD】``, an emoji), full-width forms (``ＳＴＯＰ``, ``ＴＤ``), a hyphen or underscore
  between two words (``OPT-OUT``), spaces between Chinese characters.
* **Opt-outs are read generously, opt-ins strictly.** Withdrawing consent must work "by any
  reasonable means" (47 CFR 64.1200(a)(10); CTIA: "opt-out requests with normal language ... should
  also be read and acted upon"), and an opt-out read by mistake costs the debtor one START. An opt-in
  is consent to be texted about a debt again, so only the exact opt-in words count. So an opt-out
  word may come with a courtesy ("STOP PLEASE", "please opt me out", "请退订", "退订谢谢") or be
  repeated ("STOP STOP"); an opt-in word may not.
* **A single letter is never an opt-out.** Some Chinese senders tell people to reply "T" or "N";
  a lone letter is too easily sent by accident (CTIA's exception for words that "can result in
  unintentional opt-out"), and our own texts ask for "TD" (``policies/templates/zh-CN.toml``).

Where each list comes from is said beside it. Behind a Twilio Messaging Service with Advanced
Opt-Out, Twilio applies its configured keywords itself (it blocks or unblocks the number) and tells
the webhook which kind it saw (``OptOutType``: STOP, START or HELP); that verdict wins over ours
(:func:`classify`'s ``carrier_type``), so our database never disagrees with Twilio's block list.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import NamedTuple

from domain.accounts import Language


class Intent(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt_out"  # no more texts (the one confirmation goes)
    OPT_IN = "opt_in"  # texts again, after an opt-out (one confirmation goes)
    HELP = "help"  # who we are, how to reach us, how to stop
    PLAN = "plan"  # the debtor asks for a payment plan
    COMPLAINT = "complaint"  # the debtor complains: contact stops until it is decided (a case)
    DISPUTE = "dispute"  # the debtor disputes the debt: no collection until it is verified (a case)
    OTHER = "other"  # not a keyword: a message for a person


class Keyword(NamedTuple):
    """A classified message: what it asks for, the word it matched, and that word's language."""

    intent: Intent
    word: str = ""  # the table's spelling of the word matched ("" for OTHER)
    language: Language | None = None  # the word's language, for a reply to a number we do not know


# ---- the lists ----------------------------------------------------------------------------------------
#: Twilio's default opt-out keywords for long codes and Advanced Opt-Out ("By default, Twilio handles
#: standard English-language reply messages: STOP, UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT,
#: and CANCEL", https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out; REVOKE and OPTOUT
#: were added for the FCC's 2025 revocation rule). STOP, END, CANCEL, UNSUBSCRIBE and QUIT are also
#: the CTIA Short Code Monitoring Handbook's universal opt-out words.
TWILIO_OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
#: Multi-word opt-outs: "opt out" is one of the words 47 CFR 64.1200(a)(10) names for a reply that
#: revokes consent (FCC 24-24), "OPT-OUT" is in AWS End User Messaging's required list (normalised
#: here to "OPT OUT"), "STOP ALL" is STOPALL as people type it (Telnyx's default list has both), and
#: "please opt me out" is the CTIA Messaging Principles' own example of normal-language opt-out.
MULTI_WORD_OPT_OUT = ("STOP ALL", "OPT OUT", "OPT ME OUT", "UNSUBSCRIBE ME")
#: Twilio's default opt-in keywords: "Recipients can ... resume receiving messages with the START,
#: YES, or UNSTOP commands" (Twilio support for opt-out keywords (SMS STOP filtering),
#: https://help.twilio.com/articles/223134027); CTIA asks that opt-ins be confirmed once.
TWILIO_OPT_IN = ("START", "YES", "UNSTOP")
#: Twilio's default help keywords (same article); CTIA requires an answer to HELP whether or not the
#: number is subscribed.
TWILIO_HELP = ("HELP", "INFO")

#: zh-CN opt-outs. 退订 ("unsubscribe") and TD (its pinyin initials) are what Chinese commercial texts
#: and ours say ("回复TD退订", the zh-CN pack's footer); TD is also in AWS End User Messaging's
#: required opt-out list. The others are the Chinese for the English defaults: 取消订阅 UNSUBSCRIBE,
#: 停止 STOP, 停止发送 "stop sending", 取消 CANCEL, 退出 QUIT, 结束 END (CTIA and the FCC ask for
#: the consumer's own words to be honoured, not only English ones).
ZH_OPT_OUT = ("退订", "TD", "取消订阅", "停止", "停止发送", "取消", "退出", "结束")
#: zh-CN opt-ins, the Chinese for the English defaults: 开始 START, 取消退订 UNSTOP ("cancel the
#: unsubscribe"), 订阅 / 恢复订阅 / 恢复 ("subscribe", "resume"). No word for YES (是, 好): in Chinese
#: they are the commonest replies to anything, too weak to count as consent to be texted again.
ZH_OPT_IN = ("开始", "取消退订", "订阅", "恢复订阅", "恢复")
#: zh-CN help: 帮助 HELP, 求助 "ask for help", 客服 "customer service".
ZH_HELP = ("帮助", "求助", "客服")

#: Plan requests: the key our calls offer ("press 1") and the word our texts name ("reply PLAN" in the
#: visit announcement, in both languages), and 协商 ("negotiate"), the word Chinese debtors use.
PLAN_WORDS = ("1", "PLAN", "协商")

#: Courtesy a generous opt-out or help forgives around the word (never around an opt-in).
#: Complaints and disputes by text (issue 14): the words a debtor would send, and 投诉 ("complaint") and
#: 异议 ("objection", the word of 《征信业管理条例》 for disputing a record) in Chinese. Each files the same
#: hold as an agent's and opens a case; its acknowledgement names the case and the deadline.
COMPLAINT_WORDS = ("COMPLAINT", "COMPLAIN")

_COURTESY_BEFORE = ("PLEASE ", "请")
_COURTESY_AFTER = (" PLEASE", " THANKS", " THANK YOU", "谢谢")


def _table() -> dict[str, Keyword]:
    table: dict[str, Keyword] = {}
    groups: list[tuple[Intent, tuple[str, ...], Language | None]] = [
        (Intent.OPT_OUT, TWILIO_OPT_OUT + MULTI_WORD_OPT_OUT, Language.EN),
        (Intent.OPT_OUT, ZH_OPT_OUT, Language.ZH_CN),
        (Intent.OPT_IN, TWILIO_OPT_IN, Language.EN),
        (Intent.OPT_IN, ZH_OPT_IN, Language.ZH_CN),
        (Intent.HELP, TWILIO_HELP, Language.EN),
        (Intent.HELP, ZH_HELP, Language.ZH_CN),
        (Intent.PLAN, ("PLAN",), Language.EN),
        (Intent.PLAN, ("协商",), Language.ZH_CN),
        (Intent.PLAN, ("1",), None),
        (Intent.COMPLAINT, COMPLAINT_WORDS, Language.EN),
        (Intent.COMPLAINT, ("投诉",), Language.ZH_CN),
        (Intent.DISPUTE, ("DISPUTE",), Language.EN),
        (Intent.DISPUTE, ("异议",), Language.ZH_CN),
    ]
    for intent, words, language in groups:
        for word in words:
            key = normalise(word)
            if key in table:  # one word, one meaning: a list edit that breaks this fails at import
                raise ValueError(f"keyword {word!r} is listed twice ({table[key].intent} and {intent})")
            table[key] = Keyword(intent, word, language)
    return table


# ---- normalisation ------------------------------------------------------------------------------------
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")


def _is_text(ch: str) -> bool:
    """A letter or digit: what a keyword is made of (everything else only surrounds or separates)."""
    return unicodedata.category(ch)[0] in "LN"


def normalise(body: str) -> str:
    """The message as keyword matching compares it.

    NFKC first (full-width ``ＳＴＯＰ`` and ``１`` become ``STOP`` and ``1``, the ideographic space a
    space), invisible format characters dropped, then everything that is not a letter or digit at
    either end is cut (whitespace, punctuation of any script, quotes and brackets, emoji); inside,
    each run of separators becomes one space, and a space next to a Chinese character goes (Chinese
    does not separate words). Upper case last.
    """
    text = unicodedata.normalize("NFKC", body or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    start, end = 0, len(text)
    while start < end and not _is_text(text[start]):
        start += 1
    while end > start and not _is_text(text[end - 1]):
        end -= 1
    text = text[start:end]
    # inside: whitespace and the joining punctuation people put between two words
    text = re.sub(r"[\s\-_.,，、·/]+", " ", text)
    text = _SPACE_BY_CJK.sub("", text)
    return text.upper()


_TABLE: dict[str, Keyword] = _table()
#: Intents read generously: a courtesy around the word, or several of its words together, still count.
_GENEROUS = (Intent.OPT_OUT, Intent.HELP)
_SCRIPT_BREAK = re.compile(rf"(?<=[{_CJK}])(?=[^{_CJK} ])|(?<=[^{_CJK} ])(?=[{_CJK}])")


def _without_courtesy(text: str) -> str | None:
    """``text`` with one courtesy before and/or after it taken away; None if it had none."""
    stripped = text
    for before in _COURTESY_BEFORE:
        if stripped.startswith(before):
            stripped = stripped[len(before) :]
            break
    for after in _COURTESY_AFTER:
        if stripped.endswith(after):
            stripped = stripped[: -len(after)]
            break
    return stripped if stripped != text and stripped else None


def _parts(text: str) -> list[str]:
    """The words of ``text``: split at spaces and where Chinese meets Latin (``"TD退订"`` → TD, 退订)."""
    return [p for p in _SCRIPT_BREAK.sub(" ", text).split(" ") if p]


#: ``OptOutType`` values of Twilio's inbound webhook (Advanced Opt-Out): Twilio has applied them already
#: (https://help.twilio.com/articles/360034798533, "Getting Started with Advanced Opt-Out").
CARRIER_TYPES = {"STOP": Intent.OPT_OUT, "START": Intent.OPT_IN, "HELP": Intent.HELP}


def classify(body: str, carrier_type: str | None = None) -> Keyword:
    """What the whole message asks for (see the module docstring for the rules).

    ``carrier_type`` is Twilio's ``OptOutType`` when Twilio applied a keyword before passing the
    message on: its verdict stands even for a word our lists do not have (a keyword the operator
    added to the Messaging Service), so that the database follows Twilio's block list.
    """
    text = normalise(body)
    found = _TABLE.get(text)
    carrier = CARRIER_TYPES.get((carrier_type or "").strip().upper())
    if carrier is not None:
        if found is not None and found.intent == carrier:
            return found
        return Keyword(carrier, text, found.language if found else None)
    if found is not None:
        return found
    # generous for opt-outs and help: a courtesy around the word ("STOP PLEASE", "请退订")
    polite = _without_courtesy(text)
    hit = _TABLE.get(polite) if polite is not None else None
    if hit is not None and hit.intent in _GENEROUS:
        return hit
    # ... or the words of one intent said together ("STOP STOP", "TD退订", "STOP 退订")
    parts = _parts(text)
    hits = [_TABLE.get(p) for p in parts]
    if len(parts) > 1 and all(h is not None for h in hits):
        intents = {h.intent for h in hits if h is not None}
        first = hits[0]
        if len(intents) == 1 and first is not None and first.intent in _GENEROUS:
            return first
    return Keyword(Intent.OTHER)


def keywords(intent: Intent) -> list[Keyword]:
    """Every listed keyword of one intent, in the lists' order (for the README table and the tests)."""
    return [k for k in _TABLE.values() if k.intent == intent]


__all__ = [
    "CARRIER_TYPES",
    "MULTI_WORD_OPT_OUT",
    "PLAN_WORDS",
    "TWILIO_HELP",
    "TWILIO_OPT_IN",
    "TWILIO_OPT_OUT",
    "ZH_HELP",
    "ZH_OPT_IN",
    "ZH_OPT_OUT",
    "Intent",
    "Keyword",
    "classify",
    "keywords",
    "normalise",
]
