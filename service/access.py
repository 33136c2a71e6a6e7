"""Who may call each route: one table for the whole application, checked before any route runs.

Every route is in :data:`ACCESS` (``tests/service/test_access.py`` enumerates the app's routes and
fails on one that is missing, and calls every protected route without credentials). A route not in
the table is refused (deny by default), so a new route is closed until someone decides who may use it.

The console's cookie is accepted only where the table says so (the console's pages, the dashboard, the
codec the Temporal UI calls from the operator's browser): the API, the agency API and the operations
endpoints take bearer tokens only, so a page of another site can never ride on a signed-in browser
to them. A client refused for want of credentials too often (``refusals_per_minute``) waits (429).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import HTTPException, Request


@dataclass(frozen=True)
class Rule:
    """``grant``: what the caller must be allowed (None: anyone, for the reason in ``why``)."""

    grant: str | None
    cookie: bool = False  # the console session is accepted (browser pages)
    bearer: bool = True  # an API token is accepted
    page: bool = False  # a console page: without a session, the sign-in page instead of 401
    why: str = ""


def public(why: str) -> Rule:
    return Rule(grant=None, bearer=False, why=why)


def api(grant: str) -> Rule:
    return Rule(grant=grant)


def console(grant: str) -> Rule:
    return Rule(grant=grant, cookie=True, bearer=False, page=True)


def browser(grant: str) -> Rule:
    """A route a browser calls with the console session and a machine with a token."""
    return Rule(grant=grant, cookie=True)


TWILIO = "Twilio's X-Twilio-Signature is verified (service/webhooks.py); forged requests get 403"
LINK = (
    "the signed link of a text opens a debtor session and shows nothing by itself (service/debtor_signin.py)"
)
CODE = (
    "a one-time code to the number on file, checked in the browser that asked; the same answer for a "
    "number on no account; limited per number and address, locked after 5 wrong tries (service/code_signin.py)"
)
DEBTOR = "the debtor's session cookie, CSRF token on posts; nothing about a debt until verified"
VERIFIED = "a debtor session verified by the date of birth on file, with its CSRF token"
CHECKOUT = "the provider's Stripe-Signature is verified (service/checkout/webhook.py); a bad one is 400"
SIMULATOR = "the checkout simulator: answers only in development without a Stripe key; it takes no money"

ACCESS: dict[tuple[str, str], Rule] = {
    # FastAPI's own description of the API: no data
    ("GET", "/openapi.json"): public("the API's description, no data"),
    ("GET", "/docs"): public("the API's description, no data"),
    ("GET", "/docs/oauth2-redirect"): public("the API's description, no data"),
    ("GET", "/redoc"): public("the API's description, no data"),
    ("GET", "/healthz"): public("liveness for the container healthcheck: no database, no data"),
    ("GET", "/static/{name}"): public("the console's stylesheet and scripts"),
    # Twilio's callbacks
    ("POST", "/webhooks/twilio/message-status"): public(TWILIO),
    ("POST", "/webhooks/twilio/call-status"): public(TWILIO),
    ("POST", "/webhooks/twilio/amd"): public(TWILIO),
    ("POST", "/webhooks/twilio/gather"): public(TWILIO),
    ("POST", "/webhooks/twilio/sms"): public(TWILIO),
    ("GET", "/webhooks/twilio/message-status"): public(TWILIO),
    ("GET", "/webhooks/twilio/call-status"): public(TWILIO),
    ("GET", "/webhooks/twilio/amd"): public(TWILIO),
    ("GET", "/webhooks/twilio/gather"): public(TWILIO),
    ("GET", "/webhooks/twilio/sms"): public(TWILIO),
    # the debtor's own pages
    ("GET", "/me"): public("the debtor's landing page: a form asking for a number, shows no account"),
    ("POST", "/me/code"): public(CODE),
    ("GET", "/me/code"): public("where a sign-in code is typed in; shows nothing about any account"),
    ("POST", "/me/code/verify"): public(CODE),
    ("GET", "/me/{token}"): public(LINK),
    ("GET", "/me/account"): public(DEBTOR),
    ("POST", "/me/verify"): public(DEBTOR),
    ("POST", "/me/request-plan"): public(VERIFIED),
    ("POST", "/me/promise"): public(VERIFIED),
    ("POST", "/me/sign-out"): public(DEBTOR),
    ("POST", "/me/sign-out-everywhere"): public(VERIFIED),
    ("POST", "/me/pay"): public(VERIFIED),
    ("POST", "/me/complaint"): public(VERIFIED),
    ("POST", "/me/dispute"): public(VERIFIED),
    ("GET", "/me/paid/{checkout_id}"): public(VERIFIED),
    ("GET", "/me/number"): public(VERIFIED),
    ("POST", "/me/number"): public(
        VERIFIED
        + "; a code to the new number, limited per number like sign-in codes (service/debtor_number.py)"
    ),
    ("POST", "/me/number/code"): public(VERIFIED),
    ("POST", "/me/number/confirm"): public(VERIFIED + "; 5 wrong codes lock the number out"),
    # the payment provider's webhook, and our checkout simulator (development only: no key, not production)
    ("POST", "/webhooks/checkout/{provider}"): public(CHECKOUT),
    ("GET", "/checkout/simulator/{session_id}"): public(SIMULATOR),
    ("POST", "/checkout/simulator/{session_id}/pay"): public(SIMULATOR),
    ("POST", "/checkout/simulator/{session_id}/cancel"): public(SIMULATOR),
    ("GET", "/me/agreement.pdf"): public(
        "a debtor session verified by the date of birth on file; a download that changes nothing"
    ),
    ("GET", "/verify"): public("the collector check form: shows no account"),
    ("POST", "/verify"): public(
        "answers only yes or no about a collector ID, same shape and time either way, rate-limited per address"
    ),
    # operations: aggregates and the governor, for monitoring with a token (Prometheus: bearer_token)
    ("GET", "/metrics"): api("read"),
    ("GET", "/ops/governor"): api("read"),
    # the API (bearer tokens only)
    ("GET", "/api/accounts"): api("read"),
    ("GET", "/api/accounts/{account_id}"): api("read"),
    ("GET", "/api/accounts/{account_id}/timeline"): api("read"),
    ("GET", "/api/accounts/{account_id}/charges"): api("read"),
    ("GET", "/api/accounts/{account_id}/contacts"): api("read"),
    ("GET", "/api/accounts/{account_id}/audit"): api("read"),
    ("POST", "/api/accounts/{account_id}/links/revoke"): api("write"),
    ("POST", "/api/accounts/{account_id}/plans/preview"): api("read"),
    ("POST", "/api/accounts/{account_id}/plans"): api("write"),
    ("POST", "/api/accounts/{account_id}/promises"): api("write"),
    ("POST", "/api/accounts/{account_id}/waivers"): api("write"),
    ("GET", "/api/waivers"): api("read"),
    ("POST", "/api/waivers/{request_id}/approve"): api("approve"),
    ("POST", "/api/waivers/{request_id}/reject"): api("approve"),
    ("POST", "/api/accounts/{account_id}/payments"): api("write"),
    ("GET", "/api/refunds"): api("read"),
    ("POST", "/api/refunds/{refund_id}/resolve"): api("approve"),
    ("POST", "/api/accounts/{account_id}/complaints"): api("write"),
    ("POST", "/api/accounts/{account_id}/disputes"): api("write"),
    ("POST", "/api/accounts/{account_id}/plan-request/answer"): api("write"),
    ("POST", "/api/accounts/{account_id}/complaints/decision"): api("write"),
    ("POST", "/api/accounts/{account_id}/disputes/verification"): api("write"),
    ("POST", "/api/accounts/{account_id}/cease"): api("write"),
    ("POST", "/api/accounts/{account_id}/pause"): api("write"),
    ("POST", "/api/accounts/{account_id}/resume"): api("write"),
    # events to the lender's systems: supervisors manage subscriptions, every reading role looks
    ("GET", "/api/events/subscriptions"): api("read"),
    ("POST", "/api/events/subscriptions"): api("approve"),
    ("GET", "/api/events/subscriptions/{subscription_id}"): api("read"),
    ("POST", "/api/events/subscriptions/{subscription_id}/disable"): api("approve"),
    ("POST", "/api/events/subscriptions/{subscription_id}/rotate"): api("approve"),
    ("GET", "/api/events/subscriptions/{subscription_id}/deliveries"): api("read"),
    ("POST", "/api/events/deliveries/{delivery_id}/retry"): api("approve"),
    ("GET", "/api/accounts/{account_id}/events"): api("read"),
    # a lost debtor's new number: recorded unverified, confirmed by a code (service/api_numbers.py)
    ("GET", "/api/accounts/{account_id}/contact-points"): api("read"),
    ("POST", "/api/accounts/{account_id}/contact-points"): api("write"),
    ("POST", "/api/accounts/{account_id}/contact-points/{number_id}/code"): api("write"),
    ("POST", "/api/accounts/{account_id}/contact-points/{number_id}/confirm"): api("write"),
    ("POST", "/api/accounts/{account_id}/contact-points/{number_id}/cancel"): api("write"),
    # the agencies' API and the lender's side of it
    ("GET", "/agency/visits"): api("agency_report"),
    ("POST", "/agency/visits/{visit_id}/report"): api("agency_report"),
    ("PUT", "/agency/visits/{visit_id}/collector"): api("agency_report"),
    ("POST", "/visits/{visit_id}/reschedule"): api("write"),
    ("POST", "/visits/{visit_id}/plan-instead"): api("write"),
    ("POST", "/visits/{visit_id}/cancel"): api("approve"),
    ("GET", "/agency/placements"): api("agency_report"),
    ("POST", "/agency/placements/{account_id}/calls"): api("agency_report"),
    ("POST", "/agency/placements/{account_id}/payments"): api("agency_report"),
    ("POST", "/placements/{account_id}/recall"): api("approve"),
    ("POST", "/accounts/{account_id}/closure"): api("approve"),
    # the console (the session cookie only; CSRF-checked forms, see service/console.py)
    ("GET", "/console/login"): public("the sign-in form"),
    ("POST", "/console/login"): public("signing in (rate-limited per address and per token)"),
    ("GET", "/console/oidc/start"): public("off to the identity provider (OIDC), nothing read here"),
    ("GET", "/console/oidc/callback"): public(
        "the provider's answer: state, PKCE, a signed ID token, checked"
    ),
    ("POST", "/console/logout"): console("read"),
    ("GET", "/console"): console("read"),
    ("GET", "/console/open"): console("read"),
    ("GET", "/console/accounts/{account_id}"): console("read"),
    ("POST", "/console/accounts/{account_id}/plan/preview"): console("write"),
    ("POST", "/console/accounts/{account_id}/plan"): console("write"),
    # the account page's actions: the grant of the API route for the same action (service/console_actions.py)
    ("POST", "/console/accounts/{account_id}/pause"): console("write"),
    ("POST", "/console/accounts/{account_id}/resume"): console("write"),
    ("POST", "/console/accounts/{account_id}/complaint"): console("write"),
    ("POST", "/console/accounts/{account_id}/complaint/decision"): console("write"),
    ("POST", "/console/accounts/{account_id}/dispute"): console("write"),
    ("POST", "/console/accounts/{account_id}/dispute/verification"): console("write"),
    ("POST", "/console/accounts/{account_id}/cease"): console("write"),
    ("POST", "/console/accounts/{account_id}/recall"): console("approve"),
    ("POST", "/console/accounts/{account_id}/close"): console("approve"),
    ("POST", "/console/accounts/{account_id}/reopen"): console("approve"),
    ("POST", "/console/accounts/{account_id}/number"): console("write"),
    ("POST", "/console/accounts/{account_id}/number/code"): console("write"),
    ("POST", "/console/accounts/{account_id}/number/confirm"): console("write"),
    ("POST", "/console/accounts/{account_id}/number/cancel"): console("write"),
    ("GET", "/console/approvals"): console("approve"),
    ("POST", "/console/approvals/{request_id}/{decision}"): console("approve"),
    ("GET", "/console/queue"): console("read"),
    ("GET", "/console/cases/{case_id}"): console("read"),
    ("POST", "/console/cases/{case_id}/{action}"): console("write"),
    ("GET", "/console/refunds"): console("read"),
    ("GET", "/console/events"): console("read"),
    ("POST", "/console/events/deliveries/{delivery_id}/retry"): console("approve"),
    ("POST", "/console/refunds/{refund_id}/resolve"): console("approve"),
    # the strategy lab's what-if (service/console_whatif.py): reads the book, sends nothing; supervisors
    ("GET", "/console/whatif"): console("approve"),
    ("POST", "/console/whatif"): console("approve"),
    ("GET", "/dashboard"): browser("read"),
    # the codec the Temporal UI calls from the operator's browser (and tctl/temporal CLI with a token)
    ("OPTIONS", "/codec/decode"): public("the browser's CORS preflight carries no credentials"),
    ("OPTIONS", "/codec/encode"): public("the browser's CORS preflight carries no credentials"),
    ("POST", "/codec/decode"): browser("read"),
    ("POST", "/codec/encode"): browser("write"),
}


def rule_for(request: Request) -> Rule | None:
    """The table's rule for the route this request matched (None: not in the table)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return ACCESS.get((method, path))


