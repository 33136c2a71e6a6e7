"""The carrier simulator's ASGI app: Twilio's 2010-04-01 Messages and Calls API plus a control API.

Why our own simulator instead of a generic mock: the product's promises (no silent call, no
duplicate send, stop on settlement) are about what a *carrier* observes, so the tests need a
carrier that behaves like Twilio (auth, validation, error codes, status callbacks in order and
signed, TwiML fetched on answer, async machine detection) and that can be asked afterwards what
it saw. The real ``twilio`` SDK talks to it unchanged (see ``activities/twilio_client.py``).

Twilio surface (form-encoded bodies, HTTP basic auth AccountSid:AuthToken, Twilio's JSON shapes):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, ``GET .../Messages.json``,
  ``GET .../Messages/{Sid}.json``
* ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, ``GET .../Calls.json``,
  ``GET .../Calls/{Sid}.json``, ``POST .../Calls/{Sid}.json`` (Status=completed|canceled, Url, Twiml)
* lists come newest first, each item the full resource (``date_created``, ``direction``, ``body``
  ...), filtered like Twilio's by ``To`` and ``From`` (calls also ``Status``, ``ParentCallSid``).
  Twilio's time filters (``DateSent``, ``StartTime``, ``EndTime`` and their ``<``/``>`` forms) are
  refused with a 400 naming them rather than ignored: a test relying on one must not get an
  unfiltered list.

Control API (not Twilio's, no auth; the simulator only ever listens on a local address):

* ``POST /_sim/reset`` forget everything; ``GET /_sim/messages``, ``GET /_sim/calls``
  (``?to=`` filters; calls include the TwiML executed, answered_by, held_silent_seconds,
  speech_latency_seconds, silent), ``GET /_sim/callbacks`` (every webhook sent, with signature)
* ``POST /_sim/wait_idle?timeout=5``: 200 once every pending callback has been delivered, 504 if not
* ``POST /_sim/faults`` ``{"status": 500, "count": 1, "delay": 0, "commit": false, "path": "Messages"}``;
  ``GET``/``DELETE /_sim/faults``
* ``GET /_sim/stats`` (sends per (to, body), duplicates, silent calls, ...); ``GET/POST /_sim/config``

Twilio does not deduplicate requests and neither does this simulator: sending twice creates two
resources, and ``/_sim/stats`` shows it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from carrier.callbacks import CallbackDispatcher
from carrier.contract import CALL, CALLS, MESSAGE, MESSAGES, ParamError, TwilioSpec, validation_available
from carrier.lifecycle import Network, SimConfig
from carrier.outcomes import Channel, Rejection, outcome_for, sender_rejection
from carrier.store import CallRecord, Fault, MessageRecord, Rejected, SimStore, new_sid, rfc2822, utcnow

PREFIX = "/2010-04-01/Accounts/{AccountSid}"
MAX_BODY = 1600

#: Twilio error codes for a missing / invalid parameter, per operation (from Twilio's error
#: dictionary); anything else gets GENERIC_PARAM_CODE with the parameter named in the message
PARAM_CODES: dict[str, dict[str, dict[str, int]]] = {
    MESSAGES: {
        "missing": {"To": 21604, "From": 21603, "Body": 21602},
        "invalid": {"To": 21211, "From": 21212, "StatusCallback": 21609, "MediaUrl": 21620, "Body": 21617},
    },
    CALLS: {
        "missing": {"To": 21201, "From": 21213, "Url": 21205},
        "invalid": {
            "To": 21211,
            "From": 21212,
            "Url": 21205,
            "FallbackUrl": 21205,
            "StatusCallback": 21609,
            "Timeout": 21208,
            "Method": 21209,
            "Twiml": 12100,
        },
    },
    CALL: {"missing": {}, "invalid": {"Url": 21205, "Twiml": 12100, "Method": 21209}},
}
GENERIC_PARAM_CODE = 20001


class TwilioError(Exception):
    """Raised inside a handler to answer with Twilio's error JSON."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's error body: the SDK turns it into ``TwilioRestException(status, code, msg)``."""
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
        headers=headers,
    )


@dataclass
class Simulator:
    """Everything one running simulator owns; ``app.state.sim``."""

    account_sid: str
    auth_token: str
    store: SimStore
    network: Network
    dispatcher: CallbackDispatcher
    config: SimConfig
    spec: TwilioSpec | None


# --- request plumbing ----------------------------------------------------------------------------


def _authorized(request: Request, sim: Simulator) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, sim.account_sid) and hmac.compare_digest(password, sim.auth_token)


async def _form(request: Request) -> dict[str, list[str]]:
    """The form body with repeated keys kept (``StatusCallbackEvent=a&StatusCallbackEvent=b``)."""
    form: dict[str, list[str]] = {}
    for key, value in parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True):
        form.setdefault(key, []).append(value)
    return form


Handler = Callable[[Request, Simulator, dict[str, list[str]]], Awaitable[Response]]


def twilio_endpoint(operation: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Auth, account check, request counting, fault injection and error mapping around ``handler``."""

    async def endpoint(request: Request) -> Response:
        sim: Simulator = request.app.state.sim
        if not _authorized(request, sim) or request.path_params.get("AccountSid") != sim.account_sid:
            return twilio_error(401, 20003, "Authenticate")
        with sim.store.lock:
            sim.store.requests[f"{request.method} {operation}"] += 1
        form = await _form(request) if request.method == "POST" else {}
        fault = sim.store.take_fault(request.method, request.url.path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status and not fault.commit:
            return _fault_response(sim, request, form, fault.status)
        try:
            response = await handler(request, sim, form)
        except TwilioError as err:
            sim.store.add_rejected(
                Rejected(
                    request.method,
                    request.url.path,
                    err.status,
                    err.code,
                    err.message,
                    form,
                    rfc2822(utcnow()) or "",
                )
            )
            return twilio_error(err.status, err.code, err.message)
        if fault is not None and fault.status:
            return _fault_response(sim, request, form, fault.status)
        return response

    return endpoint


def _fault_response(sim: Simulator, request: Request, form: dict[str, list[str]], status: int) -> Response:
    code, message = (20429, "Too Many Requests") if status == 429 else (20500, "Internal Server Error")
    sim.store.add_rejected(
        Rejected(request.method, request.url.path, status, code, message, form, rfc2822(utcnow()) or "")
    )
    return twilio_error(status, code, message)


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _param_error(operation: str, problem: ParamError) -> TwilioError:
    codes = PARAM_CODES.get(operation, {}).get(problem.reason, {})
    code = codes.get(problem.param or "", GENERIC_PARAM_CODE)
    return TwilioError(400, code, problem.message)


def _validate(sim: Simulator, operation: str, method: str, form: dict[str, list[str]]) -> None:
    """Twilio's own request schema (when the spec is loaded): the first problem is the answer."""
    if sim.spec is None:
        return
    problems = sim.spec.validate_request(operation, method, form)
    if problems:
        raise _param_error(operation, problems[0])


def _reject(rejection: Rejection | None) -> None:
    if rejection is not None:
        raise TwilioError(rejection.status, rejection.code, rejection.message)


def _magic(channel: Channel, to: str, sender: str | None) -> None:
    if sender:
        _reject(sender_rejection(sender, channel))
    _reject(outcome_for(to).rejection(channel))


def _not_found(request: Request) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")


def _page(request: Request, key: str, items: list[dict[str, Any]]) -> JSONResponse:
    size = int(request.query_params.get("PageSize", "50"))
    path = request.url.path
    return JSONResponse(
        {
            key: items[:size],
            "end": max(0, min(size, len(items)) - 1),
            "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize={size}&Page=0",
        }
    )


# --- Messages ------------------------------------------------------------------------------------


async def create_message(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    _validate(sim, MESSAGES, "POST", form)
    to, sender = _first(form, "To"), _first(form, "From")
    service = _first(form, "MessagingServiceSid")
    body = _first(form, "Body") or ""
    media = form.get("MediaUrl", [])
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not sender and not service:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not body and not media and not _first(form, "ContentSid"):
        raise TwilioError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY:
        raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    _magic("sms", to, sender)
    now = utcnow()
    message = MessageRecord(
        sid=new_sid("MM" if media else "SM"),
        account_sid=sim.account_sid,
        to=to,
        from_=sender,
        body=body,
        media_urls=media,
        messaging_service_sid=service,
        status_callback=_first(form, "StatusCallback"),
        status="accepted" if service and not sender else "queued",
        outcome=outcome_for(to).label,
        params=form,
        date_created=now,
        date_updated=now,
    )
    sim.store.add_message(message)
    sim.network.spawn(sim.network.run_message(message, outcome_for(to)))
    return JSONResponse(message.to_twilio(), status_code=201)


async def fetch_message(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    with sim.store.lock:
        message = sim.store.messages.get(request.path_params["Sid"])
        if message is None:
            raise _not_found(request)
        return JSONResponse(message.to_twilio())


#: Twilio's list filters on when a message was sent / a call started or ended: not simulated
UNSUPPORTED_LIST_FILTERS = frozenset(
    f"{name}{op}" for name in ("DateSent", "StartTime", "EndTime") for op in ("", "<", ">")
)


def _list_filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The list filters of ``names`` present in the query; a time filter is refused (see module doc)."""
    refused = sorted(UNSUPPORTED_LIST_FILTERS & set(request.query_params))
    if refused:
        raise TwilioError(400, GENERIC_PARAM_CODE, f"the carrier simulator does not filter by {refused}")
    return {name: value for name in names if (value := request.query_params.get(name)) is not None}


async def list_messages(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    wanted = _list_filters(request, ("To", "From"))
    with sim.store.lock:
        items = [
            m.to_twilio()
            for m in reversed(sim.store.messages.values())
            if wanted.get("To", m.to) == m.to and wanted.get("From", m.from_) == m.from_
        ]
    return _page(request, "messages", items)


# --- Calls ---------------------------------------------------------------------------------------


async def create_call(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    _validate(sim, CALLS, "POST", form)
    to, sender = _first(form, "To"), _first(form, "From")
    url, twiml = _first(form, "Url"), _first(form, "Twiml")
    if not to:
        raise TwilioError(400, 21201, "No 'To' number is specified")
    if not sender:
        raise TwilioError(400, 21213, "No 'From' number is specified")
    if not url and not twiml and not _first(form, "ApplicationSid"):
        raise TwilioError(400, 21205, "Url, Twiml or ApplicationSid is required")
    _magic("call", to, sender)
    events = form.get("StatusCallbackEvent") or []
    events = [e for value in events for e in value.split()]  # Twilio also accepts "initiated ringing"
    callback = _first(form, "StatusCallback")
    timeout = _first(form, "Timeout")
    now = utcnow()
    call = CallRecord(
        sid=new_sid("CA"),
        account_sid=sim.account_sid,
        to=to,
        from_=sender,
        url=url,
        method=(_first(form, "Method") or "POST").upper(),
        twiml_inline=twiml,
        status_callback=callback,
        status_callback_events=events or (["completed"] if callback else []),
        machine_detection=_first(form, "MachineDetection") or None,
        async_amd=(_first(form, "AsyncAmd") or "").lower() == "true",
        async_amd_status_callback=_first(form, "AsyncAmdStatusCallback"),
        timeout=int(timeout) if timeout and timeout.isdigit() else 60,
        outcome=outcome_for(to).label,
        params=form,
        date_created=now,
        date_updated=now,
        history=["queued"],
    )
    sim.store.add_call(call)
    sim.network.spawn(sim.network.run_call(call, outcome_for(to)))
    return JSONResponse(call.to_twilio(), status_code=201)


async def fetch_call(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    with sim.store.lock:
        call = sim.store.calls.get(request.path_params["Sid"])
        if call is None:
            raise _not_found(request)
        return JSONResponse(call.to_twilio())


async def list_calls(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    wanted = _list_filters(request, ("To", "From", "Status", "ParentCallSid"))
    with sim.store.lock:
        items = [
            c.to_twilio()
            for c in reversed(sim.store.calls.values())
            if wanted.get("To", c.to) == c.to
            and wanted.get("From", c.from_) == c.from_
            and wanted.get("Status", c.status) == c.status
            and "ParentCallSid" not in wanted  # the simulator's calls are all parents (no <Dial>)
        ]
    return _page(request, "calls", items)


async def update_call(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    _validate(sim, CALL, "POST", form)
    call = sim.store.calls.get(request.path_params["Sid"])
    if call is None:
        raise _not_found(request)
    status, url, twiml = _first(form, "Status"), _first(form, "Url"), _first(form, "Twiml")
    if status and status not in ("completed", "canceled"):
        raise TwilioError(400, GENERIC_PARAM_CODE, f"Invalid parameter Status: {status}")
    if (url or twiml) and not status:
        if call.status != "in-progress":
            raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
        method = (_first(form, "Method") or "POST").upper()
        sim.network.spawn(sim.network.redirect(call, twiml, url, method))
    if status:
        sim.network.end_by_api(call, status)
    with sim.store.lock:
        return JSONResponse(call.to_twilio())


async def unknown_resource(request: Request, sim: Simulator, form: dict[str, list[str]]) -> Response:
    raise _not_found(request)


# --- control API ---------------------------------------------------------------------------------


async def sim_reset(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    await sim.network.cancel_all()
    sim.store.reset()
    return JSONResponse({"reset": True})


async def sim_messages(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    return JSONResponse(sim.store.message_list(request.query_params.get("to")))


async def sim_calls(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    return JSONResponse(sim.store.call_list(request.query_params.get("to")))


async def sim_callbacks(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    q = request.query_params
    return JSONResponse(sim.store.callback_list(q.get("sid"), q.get("kind")))


async def sim_rejected(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    with sim.store.lock:
        return JSONResponse([asdict(r) for r in sim.store.rejected])


async def sim_wait_idle(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    timeout = float(request.query_params.get("timeout", "5"))
    idle = await sim.network.wait_idle(timeout)
    return JSONResponse({"idle": idle, "pending": len(sim.network.tasks)}, status_code=200 if idle else 504)


async def sim_faults(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    if request.method == "DELETE":
        with sim.store.lock:
            sim.store.faults.clear()
    elif request.method == "POST":
        spec = await request.json()
        items = spec if isinstance(spec, list) else [spec]
        allowed = {f.name for f in fields(Fault)}
        with sim.store.lock:
            for item in items:
                item = dict(item)
                if "count" in item:
                    item["remaining"] = item.pop("count")
                unknown = set(item) - allowed
                if unknown:
                    return JSONResponse({"error": f"unknown fault fields {sorted(unknown)}"}, status_code=400)
                sim.store.faults.append(Fault(**item))
    with sim.store.lock:
        return JSONResponse([asdict(f) for f in sim.store.faults])


async def sim_stats(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    return JSONResponse({**sim.store.stats(), "internal_errors": list(sim.network.errors)})


async def sim_config(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    if request.method == "POST":
        changes = await request.json()
        allowed = {f.name for f in fields(SimConfig)}
        unknown = set(changes) - allowed
        if unknown:
            return JSONResponse({"error": f"unknown config fields {sorted(unknown)}"}, status_code=400)
        for name, value in changes.items():
            setattr(sim.config, name, float(value))
        sim.dispatcher.timeout = sim.config.callback_timeout
    return JSONResponse(
        {
            **asdict(sim.config),
            "spec": str(sim.spec.source) if sim.spec else None,
            "account_sid": sim.account_sid,
        }
    )


# --- factory -------------------------------------------------------------------------------------


def create_app(
    account_sid: str,
    auth_token: str,
    spec_path: str | Path | None = None,
    config: SimConfig | None = None,
) -> Starlette:
    """A simulator accepting ``account_sid``:``auth_token``; validating against the spec if given."""
    config = config or SimConfig()
    if spec_path and not validation_available():
        raise RuntimeError("spec validation needs jsonschema (pip install -e '.[dev]')")
    store = SimStore()
    dispatcher = CallbackDispatcher(auth_token, store, timeout=config.callback_timeout)
    sim = Simulator(
        account_sid=account_sid,
        auth_token=auth_token,
        store=store,
        network=Network(store, dispatcher, config),
        dispatcher=dispatcher,
        config=config,
        spec=TwilioSpec.load(spec_path) if spec_path else None,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await dispatcher.start()
        try:
            yield
        finally:
            await sim.network.cancel_all()
            await dispatcher.close()

    routes = [
        Route(f"{PREFIX}/Messages.json", twilio_endpoint(MESSAGES, create_message), methods=["POST"]),
        Route(f"{PREFIX}/Messages.json", twilio_endpoint(MESSAGES, list_messages), methods=["GET"]),
        Route(f"{PREFIX}/Messages/{{Sid}}.json", twilio_endpoint(MESSAGE, fetch_message), methods=["GET"]),
        Route(f"{PREFIX}/Calls.json", twilio_endpoint(CALLS, create_call), methods=["POST"]),
        Route(f"{PREFIX}/Calls.json", twilio_endpoint(CALLS, list_calls), methods=["GET"]),
        Route(f"{PREFIX}/Calls/{{Sid}}.json", twilio_endpoint(CALL, fetch_call), methods=["GET"]),
        Route(f"{PREFIX}/Calls/{{Sid}}.json", twilio_endpoint(CALL, update_call), methods=["POST"]),
        Route(
            f"{PREFIX}/{{rest:path}}",
            twilio_endpoint("other", unknown_resource),
            methods=["GET", "POST", "DELETE"],
        ),
        Route("/_sim/reset", sim_reset, methods=["POST"]),
        Route("/_sim/messages", sim_messages, methods=["GET"]),
        Route("/_sim/calls", sim_calls, methods=["GET"]),
        Route("/_sim/callbacks", sim_callbacks, methods=["GET"]),
        Route("/_sim/rejected", sim_rejected, methods=["GET"]),
        Route("/_sim/wait_idle", sim_wait_idle, methods=["POST"]),
        Route("/_sim/faults", sim_faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/stats", sim_stats, methods=["GET"]),
        Route("/_sim/config", sim_config, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    return app
