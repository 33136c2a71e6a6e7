"""Readable validation errors: ``field.path: reason``, one per line, for people editing files."""

from __future__ import annotations

from pydantic import ValidationError


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "(document)", err["msg"]) for err in exc.errors()]


def describe(exc: Exception, source: str) -> str:
    if isinstance(exc, ValidationError):
        return f"{source}: " + "; ".join(f"{field}: {msg}" for field, msg in field_errors(exc))
    return f"{source}: {exc}"
