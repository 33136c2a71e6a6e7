"""One way every process logs: readable text for a person at a terminal, one JSON object per line for
a log shipper (``--log-format json`` or ``COLLECT_LOG_FORMAT=json``).

What goes in a line is the caller's business, and the rule is the product's: account IDs and masked
numbers only, never a name or a full phone number. The JSON form keeps the structured fields Temporal's
SDK attaches to workflow and activity lines (workflow ID, run ID, activity type), so a line can be
followed into the Temporal UI.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
#: ``LogRecord`` attributes that are not structured extras.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
#: Libraries whose INFO lines are their internals, not what the operator needs.
_QUIET = ("alembic", "httpx", "httpcore", "uvicorn.access", "twilio.http_client")


class JsonFormatter(logging.Formatter):
    """``{"at": ISO time, "level", "logger", "message", …extras}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Configure the root logger once for this process (idempotent: a second call replaces the first)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of: {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
