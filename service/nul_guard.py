"""No NUL character gets past the door: a request carrying one is 422, naming where it was.

PostgreSQL's ``text`` and ``jsonb`` cannot hold the NUL character (``\\x00``), so a complaint reason,
a note or a reference carrying one reached the database and came back as a 500, with nothing to tell
the caller which field was wrong (the API schema test's fuzzing found it). The request models are
many (the JSON API, the console's and the debtor's forms, the agencies' calls), and one forgotten
model was enough, so the check is here, once, before any route reads the request: the path, the
query string, and a JSON or URL-encoded form body (a multipart upload passes on: the CSV intake
reports its own bad rows). Only a body that carries a NUL in some encoding is parsed
here; any other passes through untouched, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers

REASON = "must not contain control characters: a NUL (\\x00) cannot be stored"
#: How a NUL can look in a body: raw, JSON-escaped, percent-encoded
MARKS = (b"\x00", b"\\u0000", b"%00")


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every key and string of a JSON document, with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def nul_in_json(body: bytes) -> list[str | int] | None:
    """Where in a JSON body a NUL is (None: nowhere, or not JSON, which the route refuses itself)."""
    if not any(mark in body for mark in MARKS[:2]):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    for path, text in _strings(document):
        if "\x00" in text:
            return list(path)
    return None


def nul_in_form(encoded: bytes) -> str | None:
    """The first field of a URL-encoded form or query string whose name or value holds a NUL."""
    if not any(mark in encoded for mark in (MARKS[0], MARKS[2])):
        return None
    for name, value in parse_qsl(encoded.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "?"
    return None


class RefuseNul:
    """ASGI middleware: 422 for a NUL in the path, the query string or a JSON or URL-encoded body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await _refuse(send, ["path"])
            return
        if (field := nul_in_form(scope.get("query_string", b""))) is not None:
            await _refuse(send, ["query", field])
            return
        kind = Headers(scope=scope).get("content-type", "").lower()
        if scope.get("method") not in ("POST", "PUT", "PATCH") or not (
            "json" in kind or "x-www-form-urlencoded" in kind
        ):
            await self.app(scope, receive, send)
            return
        messages, chunks = [], []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        where: list[str | int] | None
        if "json" in kind:
            where = nul_in_json(body)
        else:
            where = [field] if (field := nul_in_form(body)) is not None else None
        if where is not None:
            await _refuse(send, ["body", *where])
            return
        pending = iter(messages)

        async def replay() -> Any:
            message = next(pending, None)
            return message if message is not None else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Any, loc: list[str | int]) -> None:
    """The same shape as FastAPI's own 422, so a caller handles one kind of validation error."""
    body = json.dumps({"detail": [{"type": "value_error", "loc": loc, "msg": REASON}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
