"""The plan agreement PDF, built from a hand-made agreement and read back as a debtor's PDF reader would
(pypdf's text extraction): the schedule, the total, the waiver's approver, whom to call and where to
complain, in English and in Chinese. No database, no Temporal: the renderer is a pure function.
"""

from __future__ import annotations

import io
import re
from datetime import date

import pypdf
import pytest
from pydantic import ValidationError

from domain.accounts import Language
from domain.agreement import Agreement, AgreementInstalment, AgreementWaiver, LenderContact
from domain.plans import PlanKind
from domain.profiles import PROFILE_DIR, ComplaintChannel, load_profile, parse_profile
from service.agreement_pdf import render_agreement

LENDER = LenderContact(company="Acme Finance", phone="+1 212 555 0100", page="https://pay.example.com/me")
#: three instalments of USD 158.34 + 158.33 + 158.33 = 475.00, a week apart
SCHEDULE = [
    AgreementInstalment(seq=1, due_date=date(2026, 12, 10), amount=15_834),
    AgreementInstalment(seq=2, due_date=date(2026, 12, 17), amount=15_833),
    AgreementInstalment(seq=3, due_date=date(2026, 12, 24), amount=15_833),
]
ROWS = ["1 2026-12-10 USD 158.34", "2 2026-12-17 USD 158.33", "3 2026-12-24 USD 158.33"]


def agreement(language: str, *, waiver: bool, profile: str = "US", **changes: object) -> Agreement:
    values: dict[str, object] = {
        "plan_id": "account-M-0001-plan-20261124",
        "account_id": "M-0001",
        "language": language,
        "kind": PlanKind.FEE_WAIVER if waiver else PlanKind.REINSTALMENT,
        "currency": "USD",
        "total": 47_500,
        "agreed_on": date(2026, 11, 24),
        "instalments": SCHEDULE,
        "waiver": AgreementWaiver(amount=2_500, approver="sam.supervisor", approved_on=date(2026, 11, 23))
        if waiver
        else None,
        "grace_days": 3,
        "lender": LENDER,
        "complaint": load_profile(profile).complaint_channel,
    }
    values.update(changes)
    return Agreement.model_validate(values)


