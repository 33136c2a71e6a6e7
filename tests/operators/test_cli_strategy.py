"""``./collect strategy show`` prints the split new accounts get; ``strategy promote`` rewrites the file
and audits the promotion under the operator's name, and refuses an unknown variant leaving the file
as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from runtime.cli_strategy import cmd_strategy
from runtime.settings import Settings
from starter import parser
from store.db import make_engine, session_factory
from store.models import AuditRow

STRATEGY = """name = "q1"
[champion]
variant = "control"
policy = "default"
[[challengers]]
variant = "gentle"
policy = "standard"
share = 12.5
"""


def settings_for(tmp_path: Path) -> Settings:
    path = tmp_path / "strategy.toml"
    path.write_text(STRATEGY, encoding="utf-8")
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        strategy_file=path,
        temporal_address="127.0.0.1:9",  # nothing answers: promotion without --upgrade-running needs none
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_show_prints_each_variant_with_its_policy_and_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path)
    assert await cmd_strategy(parser().parse_args(["strategy", "show"]), settings) == 0
    out = capsys.readouterr().out
    assert "control" in out and "87.5%" in out and "gentle" in out and "12.5%" in out and "standard" in out


async def test_promote_rewrites_the_file_and_audits_it_an_unknown_variant_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path)
    unknown = parser().parse_args(["strategy", "promote", "bold", "--as", "alice"])
    assert await cmd_strategy(unknown, settings) == 2
    assert "no variant 'bold'" in capsys.readouterr().err
    assert settings.strategy_file.read_text(encoding="utf-8") == STRATEGY

    promote = parser().parse_args(["strategy", "promote", "gentle", "--as", "alice"])
    assert await cmd_strategy(promote, settings) == 0
    assert "new accounts get standard" in capsys.readouterr().out
    assert await cmd_strategy(parser().parse_args(["strategy", "show"]), settings) == 0
    shown = capsys.readouterr().out
    assert "gentle" in shown and "100%" in shown and "control" not in shown
    sessions = session_factory(make_engine(settings.database_url))
    with sessions.begin() as s:
        (line,) = s.scalars(select(AuditRow).where(AuditRow.decision == "challenger_promoted")).all()
        assert (line.actor, line.rule, line.details["variant"]) == ("alice", "strategy q1", "gentle")
        assert line.details["before"] == "control 87.5% (default), gentle 12.5% (standard)"
