"""Which texts are keywords: every listed word in any case, punctuation and width, the multi-word forms,
and never a message that merely contains one (domain/keywords.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import Language
from domain.keywords import Intent, Keyword, classify, keywords, normalise
from domain.templates import LANGUAGES, load_pack

EVERY = [k for intent in Intent if intent != Intent.OTHER for k in keywords(intent)]


def full_width(text: str) -> str:
    """ASCII as a Chinese keyboard types it: ``STOP`` → ``ＳＴＯＰ``, a space → the ideographic space."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def dressed(word: str) -> list[str]:
    """``word`` as phones and people send it: any case, padded, punctuated, quoted, full-width."""
    return [
        word,
        word.lower(),
        word.title(),
        f"  {word}\n",
        f"{word}.",
        f"{word}!!",
        f"{word.lower()}?",
        f'"{word}"',
        f"“{word}”",
        f"【{word}】",
        f"({word})",
        f"{word} 🙏",
        f"\u200b{word}\ufeff",
        f"{word}。",
        f"{word}！",
        full_width(word),
        full_width(word.lower()) + "。",
    ]


# ---- the carriers' own lists ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "intent"),
    [
        # Twilio, Advanced Opt-Out defaults (docs: messaging/tutorials/advanced-opt-out)
        ("STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT", Intent.OPT_OUT),
        # Twilio support article 223134027: opt back in, and help
        ("START YES UNSTOP", Intent.OPT_IN),
        ("HELP INFO", Intent.HELP),
    ],
)
def test_twilios_documented_defaults_are_all_honoured(words: str, intent: Intent) -> None:
    for word in words.split():
        assert classify(word).intent == intent, word


def test_the_fcc_and_ctia_multi_word_forms_opt_out() -> None:
    # 47 CFR 64.1200(a)(10) names "opt out"; CTIA's example is "please opt me out"
    for text in ("opt out", "Opt-Out", "OPT_OUT", "opt.out", "please opt me out", "Stop all", "STOP-ALL"):
        assert classify(text).intent == Intent.OPT_OUT, text


@pytest.mark.parametrize("kw", EVERY, ids=[k.word for k in EVERY])
def test_every_keyword_in_any_case_punctuation_and_width(kw: Keyword) -> None:
    for text in dressed(kw.word):
        got = classify(text)
        assert (got.intent, got.word) == (kw.intent, kw.word), (text, got)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("STOP PLEASE", "STOP"),
        ("please stop", "STOP"),
        ("Stop, thanks!", "STOP"),
        ("stop thank you", "STOP"),
        ("STOP STOP STOP", "STOP"),
        ("TD退订", "TD"),
        ("退订TD", "退订"),
        ("STOP 退订", "STOP"),
        ("请退订", "退订"),
        ("退订，谢谢", "退订"),
        ("取 消 订 阅", "取消订阅"),
        ("please unsubscribe me", "UNSUBSCRIBE ME"),
        ("HELP PLEASE", "HELP"),
        ("请帮助", "帮助"),
    ],
)
def test_opt_outs_and_help_forgive_a_courtesy_or_a_repeat(text: str, word: str) -> None:
    got = classify(text)
    assert got.word == word and got.intent in (Intent.OPT_OUT, Intent.HELP), got


@pytest.mark.parametrize(
    "text",
    [
        "please start",  # consent to be texted again must be the word itself
        "YES PLEASE",
        "start start",
        "yes yes",
        "请开始",
        "开始谢谢",
    ],
)
def test_opt_ins_take_only_the_word_itself(text: str) -> None:
    assert classify(text).intent == Intent.OTHER


# ---- what is not a keyword -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "please don't stop calling me",
        "I will stop by tomorrow",
        "stopped",
        "unstoppable",
        "Yes, I paid",
        "yes I already paid",
        "cancel my plan",
        "the end",
        "can you help me with my payment",
        "help me",
        "info about my account",
        "1 2",
        "12",
        "plan b",
        "STOP START",  # two intents: a person must read it
        "TD or not TD",
        "不要退订",
        "我已经还款了，请停止催收",
        "取消退订了吗",
        "开始还款",
        "T",  # a lone letter is too easily sent by accident
        "N",
        "",
        "   ",
        "!!!",
        "🛑",
    ],
)
def test_a_message_that_merely_contains_a_keyword_is_not_one(text: str) -> None:
    assert classify(text).intent == Intent.OTHER, classify(text)


