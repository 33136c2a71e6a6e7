"""Our code passes bandit with no medium or high finding, and every dependency is locked with its hashes
(issue 16, supply chain and code review).

A finding that is not one (a bind address inside a container, a URL the process made itself) is
marked in place with ``# nosec <id>`` and the reason beside it, so the next reader sees the decision.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from runtime.settings import ROOT

OURS = [
    "activities",
    "workflows",
    "workers",
    "service",
    "runtime",
    "store",
    "domain",
    "carrier",
    "lab",
    "idp",
    "starter.py",
]


def test_bandit_finds_nothing_of_medium_or_high_severity() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-r",
            *OURS,
            "-ll",
            "-f",
            "custom",
            "--msg-template",
            "{relpath}:{line} {test_id} {severity} {msg}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0 and not findings, "\n".join(findings) or done.stderr


# ---- the lock files ----------------------------------------------------------------------------------
def _locked(name: str) -> list[tuple[str, str, Marker | None, int]]:
    """(package, version, marker, number of hashes) for each pin of a lock file."""
    pins: list[tuple[str, str, Marker | None, int]] = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / name).read_text(encoding="utf-8")):
        head = block.split("\n", 1)[0].rstrip(" \\")
        if "==" not in head or head.startswith("#"):
            continue
        spec, _, marker = head.partition(" ; ")
        package, _, version = spec.partition("==")
        pins.append(
            (canonicalize_name(package), version, Marker(marker) if marker else None, block.count("--hash="))
        )
    return pins


def _applies(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate()


def _declared(extra: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = project["dependencies"] + (project["optional-dependencies"]["dev"] if extra else [])
    return [Requirement(r) for r in names]


def test_every_dependency_is_locked_with_its_hashes() -> None:
    for lock, extra in (("requirements.lock", False), ("requirements-dev.lock", True)):
        pins = _locked(lock)
        assert pins and all(hashes > 0 for *_, hashes in pins), f"{lock}: a pin without a hash"
        for req in _declared(extra):
            versions = [v for name, v, m, _ in pins if name == canonicalize_name(req.name) and _applies(m)]
            assert versions, f"{lock}: {req.name} is not locked (run ./collect lock)"
            assert all(req.specifier.contains(v, prereleases=True) for v in versions), (lock, req, versions)


def test_the_image_and_the_suite_lock_the_same_versions() -> None:
    dev = {(name, str(m)): v for name, v, m, _ in _locked("requirements-dev.lock")}
    for name, version, marker, _ in _locked("requirements.lock"):
        assert dev.get((name, str(marker))) == version, f"{name}: the image and the suite would differ"


def test_the_suite_runs_the_locked_versions() -> None:
    # ./collect test installs with the dev lock as constraints: what passes here is what the image ships
    for name, version, marker, _ in _locked("requirements-dev.lock"):
        if _applies(marker):
            assert metadata.version(name) == version, (
                f"{name}: installed {metadata.version(name)}, locked {version}"
            )


def test_the_image_installs_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert dockerfile.index("requirements.lock ./") < dockerfile.index("--require-hashes")


def test_pip_audit_finds_no_known_vulnerability_in_the_image() -> None:
    """OSV's advisories for every locked package of the image; skipped, saying why, where OSV cannot
    be reached (this build machine has no internet), never passed without auditing."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(ROOT / "requirements.lock"),
            "--require-hashes",
            "--disable-pip",
            "--vulnerability-service",
            "osv",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    unreachable = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")
    if run.returncode != 0 and not run.stdout.strip() and any(u in run.stderr for u in unreachable):
        pytest.skip(f"OSV not reachable from here: {run.stderr.strip().splitlines()[-1][:160]}")
    report = json.loads(run.stdout)
    found = {d["name"]: [v["id"] for v in d["vulns"]] for d in report["dependencies"] if d.get("vulns")}
    skipped = [d["name"] for d in report["dependencies"] if d.get("skip_reason")]
    assert not skipped, f"not audited: {skipped}"
    assert not found, f"known vulnerabilities: {found}"