class ConsoleForbidden(Exception):
    """A signed-in operator whose role may not do this: the console answers with its own page."""

    def __init__(self, role: str, grant: str) -> None:
        super().__init__(f"Your role ({role}) may not {grant} here.")


async def enforce(request: Request) -> None:
    """The application-wide dependency: the table decides before the route runs."""
    from service import ratelimit
    from service.auth import identify
    from service.codec import cors_headers

    rule = rule_for(request)
    if rule is None:
        raise HTTPException(status_code=403, detail="this route is not in the access table")
    if rule.grant is None:
        return
    headers = cors_headers(request) if request.url.path.startswith("/codec/") else {}
    if (wait := ratelimit.refused_too_often(request, "credentials")) is not None:
        raise HTTPException(
            status_code=429,
            detail="too many requests without valid credentials from this address",
            headers={**headers, "Retry-After": str(wait)},
        )
    principal = identify(request)
    if principal is None:
        if rule.page:  # the console sends a browser to its sign-in page, then back
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(status_code=303, headers={"Location": f"/console/login?next={quote(target)}"})
        what = "a console session or a bearer token" if rule.cookie else "a valid bearer token"
        ratelimit.refused(request, "credentials")  # guessing tokens: slowed per client address
        raise HTTPException(
            status_code=401, detail=f"{what} is required", headers={**headers, "WWW-Authenticate": "Bearer"}
        )
    if not principal.may(rule.grant):
        if rule.page:
            raise ConsoleForbidden(principal.role.value, rule.grant)
        raise HTTPException(
            status_code=403, detail=f"role {principal.role.value} may not {rule.grant}", headers=headers
        )
