"""The account page's actions: every decision an operator takes on one account, as a console form.

Pause and resume, file and decide a complaint, file and verify a dispute, cease contact, record a new
number and key in the code the debtor reads out, recall from an agency, close (a write-off's four eyes
included) and reopen. Why it is built this way:

* **One route per action, one line each in the access table** (:data:`service.access.ACCESS`), with
  the grant the API's route for the same action requires: ``write`` for holds and decisions on them,
  ``approve`` for recall, closing and reopening (the API's ``/placements/{id}/recall`` and
  ``/accounts/{id}/closure`` are a supervisor's). The handler reads its grant from that table, so a
  page and the API cannot disagree about who may.
* **No second implementation.** Each form is validated with the API's own body model for the action
  (the same bounds; a refusal names the field and the reason) and then calls the function the API and
  the command line call (:mod:`service.holds`, :func:`service.write_offs.close_for`,
  :func:`runtime.operator_actions.reopen_account`), with the signed-in person's name: the audit log
  shows who did it whichever screen they used.
* **CSRF-checked like every console form** (:func:`service.console._posted`); a success redirects to
  the account page (post/redirect/get), which shows the new holds, mode and the latest decisions with
  their names; a refusal shows the page again with the reason and the form as it was posted.

Adding an action is a function here decorated with :func:`action`, a line in the access table, a
notice in :data:`service.console.NOTICES` and a form in ``templates/console/_actions.html``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from domain.accounts import Channel
from domain.agencies import CloseRequest, RecallRequest
from domain.numbers import ConfirmedVia, NumberSource
from runtime.operator_actions import Refused, reopen_account
from service import contact_numbers as numbers
from service import holds, write_offs
from service import operations as ops
from service.access import rule_for
from service.api_holds import (
    ComplaintDecisionRequest,
    ComplaintRequest,
    DisputeRequest,
    ReasonRequest,
    VerificationRequest,
)
from service.auth import Principal
from service.console import PREFIX, _account_page, _posted, _unavailable
from service.state import app_sessions, app_settings, temporal_client

router = APIRouter()
Body = TypeVar("Body", bound=BaseModel)
#: an action: (request, who, account id, posted form) → the key of the notice to show afterwards
Act = Callable[[Request, Principal, str, FormData], Awaitable[str]]
CEASE_CHOICES = ("all", "sms", "voice")


class FormProblems(Exception):
    """The posted form is wrong: one ``field: reason`` line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _said(error: Any) -> str:
    return "is required" if error["type"] == "missing" else str(error["msg"])


