"""``./collect simulate``: policies side by side over one portfolio, a report a person can open."""

from __future__ import annotations

import json
from pathlib import Path

from domain.policy import POLICY_DIR
from lab.__main__ import main

START = "2026-12-01T09:00:00+00:00"


def test_two_policies_over_one_portfolio(tmp_path: Path) -> None:
    # a challenger that calls a third as often in the middle stage: the same accounts otherwise
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    text = text.replace('name = "default"', 'name = "fewer-calls"')
    assert "to_dpd = 90\nevery_days = 7" in text
    text = text.replace("to_dpd = 90\nevery_days = 7", "to_dpd = 90\nevery_days = 21")
    challenger = tmp_path / "fewer-calls.toml"
    challenger.write_text(text, encoding="utf-8")

    out = tmp_path / "lab"
    assert main(["default", str(challenger), "--synthetic", "60", "--start", START, "--out", str(out)]) == 0

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    champion, challenger_run = report
    assert (champion["policy"], challenger_run["policy"]) == ("default", "fewer-calls")
    assert champion["accounts"] == challenger_run["accounts"] == 60
    calls = champion["totals"]["by_template"]["agent_call"]
    assert challenger_run["totals"]["by_template"]["agent_call"] < calls
    assert challenger_run["totals"]["cost"] < champion["totals"]["cost"]
    assert sum(champion["contacts_by_day"]) == champion["totals"]["contacts"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "fewer-calls" in page and "<svg" in page and "<script" not in page


def test_a_portfolio_file_with_bad_rows(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "lab"
    code = main(
        [
            "default",
            "--portfolio",
            str(root / "data/malformed_portfolio.csv"),
            "--start",
            START,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "line " in err  # each bad row reported with its line and field, then skipped
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))[0]["accounts"] > 0


def test_unknown_policy_is_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["no-such-policy", "--synthetic", "5", "--out", str(tmp_path)]) == 2
    assert "no-such-policy" in capsys.readouterr().err
