"""The API's number routes (``/api/accounts/{id}/contact-points``): record a lost debtor's new number,
send it a code, key in the code the debtor read out, drop a wrong one, and see how the number on file
was found and confirmed.

A recorded number is *unverified* and never used for collection until its code comes back
(``service/contact_numbers.py``). Errors name the field: a malformed or unusable number is 422 on
``phone``, a wrong code 422 on ``code`` with the tries left, a code past its 5 minutes (or not the
newest) 410, a number locked out after 5 wrong codes or asked too many codes this hour 429 with
``Retry-After``, a number that does not wait for a code (confirmed, cancelled, superseded) 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from domain.numbers import ConfirmedVia, NumberSource, NumberStatus
from service import contact_numbers as numbers
from service.api import (
    ACCOUNT_RESPONSES,
    CLOSED,
    NOT_JSON,
    AccountId,
    AppSettings,
    Reader,
    Sessions,
    Strict,
    Temporal,
    Writer,
    api_router,
)
from service.contact_numbers import Busy, CodeRefused, NotPending, NumberProblem
from store.contact_changes import Change, number_status

router = api_router()
T = TypeVar("T")
NumberId = Annotated[int, Path(ge=1, le=2**62, description="The recorded number's id")]


class NumberRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"phone": "+12125550143", "via": "sms"}]},
    )

    phone: str = Field(min_length=1, max_length=40, description="The new number, E.164 (+ and country code)")
    via: Literal["sms", "voice"] = Field(
        default="sms", description="How the code goes: a text, or a call reading it (a landline)"
    )
    case: int | None = Field(
        default=None, ge=1, le=2**31, description="The emergency contact's reply (case number) it came from"
    )


class CodeRequest(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [{"via": "voice"}]})

    via: Literal["sms", "voice"] | None = Field(default=None, description="Default: as the last code went")


class ConfirmRequest(Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"code": "042917"}]}
    )

    code: str = Field(min_length=1, max_length=20, description="The 6 digits the debtor read out")


class RecordedNumber(BaseModel):
    """A number recorded for the debtor; the number itself is never in an answer, only masked."""

    id: int
    account_id: str
    masked_phone: str
    status: Literal["pending", "confirmed", "cancelled", "superseded"] = Field(
        description="pending: unverified, never used until its code comes back"
    )
    source: NumberSource
    recorded_by: str
    case: str | None = None
    code_via: str
    codes_sent: int
    recorded_at: datetime
    code_expires_at: datetime | None = Field(
        default=None, description="When the code just sent stops working"
    )
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    confirmed_via: ConfirmedVia | None = None
    told: bool = Field(default=False, description="The account's run has heard of the confirmed number")


class Numbers(BaseModel):
    number: NumberStatus = Field(description="The number on file and how it was found and confirmed")
    recorded: list[RecordedNumber] = Field(description="Every number recorded, newest first")


def _view(change: Change, expires_at: datetime | None = None) -> RecordedNumber:
    return RecordedNumber(
        id=change.id,
        account_id=change.account_id,
        masked_phone=change.masked,
        status=change.status,  # type: ignore[arg-type]
        source=change.source,
        recorded_by=change.recorded_by,
        case=change.case,
        code_via=change.code_via,
        codes_sent=change.codes_sent,
        recorded_at=change.created_at,
        code_expires_at=expires_at,
        confirmed_at=change.confirmed_at,
        confirmed_by=change.confirmed_by,
        confirmed_via=change.confirmed_via,
        told=change.told_at is not None,
    )


def _field(status: int, field: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]},
        headers=headers or None,
    )


async def answered(work: Callable[[], Awaitable[T]]) -> T | JSONResponse:
    """``work``'s result, or the answer to what refused it (the field and why)."""
    try:
        return await work()
    except NumberProblem as exc:
        return _field(422, exc.field, f"{exc.field}: {exc.reason}")
    except Busy as exc:
        return JSONResponse(
            status_code=429,
            content={"detail": f"phone: too many codes for this number; wait {exc.seconds} s"},
            headers={"Retry-After": str(exc.seconds)},
        )
    except CodeRefused as exc:
        if exc.outcome == "locked":
            return _field(429, "code", str(exc), **{"Retry-After": str(exc.wait)})
        return _field(410 if exc.outcome == "expired" else 422, "code", str(exc))
    except NotPending as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc)})