def test_unstop_and_its_chinese_are_opt_ins_though_they_contain_an_opt_out_word() -> None:
    assert classify("UNSTOP").intent == Intent.OPT_IN
    assert classify("取消退订").intent == Intent.OPT_IN


_ORDINARY = [
    "I",
    "WILL",
    "BY",
    "DON'T",
    "CALLING",
    "PAID",
    "TOMORROW",
    "WHY",
    "NOT",
    "我",
    "不要",
    "已经",
    "还款",
]
_KEYWORD_WORDS = [k.word for k in EVERY if " " not in k.word]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(_KEYWORD_WORDS), min_size=0, max_size=3),
    st.lists(st.sampled_from(_ORDINARY), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
    st.sampled_from([" ", ", ", "  ", "\u3000", "-"]),
)
def test_keywords_among_ordinary_words_never_count(
    kws: list[str],
    ordinary: list[str],
    rnd,
    sep: str,  # type: ignore[no-untyped-def]
) -> None:
    words = kws + ordinary
    rnd.shuffle(words)
    assert classify(sep.join(words)).intent == Intent.OTHER


# ---- the carrier's verdict -----------------------------------------------------------------------
def test_twilios_opt_out_type_wins_even_for_a_word_of_its_own() -> None:
    # a keyword the operator added to the Messaging Service: Twilio blocked the number already
    assert classify("ARRET", "STOP").intent == Intent.OPT_OUT
    assert classify("Start", "START") == classify("START")
    assert classify("aide", "help").intent == Intent.HELP
    assert classify("STOP", "").intent == Intent.OPT_OUT  # an empty OptOutType says nothing
    assert classify("hello", "SOMETHING").intent == Intent.OTHER


def test_each_word_carries_its_language_for_a_reply_to_a_stranger() -> None:
    assert classify("帮助").language == Language.ZH_CN
    assert classify("TD").language == Language.ZH_CN
    assert classify("help").language == Language.EN
    assert classify("1").language is None


# ---- our own texts name words that do what they say ----------------------------------------------
_REPLY = {
    "en": re.compile(r"\b[Rr]eply ([A-Z]{2,}|\d)\b"),
    "zh-CN": re.compile(r"回复\s*(?:“([^”]+)”|([A-Za-z0-9]+))"),
}


def _named(language: str) -> list[tuple[str, str]]:
    """(template, word) for every "reply X" / "回复X" in a language pack, its footer included."""
    pack = load_pack(language)
    found = []
    texts = [("opt_out footer", pack.opt_out)] + [(n, t.sms) for n, t in pack.templates.items() if t.sms]
    for name, text in texts:
        for m in _REPLY[language].finditer(text):
            found.append((name, next(g for g in m.groups() if g)))
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_our_texts_ask_for_is_a_keyword_that_does_it(language: str) -> None:
    named = _named(language)
    words = {word for _, word in named}
    # the footer's opt-out word, the visit's plan word, and the opt-out confirmation's way back
    expected = {"en": {"STOP", "PLAN", "START"}, "zh-CN": {"TD", "PLAN", "开始"}}[language]
    assert words == expected, named
    for name, word in named:
        intent = classify(word).intent
        if name == "opt_out footer":
            assert intent == Intent.OPT_OUT
        elif name == "opt_out_confirmation":
            assert intent == Intent.OPT_IN
        else:
            assert intent == Intent.PLAN, (name, word)


def test_normalise_keeps_words_apart_but_not_chinese_characters() -> None:
    assert normalise("  Opt-Out!! ") == "OPT OUT"
    assert normalise("取 消　订阅。") == "取消订阅"
    assert normalise("ＳＴＯＰ ＡＬＬ") == "STOP ALL"


def test_the_readme_table_lists_every_keyword_and_no_other() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- keyword table:", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed: dict[str, str] = {}
    for row in rows:
        first, what = row.split(" | ")[0:2]
        for word in re.findall(r"`([^`]+)`", first):
            listed[word] = what
    assert set(listed) == {k.word for k in EVERY}
    # and each row says what the words do
    for word, what in listed.items():
        intent = classify(word).intent
        said = {Intent.OPT_OUT: "opt out", Intent.OPT_IN: "opt back in", Intent.HELP: "answered at once"}
        if intent in said and classify(word).language == Language.EN:
            assert said[intent] in what, word
