"""Where the NUL guard finds a NUL, and that it leaves every other body alone (service/nul_guard.py)."""

from __future__ import annotations

import json

from service.nul_guard import nul_in_form, nul_in_json


def test_a_nul_is_found_where_it_is_in_json_and_forms() -> None:
    body = json.dumps({"reason": "ok", "items": [{"note": "fine"}, {"note": "bad\x00"}]}).encode()
    assert nul_in_json(body) == ["items", 1, "note"]
    assert nul_in_json(json.dumps({"bad\x00key": 1}).encode()) == ["bad\x00key"]
    assert nul_in_form(b"a=1&note=x%00y") == "note"
    assert nul_in_form(b"a=1&n%00ote=x") == "note"


def test_text_that_only_looks_like_a_nul_passes() -> None:
    # a backslash followed by u0000 is text, not a NUL; "%2500" is a percent sign and 00
    assert nul_in_json(json.dumps({"note": "\\u0000 is how JSON writes it"}).encode()) is None
    assert nul_in_form(b"note=100%2500") is None
    assert nul_in_json(b"{not json \\u0000") is None  # the route's own parser refuses it, naming why
    assert nul_in_json(json.dumps({"amount": 5, "reference": "r-1"}).encode()) is None
