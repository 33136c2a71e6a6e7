"""The debtor's pages checked with axe-core (Deque's rules engine, from npm: scripts/fetch_axe.sh) in the
real browser: no serious or critical violation of WCAG 2.1 A/AA. Without the package the check skips,
saying so (and ``./collect test`` always installs it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = Path(os.environ.get("AXE_CORE_JS", ROOT / ".cache/npm-axe/node_modules/axe-core/axe.min.js"))
#: WCAG 2.0/2.1 levels A and AA, the level the UK, EU (EN 301 549) and US (ADA guidance) point to
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


async def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core is not installed ({AXE_JS}): run scripts/fetch_axe.sh")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
        TAGS,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result
        if v.get("impact") in BLOCKING
    ]


async def assert_accessible(page: Any, where: str) -> None:
    found = await violations(page)
    assert not found, f"{where}: axe-core finds {len(found)} serious or critical violation(s): {found}"