def body(model: type[Body], form: FormData, *fields: str, **fixed: Any) -> Body:
    """The posted ``fields`` as the API's body model, so the console takes exactly what the API takes.

    Values are trimmed and a blank one is left out (the model's default, or "is required"); ``fixed``
    are defaults a posted value overrides. Only the named fields are read: a form cannot set who acts."""
    data: dict[str, Any] = dict(fixed)
    for name in fields:
        if value := str(form.get(name, "")).strip():
            data[name] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormProblems(
            [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {_said(e)}" for e in exc.errors()]
        ) from None


def action(path: str) -> Callable[[Act], Act]:
    """Serve ``act`` at ``POST /console/accounts/{id}/<path>``: the grant from the access table,
    the CSRF check, and each refusal as the account page with the reason."""

    def register(act: Act) -> Act:
        async def handler(request: Request, account_id: str) -> Response:
            rule = rule_for(request)  # checked before the route runs; the strictest grant were it missing
            posted = await _posted(request, rule.grant if rule is not None and rule.grant else "approve")
            if isinstance(posted, Response):
                return posted
            who, form = posted

            async def again(problems: list[str], status_code: int) -> Response:
                return await _account_page(
                    request, who, account_id, form=form, errors=problems, failed=path, status_code=status_code
                )

            try:
                notice = await act(request, who, account_id, form)
            except ops.AccountNotFound as exc:
                return _unavailable(request, who, exc)
            except FormProblems as exc:
                return await again(exc.problems, 422)
            except ops.AccountClosed as exc:
                return await again([exc.reason], 409)
            except (ops.NothingToDecide, ops.NotPlaced, Refused) as exc:
                return await again([str(exc)], 409)
            target = f"{PREFIX}/accounts/{quote(account_id)}?notice={notice}"
            return RedirectResponse(target, status_code=303)

        handler.__name__ = f"console_{path.replace('/', '_')}"
        handler.__doc__ = act.__doc__
        router.add_api_route(
            f"{PREFIX}/accounts/{{account_id}}/{path}", handler, methods=["POST"], include_in_schema=False
        )
        return act

    return register


# ---- holds -------------------------------------------------------------------------------------------
@action("pause")
async def pause(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """An operator hold: no contact until it is resumed."""
    reason = body(ReasonRequest, form, "reason", reason=f"paused by {who.name} from the console").reason
    await holds.pause(
        await temporal_client(request), account_id, reason, who.name, sessions=app_sessions(request)
    )
    return "paused"


@action("resume")
async def resume(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Lift an operator pause (or a plan request's wait)."""
    reason = body(ReasonRequest, form, "reason", reason=f"resumed by {who.name} from the console").reason
    await holds.resume(
        await temporal_client(request), account_id, reason, who.name, sessions=app_sessions(request)
    )
    return "resumed"


@action("complaint")
async def file_complaint(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """A complaint (the debtor's, a regulator's …): contact stops at once until it is decided."""
    filed = body(ComplaintRequest, form, "reason", "source")
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.file_complaint(
        client, account_id, filed.reason, who.name, source=filed.source, sessions=sessions,
        settings=app_settings(request), channel="console",
    )  # fmt: skip
    return "complaint_filed"


@action("complaint/decision")
async def decide_complaint(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """The investigator's decision on the open complaint: resume collection, or close (upheld)."""
    decided = body(ComplaintDecisionRequest, form, "decision", "note")
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.resolve_complaint(
        client, account_id, decided.decision, decided.note, who.name, sessions=sessions
    )
    return f"complaint_{decided.decision}"


@action("dispute")
async def file_dispute(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """The debt is disputed: no collection until it is verified."""
    filed = body(DisputeRequest, form, "reason")
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.file_dispute(
        client, account_id, filed.reason, who.name, sessions=sessions, settings=app_settings(request),
        channel="console",
    )  # fmt: skip
    return "dispute_filed"


@action("dispute/verification")
async def verify_dispute(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """The verification was sent to the debtor: the dispute hold lifts."""
    verified = body(VerificationRequest, form, "note")
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.verify_dispute(client, account_id, verified.note, who.name, sessions=sessions)
    return "dispute_verified"


@action("cease")
async def cease(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Stop contact for good: on one medium (``sms``, ``voice``) or on every channel (``all``).

    The choice is required here (the API's body takes no channel as "all"): a blank form must not stop
    every channel by accident."""
    choice = str(form.get("channel", "")).strip()
    if choice not in CEASE_CHOICES:
        raise FormProblems(
            [f"channel: {'choose ' if not choice else f'{choice!r} is not '}all, sms or voice"]
        )
    channel = None if choice == "all" else Channel(choice)
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.cease(client, account_id, channel, who.name, sessions=sessions)
    return "ceased"


# ---- a lost debtor's new number (service/contact_numbers.py) -------------------------------------------
def _change_id(form: FormData) -> int:
    raw = str(form.get("change", "")).strip()
    if not raw.isdigit():
        raise FormProblems(["change: which new number? (is required)"])
    return int(raw)


async def _number_step(work: Awaitable[Any]) -> Any:
    """The number functions' refusals as the account page's: the field and why, or 409."""
    try:
        return await work
    except numbers.NumberProblem as exc:
        raise FormProblems([f"{exc.field}: {exc.reason}"]) from None
    except numbers.Busy as exc:
        raise FormProblems(
            [f"phone: too many codes for this number; wait {max(1, exc.seconds // 60)} min"]
        ) from None
    except numbers.CodeRefused as exc:
        raise FormProblems([exc.sentence()]) from None
    except numbers.NotPending as exc:
        raise ops.NothingToDecide(str(exc)) from None


@action("number")
async def record_number(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """A new number the debtor gave (or an emergency contact's lead, ``case``): stored unverified, a code
    sent to it at once; never used for collection until the code is keyed in."""
    phone = str(form.get("phone", "")).strip()
    via = str(form.get("via", "sms")).strip() or "sms"
    case = str(form.get("case", "")).strip()
    problems = [] if phone else ["phone: is required"]
    if via not in ("sms", "voice"):
        problems.append(f"via: {via!r} is not sms or voice")
    if case and not case.isdigit():
        problems.append(f"case: {case!r} is not a case number")
    if problems:
        raise FormProblems(problems)
    source = NumberSource.EMERGENCY_CONTACT if case else NumberSource.AGENT
    await _number_step(
        numbers.record_number(
            request.app, await temporal_client(request), app_sessions(request), app_settings(request),
            account_id, phone, actor=who.name, source=source, via=via, case_id=int(case) if case else None,
        )
    )  # fmt: skip
    return "number_recorded"


@action("number/code")
async def number_code(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """A new code for the number that waits (the debtor is on the phone now; the last one expired)."""
    via = str(form.get("via", "")).strip() or None
    if via not in (None, "sms", "voice"):
        raise FormProblems([f"via: {via!r} is not sms or voice"])
    await _number_step(
        numbers.send_code(
            request.app, app_sessions(request), app_settings(request), account_id, _change_id(form),
            actor=who.name, via=via,
        )
    )  # fmt: skip
    return "number_code_sent"


@action("number/confirm")
async def confirm_number(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """The code the debtor read out on the phone: the number goes on file, contact resumes on it."""
    code = str(form.get("code", "")).strip()
    if not code:
        raise FormProblems(["code: is required"])
    await _number_step(
        numbers.confirm_number(
            await temporal_client(request), app_sessions(request), account_id, _change_id(form), code,
            actor=who.name, via=ConfirmedVia.AGENT,
        )
    )  # fmt: skip
    return "number_confirmed"


@action("number/cancel")
async def cancel_number(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Drop the number that waits (a wrong lead, a mistyped number): its code stops working."""
    await _number_step(
        numbers.cancel_number(app_sessions(request), account_id, _change_id(form), actor=who.name)
    )
    return "number_cancelled"


# ---- supervisors: recall, close, reopen ----------------------------------------------------------------
@action("recall")
async def recall(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Take a placed account back from its agency."""
    order = body(RecallRequest, form, "reason")
    client, sessions = await temporal_client(request), app_sessions(request)
    await holds.recall(client, account_id, order.reason, who.name, sessions=sessions)
    return "recalled"


@action("close")
async def close(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Close for a reason the workflow cannot see; a write-off waits for a second supervisor."""
    order = body(CloseRequest, form, "reason", "note")
    client, sessions = await temporal_client(request), app_sessions(request)
    done = await write_offs.close_for(client, sessions, account_id, order.reason, order.note, who.name)
    return "write_off_requested" if done["status"] == "awaiting_second_supervisor" else "closing"


class ReopenForm(BaseModel):
    """Why a closed account's collection starts again (the command line's ``reopen --reason``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=500)


@action("reopen")
async def reopen(request: Request, who: Principal, account_id: str, form: FormData) -> str:
    """Restart a closed account's collection on purpose: from the stored balance, under today's rules."""
    reason = body(ReopenForm, form, "reason").reason
    settings = app_settings(request)
    await reopen_account(
        await temporal_client(request),
        app_sessions(request),
        account_id,
        reason=reason,
        actor=who.name,
        task_queue=settings.task_queue,
        contact_queue=settings.contact_task_queue,
        day_seconds=settings.day_seconds,
    )
    return "reopened"
