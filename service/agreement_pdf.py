"""The plan agreement as a PDF: a pure function from :class:`domain.agreement.Agreement` to bytes.

Why it is built this way:

* **Pure and deterministic.** No database, no clock, no settings: the same agreement gives the same
  bytes (``invariant``), so a test builds one by hand and reads the text back, and what the debtor
  downloads twice is the same file.
* **Chinese without font files.** reportlab's built-in CID font ``STSong-Light`` (``UnicodeCIDFont``)
  draws Chinese; the reader's PDF viewer supplies the glyphs, so nothing is embedded or shipped.
  Latin text (amounts, dates, IDs, English) is Helvetica. Each string is cut into runs: what
  Helvetica's WinAnsi encoding can draw goes to Helvetica, the rest to STSong-Light, so a Chinese
  sentence with an amount in it, or an English page quoting a Chinese source, prints every glyph.
* **Both languages from the pages' own strings** (``templates/selfservice/strings.toml``), so the
  PDF and the page say the same thing in the same words.
"""

from __future__ import annotations

import io
from functools import lru_cache

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from domain.agreement import Agreement
from domain.money import format_minor
from service.selfservice import Texts

LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
CHINESE = "STSong-Light"
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#52606d")
RULE = colors.HexColor("#cbd2d9")


@lru_cache(maxsize=1)
def _fonts() -> None:
    """Register the CID font once per process (reportlab keeps a global registry)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CHINESE))


def escape(text: str) -> str:
    """Paragraph text is markup: a ``<`` or ``&`` in a name or a source must print, not parse."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _latin(char: str) -> bool:
    try:
        char.encode("cp1252")  # Helvetica's WinAnsi encoding
    except UnicodeEncodeError:
        return False
    return True


def runs(text: str, *, bold: bool = False) -> str:
    """Paragraph markup of ``text`` with each run in a font that has its glyphs (escaped for XML)."""
    out: list[str] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or _latin(text[i]) != _latin(text[start]):
            chunk = escape(text[start:i])
            face = (LATIN_BOLD if bold else LATIN) if _latin(text[start]) else CHINESE
            out.append(f'<font face="{face}">{chunk}</font>')
            start = i
    return "".join(out)


class _Styles:
    def __init__(self, cjk: bool) -> None:
        wrap = "CJK" if cjk else None
        self.title = ParagraphStyle(
            "title", fontName=LATIN, fontSize=18, leading=23, textColor=INK, wordWrap=wrap
        )
        self.brand = ParagraphStyle("brand", fontName=LATIN, fontSize=10, leading=13, textColor=MUTED)
        self.heading = ParagraphStyle(
            "heading", fontName=LATIN, fontSize=12.5, leading=16, textColor=INK, spaceBefore=10, spaceAfter=4
        )
        self.body = ParagraphStyle(
            "body", fontName=LATIN, fontSize=10, leading=14, textColor=INK, wordWrap=wrap
        )
        self.small = ParagraphStyle(
            "small", fontName=LATIN, fontSize=8, leading=11, textColor=MUTED, wordWrap=wrap
        )
        self.cell = ParagraphStyle("cell", parent=self.body, leading=13)
        self.number = ParagraphStyle("number", parent=self.cell, alignment=2)  # right-aligned


def _p(text: str, style: ParagraphStyle, *, bold: bool = False) -> Paragraph:
    return Paragraph(runs(text, bold=bold), style)


