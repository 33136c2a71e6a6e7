"""The debtors' data and the demo's secrets on disk are the service user's alone (issue 16, finding 9).

Found: ``var/secrets.json`` was written world-readable and chmod-ed afterwards, ``var/collect.db``
kept the umask's 0644, and ``.env`` (where production puts its tokens and keys) was not git-ignored.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from runtime.local_secrets import with_demo_secrets
from runtime.settings import ROOT, Settings
from store.db import dispose_engine, make_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive usual umask: whatever is private here is private by our doing."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_state_directory_and_the_demo_secrets_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    var = tmp_path / "var"
    settings, made = with_demo_secrets(Settings(_env_file=None), var)  # type: ignore[call-arg]
    assert made and settings.link_secret is not None
    assert mode(var) == 0o700
    assert mode(var / "secrets.json") == 0o600
    # an older release's file, world-readable, is tightened on the next start
    (var / "secrets.json").chmod(0o644)
    with_demo_secrets(Settings(_env_file=None), var)  # type: ignore[call-arg]
    assert mode(var / "secrets.json") == 0o600


def test_the_sqlite_database_is_created_owner_only(tmp_path: Path, open_umask: None) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'collect.db'}"
    try:
        with make_engine(url).connect() as conn:
            conn.execute(text("create table t (x int)"))
    finally:
        dispose_engine(url)
    assert mode(tmp_path / "state" / "collect.db") == 0o600


def test_dot_env_is_never_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env is not git-ignored"
    assert example.returncode == 1, ".env.example (no secrets, documents the settings) must stay tracked"


def test_the_demo_tokens_are_long_and_short_old_ones_are_replaced(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "secrets.json").write_text('{"link_secret": "x", "tokens": {"agent": "demo-agent-short"}}')
    settings, made = with_demo_secrets(Settings(_env_file=None), var)  # type: ignore[call-arg]
    assert set(made) == {"agent", "supervisor", "auditor"}
    assert all(len(token) >= 32 for token in made.values())
    assert "demo-agent-short" not in settings.api_tokens
