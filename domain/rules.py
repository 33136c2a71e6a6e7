"""The rules an account runs under: its collection policy and jurisdiction profile, pinned by version.

A workflow must replay the same way for as long as its history lives, so it never reads a policy or
profile file itself: intake reads the files once, and the account's state carries the parsed models
together with a version (the file's name and a digest of its bytes). Editing a file therefore changes
only accounts taken in afterwards; moving running accounts to a new version is an explicit, audited
operator action (``./collect policy upgrade``), applied by each workflow at its next safe point.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from domain.policy import POLICY_DIR, Policy, parse_policy
from domain.profiles import PROFILE_DIR, Profile, parse_profile


def version_of(name: str, text: str) -> str:
    """``name@digest``: the first 12 hex digits of the SHA-256 of the file's bytes."""
    return f"{name}@{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


class Rules(BaseModel):
    """A policy and a profile, parsed, with the versions they were read as."""

    model_config = ConfigDict(frozen=True)

    policy: Policy
    profile: Profile
    policy_version: str
    profile_version: str

    @property
    def versions(self) -> str:
        return f"{self.policy_version}, {self.profile_version}"


class RuleSource(BaseModel):
    """One version of a policy or profile file: what the version table stores."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "policy" or "profile"
    name: str
    version: str
    text: str


def policy_path(name: str, directory: Path | None = None) -> Path:
    return (directory or POLICY_DIR) / f"{name}.toml"


def profile_path(name: str, directory: Path | None = None) -> Path:
    return (directory or PROFILE_DIR) / f"{name.lower()}.toml"


def read_source(kind: str, name: str, directory: Path | None = None) -> RuleSource:
    """The file as it is now; ``ValueError`` naming the file when it is missing or invalid."""
    path = policy_path(name, directory) if kind == "policy" else profile_path(name, directory)
    if not path.is_file():
        raise ValueError(f"{kind} {name!r} not found at {path}")
    text = path.read_text(encoding="utf-8")
    parse(kind, text, source=str(path))  # refuse an invalid file here, with its field named
    return RuleSource(kind=kind, name=name, version=version_of(name, text), text=text)


def parse(kind: str, text: str, *, source: str) -> Policy | Profile:
    if kind == "policy":
        return parse_policy(text, source=source)
    if kind == "profile":
        return parse_profile(text, source=source)
    raise ValueError(f"kind must be 'policy' or 'profile', not {kind!r}")


def rules_from(policy: RuleSource, profile: RuleSource) -> Rules:
    parsed_policy = parse_policy(policy.text, source=policy.version)
    parsed_profile = parse_profile(profile.text, source=profile.version)
    return Rules(
        policy=parsed_policy,
        profile=parsed_profile,
        policy_version=policy.version,
        profile_version=profile.version,
    )


def current_rules(policy: str, profile: str, *, directory: Path | None = None) -> Rules:
    """The rules as the files say today (what intake pins on a new account).

    Parsed once per version of the files: a file edited while a process runs is read again.
    """
    policy_dir = directory
    profile_dir = directory / "profiles" if directory else None
    key = (
        _stamp(policy_path(policy, policy_dir)),
        _stamp(profile_path(profile, profile_dir)),
        policy,
        profile,
    )
    cached = _CACHE.get(key)
    if cached is None:
        cached = rules_from(
            read_source("policy", policy, policy_dir), read_source("profile", profile, profile_dir)
        )
        _CACHE[key] = cached
    return cached


_CACHE: dict[tuple[object, ...], Rules] = {}


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)