def _facts(a: Agreement, t: Texts, st: _Styles) -> Table:
    money = format_minor(a.total, a.currency)
    rows = [
        (t.agreement_plan_id, a.plan_id),
        (t.agreement_account, a.account_id),
        (t.agreement_date, a.agreed_on.isoformat()),
        (t.agreement_kind, t(f"agreement_kind_{a.kind.value}")),
        (t.agreement_total, money),
        (t.agreement_ends, a.end_date.isoformat()),
        (t.agreement_status, t(f"agreement_status_{a.status}")),
    ]
    table = Table(
        [[_p(label, st.cell, bold=True), _p(value, st.cell)] for label, value in rows],
        colWidths=[45 * mm, None],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _schedule(a: Agreement, t: Texts, st: _Styles) -> Table:
    head = [
        _p(t.agreement_seq, st.cell, bold=True),
        _p(t.due, st.cell, bold=True),
        _p(t.amount, st.number, bold=True),
    ]
    body = [
        [
            _p(str(i.seq), st.cell),
            _p(i.due_date.isoformat(), st.cell),
            _p(format_minor(i.amount, a.currency), st.number),
        ]
        for i in a.instalments
    ]
    total = [
        _p(t.agreement_sum, st.cell, bold=True),
        "",
        _p(format_minor(a.total, a.currency), st.number, bold=True),
    ]
    table = Table([head, *body, total], colWidths=[18 * mm, 45 * mm, 45 * mm], hAlign="LEFT", repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -2), 0.3, RULE),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, INK),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _story(a: Agreement, t: Texts, st: _Styles) -> list[Flowable]:
    lender = a.lender
    story: list[Flowable] = [
        _p(lender.company, st.brand),
        _p(t.agreement_title, st.title, bold=True),
        Spacer(1, 4),
        _p(t("agreement_intro", date=a.agreed_on.isoformat(), account=a.account_id), st.body),
        Spacer(1, 8),
        _facts(a, t, st),
        _p(t.agreement_schedule, st.heading, bold=True),
        _schedule(a, t, st),
        Spacer(1, 6),
        _p(t("missed", grace=a.grace_days), st.body),
    ]
    if a.waiver is not None:
        w = a.waiver
        story += [
            _p(t.agreement_waiver_heading, st.heading, bold=True),
            _p(t("agreement_waiver", amount=format_minor(w.amount, a.currency)), st.body),
        ]
        if w.approver and w.approved_on:
            story.append(
                _p(t("agreement_approved", approver=w.approver, date=w.approved_on.isoformat()), st.body)
            )
        elif w.approver:
            story.append(_p(t("agreement_approved_by", approver=w.approver), st.body))
    story += [
        _p(t.agreement_contact_heading, st.heading, bold=True),
        _p(t("agreement_contact", company=lender.company, phone=lender.phone), st.body),
    ]
    if lender.page:
        story.append(_p(t("agreement_page", page=lender.page), st.body))
    story += [
        _p(t.agreement_complaints_heading, st.heading, bold=True),
        _p(t("agreement_complaint_first", company=lender.company, phone=lender.phone), st.body),
    ]
    if a.complaint is not None:
        lang = a.language.value
        story += [
            Spacer(1, 3),
            _p(a.complaint.when_in(lang), st.body),
            _p(
                t(
                    "agreement_authority",
                    authority=a.complaint.authority_in(lang),
                    contact=a.complaint.contact,
                ),
                st.body,
                bold=True,
            ),
            Spacer(1, 3),
            _p(t("agreement_complaint_source", source=a.complaint.source), st.small),
        ]
    return story


def render_agreement(agreement: Agreement) -> bytes:
    """The agreement as PDF bytes, in the agreement's language."""
    _fonts()
    t = Texts(agreement.language.value)
    st = _Styles(cjk=agreement.language.value != "en")
    footer_style = ParagraphStyle("footer", parent=st.small, alignment=1)

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        text = f"{agreement.lender.company} · {agreement.plan_id} · {t('agreement_page_n', n=doc.page)}"
        line = Paragraph(runs(text), footer_style)
        width = doc.pagesize[0] - doc.leftMargin - doc.rightMargin
        _, height = line.wrap(width, 20 * mm)
        line.drawOn(canvas, doc.leftMargin, 12 * mm - height / 2)

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=22 * mm,
        title=f"{t.agreement_title} {agreement.plan_id}",
        author=agreement.lender.company,
        subject=t.agreement_title,
        creator=agreement.lender.company,
        lang=agreement.language.value,
        displayDocTitle=True,
        invariant=True,  # the same agreement, the same bytes (no creation time or random file ID)
    )
    doc.build(_story(agreement, t, st), onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
