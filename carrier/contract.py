"""Twilio's own OpenAPI description of the 2010-04-01 API, turned into request/response validators.

Why: a simulator that accepts whatever we send proves nothing about Twilio. Twilio publishes the
API's OpenAPI document in the npm package ``@twilio/cli-core``
(``src/services/twilio-api/twilio_api_v2010.json``; ``scripts/fetch_twilio_spec.sh`` installs a
pinned version into ``.cache/npm``). With it the simulator refuses any request body that Twilio's
schema would refuse, and the tests check that every parameter we send still exists upstream, so a
renamed or retyped parameter fails here instead of in production.

Twilio bodies are ``application/x-www-form-urlencoded``: every value arrives as text. Before
validation each value is coerced by the type its schema declares (``Timeout=25`` → 25,
``Record=true`` → True, repeated ``StatusCallbackEvent`` keys → a list), the way Twilio parses them.
OpenAPI 3.0's ``nullable`` becomes a JSON-Schema ``null`` type, ``$ref`` is inlined, and Twilio's
custom formats (``phone-number``, ``endpoint``, ``uri``, ``twiml``) get checkers:
numbers must be E.164 (what the product always sends), URLs absolute http(s), TwiML a well-formed
``<Response>`` document. Parameters the schema does not declare are reported as unknown.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from defusedxml import ElementTree  # TwiML from the network: no entity expansion, no DTDs

if TYPE_CHECKING:
    from jsonschema import FormatChecker

SPEC_ENV = "TWILIO_OPENAPI_SPEC"
#: pinned in scripts/fetch_twilio_spec.sh
SPEC_PACKAGE = "@twilio/cli-core"
SPEC_IN_PACKAGE = Path("src/services/twilio-api/twilio_api_v2010.json")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC_PATH = REPO_ROOT / ".cache" / "npm" / "node_modules" / SPEC_PACKAGE / SPEC_IN_PACKAGE

MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
CALL = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"

Reason = Literal["missing", "invalid", "unknown"]


def spec_path_from_env() -> Path:
    """Where the spec should be: ``$TWILIO_OPENAPI_SPEC`` if set, else the default under ``.cache/npm``."""
    configured = os.environ.get(SPEC_ENV)
    return Path(configured) if configured else DEFAULT_SPEC_PATH


def validation_available() -> bool:
    """jsonschema is a dev dependency: a runtime-only install serves without spec validation."""
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


def find_spec() -> Path | None:
    """The spec file if it is present, else None (callers decide whether that is an error)."""
    path = spec_path_from_env()
    return path if path.is_file() else None


@dataclass(frozen=True)
class ParamError:
    """One problem with one request parameter (``param`` None: the body as a whole)."""

    param: str | None
    reason: Reason
    message: str


# --- Twilio's custom string formats -------------------------------------------------------------

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_CHANNEL_PREFIX = re.compile(r"^(whatsapp|messenger|rcs|mms|sms):", re.IGNORECASE)


def _is_phone_number(value: object) -> bool:
    if not isinstance(value, str):
        return True
    bare = _CHANNEL_PREFIX.sub("", value)
    return bool(_E164.match(bare) or _ALPHA_SENDER.match(bare))


def _is_endpoint(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_E164.match(value) or re.match(r"^(client:[\w.\-]+|sip:\S+@\S+)$", value))


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_twiml(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        root = ElementTree.fromstring(value)
    except ElementTree.ParseError:
        return False
    return root.tag == "Response"


@lru_cache(maxsize=1)
def format_checker() -> FormatChecker:
    """Only Twilio's formats are checked (jsonschema is imported lazily: it is a dev dependency)."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("phone-number")(_is_phone_number)
    checker.checks("endpoint")(_is_endpoint)
    checker.checks("uri")(_is_uri)
    checker.checks("twiml")(_is_twiml)
    return checker


# --- OpenAPI 3.0 → JSON Schema ------------------------------------------------------------------

_DROP = {"description", "example", "examples", "nullable", "readOnly", "writeOnly", "deprecated", "xml"}


