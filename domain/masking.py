"""Masking of personal data for logs, workflow summaries, search attributes and anything the UI shows."""

from __future__ import annotations


def mask_phone(e164: str | None) -> str:
    """``+8613812341234`` → ``+86 138****1234``: enough for an agent to recognise, useless to a scraper."""
    if not e164:
        return "-"
    digits = e164.lstrip("+")
    try:
        from domain.zones import parsed_number

        parsed = parsed_number(e164 if e164.startswith("+") else "+" + digits)
        cc = str(parsed.country_code)
        national = str(parsed.national_number)
    except Exception:
        cc, national = "", digits
    if len(national) <= 4:
        return f"+{cc} ****" if cc else "****"
    head = national[:3] if len(national) >= 10 else national[:1]
    tail = national[-4:]
    stars = "*" * max(len(national) - len(head) - len(tail), 2)
    return (f"+{cc} " if cc else "") + f"{head}{stars}{tail}"


def mask_name(name: str | None) -> str:
    """``Jane Doe`` → ``J*** D**``; ``王小明`` → ``王**``."""
    if not name:
        return "-"
    parts = name.split()
    if len(parts) == 1 and not name.isascii():
        return name[0] + "*" * (len(name) - 1)
    return " ".join(p[0] + "*" * (len(p) - 1) for p in parts)
