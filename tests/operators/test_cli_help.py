"""The command line explains itself: every command has a one-line help and an example that really parses."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from starter import COMMANDS, EXAMPLES, parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_an_example_that_parses(command: str) -> None:
    args = parser().parse_args(shlex.split(EXAMPLES[command]))
    assert args.command == command


def test_help_lists_every_command_with_its_purpose_and_examples() -> None:
    done = subprocess.run(
        [sys.executable, "starter.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    listed = {
        line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ") and line.split()
    }
    assert set(COMMANDS) <= listed
    for command in COMMANDS:
        assert f"./collect {EXAMPLES[command]}" in done.stdout


def test_a_command_help_ends_with_its_example() -> None:
    done = subprocess.run(
        [sys.executable, "starter.py", "intake", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.rstrip().endswith(f"./collect {EXAMPLES['intake']}")
    assert "--decimal-comma" in done.stdout and "--encoding" in done.stdout