def _convert(node: Any, document: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline ``$ref``s and translate OpenAPI-only keywords, so plain Draft 7 can validate."""
    if depth > 32:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    if isinstance(node, list):
        return [_convert(item, document, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _convert(target, document, depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, document, depth + 1) for name, sub in value.items()}
        elif key in ("items", "not", "additionalProperties", "allOf", "anyOf", "oneOf"):
            out[key] = _convert(value, document, depth + 1)
        else:
            out[key] = value
    if node.get("x-twilio", {}).get("ignoreFormat"):
        out.pop("format", None)
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    return {t} if isinstance(t, str) else set(t or ())


def _coerce_scalar(value: str, schema: Mapping[str, Any]) -> object:
    types = _types(schema)
    if "integer" in types and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if "boolean" in types and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


class TwilioSpec:
    """Validators for the operations of one loaded copy of Twilio's 2010-04-01 OpenAPI document."""

    def __init__(self, document: Mapping[str, Any], source: Path | None = None) -> None:
        self.document = document
        self.source = source
        self._request: dict[tuple[str, str], dict[str, Any]] = {}
        self._response: dict[tuple[str, str, str], dict[str, Any]] = {}

    @classmethod
    def load(cls, path: str | Path) -> TwilioSpec:
        """Load (and cache by path and mtime: the file is 1.9 MB) the spec at ``path``."""
        p = Path(path).resolve()
        return _load_cached(str(p), p.stat().st_mtime_ns)

    @property
    def version(self) -> str:
        return str(self.document.get("info", {}).get("version", "?"))

    def operation(self, path: str, method: str) -> Mapping[str, Any]:
        try:
            return self.document["paths"][path][method.lower()]
        except KeyError as exc:
            raise KeyError(f"the spec has no operation {method.upper()} {path}") from exc

    def request_schema(self, path: str, method: str) -> dict[str, Any]:
        """The form body's JSON schema (an empty object schema when the operation takes no body)."""
        key = (path, method.lower())
        if key not in self._request:
            body = self.operation(path, method).get("requestBody", {})
            content = body.get("content", {}).get("application/x-www-form-urlencoded", {})
            raw = content.get("schema", {"type": "object", "properties": {}})
            self._request[key] = _convert(raw, self.document)
        return self._request[key]

    def request_parameters(self, path: str, method: str) -> set[str]:
        """Every form parameter name the operation accepts."""
        return set(self.request_schema(path, method).get("properties", {}))

    def query_parameters(self, path: str, method: str) -> set[str]:
        """Every query parameter the operation accepts (a list's filters, ``PageSize`` ...)."""
        parameters = self.operation(path, method).get("parameters", [])
        resolved = [_convert(p, self.document) for p in parameters]
        return {p["name"] for p in resolved if p.get("in") == "query"}

    def list_item_fields(self, path: str) -> set[str]:
        """The fields of each resource a list (``GET`` on ``path``) returns."""
        properties = self.response_schema(path, "GET").get("properties", {})
        items = [p["items"] for p in properties.values() if p.get("type") == "array" and "items" in p]
        if len(items) != 1:
            raise KeyError(f"GET {path} does not answer with one list of resources")
        return set(items[0].get("properties", {}))

    def response_schema(self, path: str, method: str, status: int | str | None = None) -> dict[str, Any]:
        """The JSON schema of the operation's success response (the first 2xx when status is None)."""
        responses = self.operation(path, method)["responses"]
        code = str(status) if status is not None else next(c for c in responses if c.startswith("2"))
        key = (path, method.lower(), code)
        if key not in self._response:
            raw = responses[code]["content"]["application/json"]["schema"]
            self._response[key] = _convert(raw, self.document)
        return self._response[key]

    def response_fields(self, path: str, method: str) -> set[str]:
        return set(self.response_schema(path, method).get("properties", {}))

    def coerce_form(self, path: str, method: str, form: Mapping[str, list[str]]) -> dict[str, object]:
        """Form values (always lists of text) → typed values, as Twilio reads them."""
        properties = self.request_schema(path, method).get("properties", {})
        typed: dict[str, object] = {}
        for name, values in form.items():
            schema = properties.get(name, {})
            if "array" in _types(schema):
                item = schema.get("items", {})
                typed[name] = [_coerce_scalar(v, item) for v in values]
            elif len(values) == 1:
                typed[name] = _coerce_scalar(values[0], schema)
            else:
                typed[name] = list(values)  # a repeated scalar: the type check reports it
        return typed

    def validate_request(self, path: str, method: str, form: Mapping[str, list[str]]) -> list[ParamError]:
        """Every problem Twilio's request schema finds in a form body, in parameter order."""
        schema = self.request_schema(path, method)
        properties = schema.get("properties", {})
        instance = self.coerce_form(path, method, form)
        problems: list[ParamError] = [
            ParamError(name, "unknown", f"Unknown parameter: {name}")
            for name in form
            if name not in properties
        ]
        from jsonschema import Draft7Validator

        validator = Draft7Validator(schema, format_checker=format_checker())
        for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path]):
            if error.validator == "required" and not error.path:
                for name in error.validator_value:
                    if name not in instance:
                        problems.append(ParamError(name, "missing", f"Missing required parameter {name}"))
            elif error.path:
                name = str(error.path[0])
                problems.append(ParamError(name, "invalid", f"Invalid parameter {name}: {error.message}"))
            else:
                problems.append(ParamError(None, "invalid", error.message))
        return problems

    def validate_response(self, path: str, method: str, body: object, status: int | None = None) -> list[str]:
        """Problems of a response body against the spec (used to keep the simulator honest)."""
        from jsonschema import Draft7Validator

        validator = Draft7Validator(
            self.response_schema(path, method, status), format_checker=format_checker()
        )
        return [f"{'/'.join(map(str, e.path)) or '<body>'}: {e.message}" for e in validator.iter_errors(body)]


@lru_cache(maxsize=4)
def _load_cached(path: str, _mtime: int) -> TwilioSpec:
    with open(path, encoding="utf-8") as fh:
        return TwilioSpec(json.load(fh), Path(path))