def text_of(data: bytes) -> str:
    """Every page's text, whitespace collapsed (a table row comes out as ``1 2026-12-10 USD 158.34``)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def fonts_of(data: bytes) -> set[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    out = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            out.add(str(font.get_object()["/BaseFont"]).lstrip("/"))
    return out


def in_order(text: str, parts: list[str]) -> bool:
    return re.search(".*".join(re.escape(p) for p in parts), text) is not None


# ---- English ----------------------------------------------------------------------------------------
def test_english_with_a_waiver_states_terms_schedule_approver_contact_and_complaint_route() -> None:
    data = render_agreement(agreement("en", waiver=True))
    assert data.startswith(b"%PDF-")
    text = text_of(data)
    assert "Payment plan agreement" in text
    assert "Plan ID account-M-0001-plan-20261124" in text and "Account M-0001" in text
    assert "Agreed on 2026-11-24" in text
    assert "Plan Late fees waived, the rest paid as scheduled" in text
    assert "Total to pay USD 475.00" in text and "Last due date 2026-12-24" in text
    assert in_order(text, [*ROWS, "Total USD 475.00"])  # every instalment, in order, then the sum
    assert "not paid within 3 days of its due date" in text
    assert "Late fees of USD 25.00 are waived" in text
    assert "Approved by sam.supervisor on 2026-11-23." in text
    assert "Acme Finance, phone +1 212 555 0100" in text and "https://pay.example.com/me" in text
    assert "call Acme Finance at +1 212 555 0100" in text  # complain to us first
    assert (
        "Consumer Financial Protection Bureau (CFPB): consumerfinance.gov/complaint, (855) 411-2372" in text
    )
    assert "Source: CFPB" in text
    assert fonts_of(data) >= {"Helvetica", "Helvetica-Bold"} and "STSong-Light" not in fonts_of(data)


def test_english_without_a_waiver_says_nothing_about_one() -> None:
    text = text_of(render_agreement(agreement("en", waiver=False)))
    assert "Plan Instalments" in text and in_order(text, [*ROWS, "Total USD 475.00"])
    assert "Fee waiver" not in text and "Approved by" not in text and "waived" not in text


@pytest.mark.parametrize(
    ("profile", "authority"),
    [
        ("UK", "Financial Ombudsman Service: financial-ombudsman.org.uk, 0800 023 4567"),
        ("CN", "National Financial Regulatory Administration (NFRA) consumer complaint hotline: 12378"),
    ],
)
def test_the_complaint_route_is_the_jurisdictions(profile: str, authority: str) -> None:
    data = render_agreement(agreement("en", waiver=False, profile=profile))
    text = text_of(data)
    assert authority in text
    if profile == "UK":
        assert "within 8 weeks" in text and "DISP 2.8.2R" in text
    else:  # the CN source is quoted in Chinese: an English PDF draws it with the CID font
        assert "12378 银行保险消费者投诉维权热线" in text and "STSong-Light" in fonts_of(data)


def test_without_a_complaint_channel_the_lender_is_still_named_for_complaints() -> None:
    text = text_of(render_agreement(agreement("en", waiver=False, complaint=None)))
    assert "Complaints Tell us first: call Acme Finance at +1 212 555 0100" in text
    assert "CFPB" not in text and "Source:" not in text


# ---- Chinese ----------------------------------------------------------------------------------------
def test_chinese_with_a_waiver_in_chinese_words_with_latin_amounts() -> None:
    data = render_agreement(agreement("zh-CN", waiver=True))
    text = text_of(data)
    assert "还款计划协议" in text
    assert "计划编号 account-M-0001-plan-20261124" in text and "达成日期 2026-11-24" in text
    assert "方案 减免罚息费用，其余按计划还款" in text
    assert "应还总额 USD 475.00" in text
    assert in_order(text, [*ROWS, "合计 USD 475.00"])
    assert "如某期在到期日后 3 天内仍未还款" in text
    assert "减免罚息费用 USD 25.00" in text and "由 sam.supervisor 于 2026-11-23 批准。" in text
    assert "Acme Finance，电话 +1 212 555 0100" in text
    assert "美国消费者金融保护局（CFPB）：consumerfinance.gov/complaint, (855) 411-2372" in text
    assert {"STSong-Light", "Helvetica"} <= fonts_of(data)  # Chinese by the CID font, Latin by Helvetica


def test_chinese_without_a_waiver_for_a_cn_account() -> None:
    cny = [
        AgreementInstalment(seq=1, due_date=date(2027, 1, 5), amount=300_000),
        AgreementInstalment(seq=2, due_date=date(2027, 2, 5), amount=300_000),
    ]
    data = render_agreement(
        agreement("zh-CN", waiver=False, profile="CN", currency="CNY", total=600_000, instalments=cny)
    )
    text = text_of(data)
    assert "方案 二次分期" in text and "应还总额 CNY 6,000.00" in text
    assert in_order(text, ["1 2027-01-05 CNY 3,000.00", "2 2027-02-05 CNY 3,000.00", "合计 CNY 6,000.00"])
    assert "费用减免" not in text and "批准" not in text
    assert "国家金融监督管理总局 银行保险消费者投诉维权热线：12378, www.nfra.gov.cn" in text
    assert "如我们未能解决您的投诉" in text


def test_a_sixty_period_schedule_runs_over_pages_and_keeps_every_instalment() -> None:
    long = [
        AgreementInstalment(seq=n, due_date=date(2027 + (n - 1) // 12, (n - 1) % 12 + 1, 15), amount=10_000)
        for n in range(1, 61)
    ]
    data = render_agreement(agreement("zh-CN", waiver=False, total=600_000, instalments=long))
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    text = text_of(data)
    assert in_order(text, [f"{n} {i.due_date.isoformat()} USD 100.00" for n, i in enumerate(long, 1)])
    assert "第 2 页" in text and "合计 USD 6,000.00" in text


def test_the_same_agreement_gives_the_same_bytes() -> None:
    """No creation time or random file ID: downloading twice gives the same file."""
    assert render_agreement(agreement("en", waiver=True)) == render_agreement(agreement("en", waiver=True))
    assert render_agreement(agreement("en", waiver=True)) != render_agreement(agreement("zh-CN", waiver=True))


# ---- the model refuses what must not be printed -------------------------------------------------------
def test_a_schedule_that_does_not_add_up_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"instalments: they sum to 47500, not the total 50000"):
        agreement("en", waiver=False, total=50_000)
    with pytest.raises(ValidationError, match=r"numbered \[1, 3\]"):
        agreement("en", waiver=False, total=31_667, instalments=[SCHEDULE[0], SCHEDULE[2]])
    with pytest.raises(ValidationError, match="currency"):
        agreement("en", waiver=False, currency="XYZ")
    assert agreement("en", waiver=False).language is Language.EN


# ---- the profiles' complaint channels -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["US", "UK", "CN"])
def test_each_shipped_profile_names_its_complaint_channel_with_a_source_in_both_languages(name: str) -> None:
    channel = load_profile(name).complaint_channel
    assert channel is not None and channel.source and channel.contact
    assert set(channel.authority) == set(channel.when) == {"en", "zh-CN"}


def test_a_complaint_channel_without_english_or_in_an_unknown_language_is_refused() -> None:
    text = (PROFILE_DIR / "us.toml").read_text(encoding="utf-8")
    no_english = text.replace(
        'authority = { en = "Consumer Financial Protection Bureau (CFPB)", ', "authority = { "
    )
    with pytest.raises(ValueError, match=r"complaint_channel\.authority: .*'en' text is required"):
        parse_profile(no_english, source="us.toml")
    typo = text.replace("when = { en =", "when = { zh_CN = ")
    with pytest.raises(ValueError, match=r"complaint_channel\.when: unknown language\(s\) zh_CN"):
        parse_profile(typo, source="us.toml")
    assert (
        ComplaintChannel(authority={"en": "x"}, when={"en": "y"}, contact="z", source="s").authority_in(
            "zh-CN"
        )
        == "x"
    )


def test_names_with_markup_characters_print_as_written() -> None:
    odd = LenderContact(company="Lee & Sons <Finance>", phone="+44 20 7946 0000")
    text = text_of(render_agreement(agreement("en", waiver=False, lender=odd)))
    assert "Lee & Sons <Finance>, phone +44 20 7946 0000" in text
