"""Every patch of the account workflows, and the code generation that made each the only path.

A patch (``workflow.patched``) keeps the replay of runs recorded before a change identical. Its
price is paid by every run started after it: a marker event and an upsert of the
``TemporalChangeVersion`` search attribute for each patch the run reaches, about 13 history
events per run with the 19 patches of generation 1, again after every hand-over (issue 18).

A run started by code that already has a patch does not need it: nothing before that patch can ever
replay that run. So whoever starts an account run (intake, and every hand-over) writes the code
generation it runs into the input (``AccountInput.code``). A run whose generation includes a patch
takes the new path without a marker; a run without it (recorded before generations existed, or
started by a test with a bare input) asks ``workflow.patched`` exactly as before, so every
recorded history replays as it did. The input is part of the history, so the choice is
deterministic on every replay.

A new patch goes into the next generation: add its id to a new set in ``GENERATIONS`` and raise
:data:`CODE`. Only a run started with that generation skips its marker.
"""

from __future__ import annotations

from temporalio import workflow

# ---- generation 1: every patch up to issue 18 -------------------------------------------------------
WAKE = "signal-between-sleeps-wakes"  # a signal between two sleeps wakes the next one at once
LATE_PAYMENTS = "closing-run-takes-late-payments"  # payments during a close are recorded first
CHANGED_ONLY = "upsert-only-changes"  # search attributes upserted only when a value changes
ONE_WRITE = "one-write-per-wake"  # a stage rides on the wake's send; the opening is one write
STALE_REMINDER = "payment-cancels-stale-reminder"  # a part payment withdraws a waiting reminder
PAYMENTS_FIRST = "payments-first-for-every-message"  # ... and any waiting message
LEAN_SEND = "send-waits-for-final-status"  # the send waits for the final status itself
PLAN_AT_HAND_OVER = "hand-over-keeps-accepted-plan"
FALLBACK = "fallback-fits-the-stage"
NO_CATCH_UP = "no-catch-up-before-intake"
INTAKE_AT_START = "intake-is-the-start"
SUSPEND = "holds-suspend-plan-break"
WAKE_HAND_OVER = "settlement-hands-over-at-wake"
QUIET_PLAN = "quiet-plan-answers-first"
CHARGED_OFF_OPEN = "charged-off-takes-payments"
AGENCY_PLACEMENT = "agency-placement"
VISITS = "field-visits"
VISIT_PAID = "paid-calls-visit-off"
EMERGENCY_CONTACT = "emergency-contact"

# ---- generation 2: issue 17 -------------------------------------------------------------------------
#: A visit is arranged after the wake's own step has gone, never beside it: the two competed for the
#: day's text by timing (the child's announcement or the run's reminder, whichever reached the live
#: gate first), so two runs of the same account could differ; the strategy lab could not predict it.
VISIT_AFTER_STEP = "visit-after-the-step"
#: An agreed plan is confirmed to the debtor in writing, once; a broken plan is told, once (issue 13:
#: the ``plan_confirmation`` and ``plan_broken`` templates existed and nothing sent them).
PLAN_NOTICES = "plan-confirmed-and-broken-in-writing"

# ---- generation 3: issue 13 -------------------------------------------------------------------------
#: A payment that asks for a receipt (the debtor paid through the self-service checkout) gets one text
#: saying what came in and what is still owed, once per payment; paid in full, the closing receipt is it.
PAYMENT_RECEIPTS = "receipt-for-each-checkout-payment"
# ---- generation 3, too: issue 14 ---------------------------------------------------------------------
#: Every request is answered in writing (issue 14): a complaint's or dispute's acknowledgement names
#: the case and the deadline; the decision, or a dispute's findings, with the jurisdiction's
#: complaint route, goes before collection resumes; a plan request is answered (declined, escalated)
#: or, left unanswered, its lapse is told before the next contact.
NOTICES = "every-request-answered-in-writing"
#: Opt-out as carriers define it (issue 14): a repeated STOP or a plan request no longer withdraws
#: the opt-out confirmation under way (each withdraws only what chases the debt; an opt-out only on
#: its channel), START opts texts back in with one confirmation, an opt-out after an opt-in is
#: confirmed again, and of several accounts on one number only one confirms.
SMS_CONSENT = "sms-opt-in-and-one-opt-out-confirmation"

# ---- generation 4: issue 18 -------------------------------------------------------------------------
#: A payment on an account already paid in full (the lender posted it twice while the account closes)
#: is refunded and withdraws nothing: it used to cancel the closing receipt still waiting to go, and
#: the debtor who paid was never told (found when the closing write became a local activity, which
#: schedules the receipt in the same workflow task, a change tried and dropped: README, benchmarks).
SURPLUS_KEEPS_RECEIPT = "surplus-payment-keeps-the-receipt"

GENERATIONS: list[frozenset[str]] = [
    frozenset(),  # generation 0: runs that ask the server for every patch
    frozenset(
        {
            WAKE,
            LATE_PAYMENTS,
            CHANGED_ONLY,
            ONE_WRITE,
            STALE_REMINDER,
            PAYMENTS_FIRST,
            LEAN_SEND,
            PLAN_AT_HAND_OVER,
            FALLBACK,
            NO_CATCH_UP,
            INTAKE_AT_START,
            SUSPEND,
            WAKE_HAND_OVER,
            QUIET_PLAN,
            CHARGED_OFF_OPEN,
            AGENCY_PLACEMENT,
            VISITS,
            VISIT_PAID,
            EMERGENCY_CONTACT,
        }
    ),
    frozenset({VISIT_AFTER_STEP, PLAN_NOTICES}),
    frozenset({PAYMENT_RECEIPTS, NOTICES, SMS_CONSENT}),
    frozenset({SURPLUS_KEEPS_RECEIPT}),
]

#: The generation new runs are started with (intake, hand-over).
CODE = len(GENERATIONS) - 1


def included(patch_id: str, code: int) -> bool:
    """Is ``patch_id`` part of generation ``code`` (or an earlier one)?"""
    return any(patch_id in GENERATIONS[g] for g in range(1, min(code, CODE) + 1))


def patched(patch_id: str, code: int) -> bool:
    """``workflow.patched`` for a run started with generation ``code``: no marker when the
    generation already includes the patch."""
    return included(patch_id, code) or workflow.patched(patch_id)