REFUSALS: dict[int | str, dict[str, Any]] = {
    **ACCOUNT_RESPONSES,
    **NOT_JSON,
    409: {"description": "No such number waits for a code (or, for a new one, the account is closed)"},
    422: {"description": "The field that is wrong and why (phone, via, case, code)"},
    429: {"description": "5 wrong codes lock the number out; or too many codes this hour (Retry-After)"},
}


@router.get(
    "/accounts/{account_id}/contact-points",
    tags=["numbers"],
    response_model=Numbers,
    responses=ACCOUNT_RESPONSES,
    summary="The number on file, how it was found and confirmed, and every number recorded",
)
async def recorded_numbers(account_id: AccountId, _who: Reader, sessions: Sessions) -> Numbers:
    def read() -> Numbers:
        found = numbers.numbers_of(sessions, account_id)
        with sessions.begin() as s:
            status = number_status(s, account_id)
        return Numbers(number=status, recorded=[_view(c) for c in found])

    return await run_in_threadpool(read)


@router.post(
    "/accounts/{account_id}/contact-points",
    tags=["numbers"],
    status_code=201,
    response_model=RecordedNumber,
    responses={**REFUSALS, **CLOSED},
    summary="Record a new number (unverified) and send it a one-time code",
)
async def record_number(
    account_id: AccountId,
    body: NumberRequest,
    who: Writer,
    request: Request,
    client: Temporal,
    sessions: Sessions,
    settings: AppSettings,
) -> RecordedNumber | JSONResponse:
    """The number is stored *unverified*: no reminder, call or visit notice ever goes to it. It gets
    only a code (a text, or a call reading it: ``via``, or where texts cannot reach), which the debtor
    keys in on their page or reads to you (``/confirm``); then it is on file and the account's run
    hears of it. ``case``: the emergency contact's reply it came from (that case is answered)."""

    async def work() -> RecordedNumber:
        sent = await numbers.record_number(
            request.app, client, sessions, settings, account_id, body.phone,
            actor=who.name, source=NumberSource.EMERGENCY_CONTACT if body.case else NumberSource.AGENT,
            via=body.via, case_id=body.case,
        )  # fmt: skip
        return _view(sent.change, sent.expires_at)

    return await answered(work)


@router.post(
    "/accounts/{account_id}/contact-points/{number_id}/code",
    tags=["numbers"],
    status_code=202,
    response_model=RecordedNumber,
    responses=REFUSALS,
    summary="Send the pending number a new code (the previous one stops working)",
)
async def new_code(
    account_id: AccountId,
    number_id: NumberId,
    who: Writer,
    request: Request,
    sessions: Sessions,
    settings: AppSettings,
    body: CodeRequest | None = None,
) -> RecordedNumber | JSONResponse:
    async def work() -> RecordedNumber:
        sent = await numbers.send_code(
            request.app,
            sessions,
            settings,
            account_id,
            number_id,
            actor=who.name,
            via=body.via if body else None,
        )
        return _view(sent.change, sent.expires_at)

    return await answered(work)


@router.post(
    "/accounts/{account_id}/contact-points/{number_id}/confirm",
    tags=["numbers"],
    response_model=RecordedNumber,
    responses={**REFUSALS, 410: {"description": "The code no longer works: send a new one"}},
    summary="Key in the code the debtor read out: the number goes on file and contact resumes on it",
)
async def confirm_number(
    account_id: AccountId,
    number_id: NumberId,
    body: ConfirmRequest,
    who: Writer,
    client: Temporal,
    sessions: Sessions,
) -> RecordedNumber | JSONResponse:
    async def work() -> RecordedNumber:
        done = await numbers.confirm_number(
            client, sessions, account_id, number_id, body.code, actor=who.name, via=ConfirmedVia.AGENT
        )
        return _view(done)

    return await answered(work)


@router.post(
    "/accounts/{account_id}/contact-points/{number_id}/cancel",
    tags=["numbers"],
    response_model=RecordedNumber,
    responses=REFUSALS,
    summary="Drop a pending number (a wrong lead, a mistyped number): its code stops working",
)
async def cancel_number(
    account_id: AccountId, number_id: NumberId, who: Writer, sessions: Sessions
) -> RecordedNumber | JSONResponse:
    async def work() -> RecordedNumber:
        return _view(await numbers.cancel_number(sessions, account_id, number_id, actor=who.name))

    return await answered(work)
