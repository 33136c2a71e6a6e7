"""The command line's grammar: every command, its options, and one example each.

Kept apart from what the commands do so ``./collect --help`` and the tests that hold each example to
its command read one table.
"""

from __future__ import annotations

import argparse

from runtime.settings import ROOT

#: one example per command: shown by ``./collect --help`` and each ``./collect COMMAND --help``
EXAMPLES: dict[str, str] = {
    "demo": "demo --day-seconds 2",
    "server": "server",
    "worker": "worker --log-format json",
    "events": "events",
    "service": "service",
    "migrate": "migrate",
    "doctor": "doctor",
    "link": "link ACC-00001",
    "intake": "intake lender.csv --encoding cp1252 --decimal-comma --as alice",
    "status": "status ACC-00001",
    "timeline": "timeline ACC-00001 --json",
    "pay": "pay ACC-00001 120.50 --reference bank-7731 --as alice",
    "negotiate": "negotiate ACC-00001 --kind reinstalment --periods 3 --first-due 2026-12-15 --as alice",
    "pause": 'pause ACC-00001 --reason "debtor in hospital" --as alice',
    "resume": 'resume ACC-00001 --reason "back home" --as alice',
    "opt-out": "opt-out ACC-00001 sms --as alice",
    "complaint": 'complaint ACC-00001 --reason "called at work" --source regulator --as alice',
    "resolve-complaint": 'resolve-complaint ACC-00001 rejected --reason "calls within hours" --as alice',
    "answer-plan": 'answer-plan ACC-00001 declined --reason "we need proof of income first" --as alice',
    "dispute": 'dispute ACC-00001 --reason "not my loan" --as alice',
    "verify-dispute": 'verify-dispute ACC-00001 --reason "statement mailed" --as alice',
    "cease": "cease ACC-00001 voice --as alice",
    "recall": 'recall ACC-00001 --reason "agency complaint" --as sam',
    "close": 'close ACC-00001 written_off --note "small balance" --as alice',
    "reopen": 'reopen ACC-00001 --reason "closed by mistake" --as alice',
    "policy": "policy upgrade --to default --all --as alice --dry-run",
    "strategy": "strategy promote gentle --as alice --upgrade-running",
    "purge-audit": "purge-audit --dry-run --as alice",
    "audit": "audit ACC-00001 --csv audit.csv",
    "credit-file": "credit-file --profile US --cycle 2026-11-30 --out metro2-2026-11.txt --furnisher-id ACME001",
}


#: the commands that change something: each takes ``--as NAME`` (default ``$COLLECT_OPERATOR``) and
#: refuses to act without a name (``policy`` only for ``policy upgrade``, ``strategy`` only for
#: ``strategy promote``); the rest only read or run
#: processes. tests/operators/test_cli_operators.py holds every command to one list or the other.
ACTING = frozenset(
    {
        "intake", "pay", "negotiate", "pause", "resume", "opt-out", "complaint", "resolve-complaint", "answer-plan",
        "dispute", "verify-dispute", "cease", "recall", "close", "reopen", "policy", "strategy", "purge-audit",
    }
)  # fmt: skip
READING_OR_RUNNING = frozenset(
    {"demo", "server", "worker", "service", "migrate", "doctor", "link", "status", "timeline", "audit", "events",
     "credit-file"}
)  # fmt: skip


def named(command: argparse.ArgumentParser, who: str = "who acts") -> None:
    """``--as NAME``: the person the audit log names for this command (never "cli")."""
    command.add_argument("--as", dest="actor", help=f"{who} (default: $COLLECT_OPERATOR); required")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./collect",
        description="Operate the collection orchestrator (./collect COMMAND = python starter.py COMMAND; "
        "./collect test and ./collect bench run the suite and the benchmarks).",
        epilog="examples:\n"
        + "\n".join(f"  ./collect {line}" for line in EXAMPLES.values())
        + "\n\n./collect COMMAND --help: that command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="logs of worker and service: text, or one JSON object per line (default: COLLECT_LOG_FORMAT)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run everything embedded and load the sample portfolio")
    demo.add_argument("--file", default=str(ROOT / "data" / "sample_portfolio.csv"))
    demo.add_argument(
        "--day-seconds", type=float, default=None, help="real seconds per policy day (2 = fast demo)"
    )
    demo.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)
    demo.add_argument(
        "--sso",
        action="store_true",
        help="operators sign in to the console through a local OpenID Connect provider (users printed)",
    )
    demo.add_argument(
        "--quiet-debtors",
        action="store_true",
        help="the simulated debtors never answer, pay or complain (by default they follow lab/debtors.toml)",
    )
    demo.add_argument(
        "--behaviour",
        default=None,
        metavar="FILE",
        help="the debtors' behaviour model (default lab/debtors.toml)",
    )
    sub.add_parser("server", help="run only the Temporal dev server (file-backed)")
    for name, what in (
        ("worker", "run a worker (same as python -m workers)"),
        ("events", "deliver the lender's account events to their subscriptions (python -m workers.events)"),
        ("service", "run the HTTP service: API, consoles, webhooks, codec endpoint"),
    ):
        sub.add_parser(name, help=what).add_argument(
            "--log-format",
            choices=("text", "json"),
            default=argparse.SUPPRESS,  # not given here: the one before the command, or the setting
            help="text, or one JSON object per line (default: COLLECT_LOG_FORMAT)",
        )
    sub.add_parser("migrate", help="bring the application database to this release's schema")
    sub.add_parser(
        "doctor", help="check database, Temporal, search attributes, carrier and clock; say what to fix"
    )
    sub.add_parser("link", help="print a debtor's signed self-service link").add_argument("account")
    intake = sub.add_parser(
        "intake",
        help="validate a portfolio file (CSV or .xlsx) and start a workflow per good row",
        description="Read a portfolio (CSV in UTF-8, UTF-16 or GB18030, detected; or an .xlsx workbook), "
        "report every bad row with its line, column and reason, and start collection for the good ones. "
        "Example: ./collect intake data/sample_portfolio.csv",
    )
    intake.add_argument("file", help="a .csv (',', ';' or tab separated) or an .xlsx (first sheet)")
    intake.add_argument(
        "--encoding",
        default=None,
        help="the CSV's encoding when it is not UTF-8, UTF-16 or Chinese GB18030 (e.g. cp1252, shift_jis)",
    )
    intake.add_argument(
        "--decimal-comma",
        action="store_true",
        help="amounts are written 1.234,50 (European files); without it 12,50 is refused as ambiguous",
    )
    intake.add_argument("--day-seconds", type=float, default=None)
    named(intake, "who takes the file in")
    for name, what in (
        ("status", "where an account stands: mode, stage, balance, holds, next action and when"),
        ("timeline", "everything that will happen if nothing changes, down to charge-off or the plan's end"),
    ):
        q = sub.add_parser(name, help=what)
        q.add_argument("account")
        q.add_argument("--json", action="store_true")
    pay = sub.add_parser("pay", help="record a payment (major units, e.g. 120.50)")
    pay.add_argument("account")
    pay.add_argument("amount")
    pay.add_argument("--reference", help="idempotency key; the same reference counts once")
    named(pay, "who records it")
    neg = sub.add_parser("negotiate", help="propose a settlement plan; answers after dunning has stopped")
    neg.add_argument("account")
    neg.add_argument(
        "--kind", required=True, choices=["deferral", "reinstalment", "fee_waiver", "promise_to_pay"]
    )
    neg.add_argument("--first-due", required=True, help="YYYY-MM-DD")
    neg.add_argument("--periods", type=int, default=1)
    neg.add_argument("--period-days", type=int, default=30)
    neg.add_argument("--amount", help="total to pay (major units); default: the balance less any waiver")
    neg.add_argument("--waiver", help="fees waived (major units), fee_waiver only")
    neg.add_argument("--evidence", help="hardship evidence reference, fee_waiver only")
    named(neg, "who proposes it; a fee waiver then waits for a different supervisor's approval")
    for name, what in (
        ("pause", "an operator hold: no contact until resumed"),
        ("resume", "lift an operator hold"),
    ):
        h = sub.add_parser(name, help=what)
        h.add_argument("account")
        h.add_argument("--reason", required=True)
        named(h)
    oo = sub.add_parser(
        "opt-out",
        help="stop a channel (one confirmation text for SMS; only the debtor's START by text undoes it)",
    )
    oo.add_argument("account")
    oo.add_argument("channel", choices=["sms", "voice"])
    named(oo, "who recorded the debtor's refusal")
    c = sub.add_parser("complaint", help="file a complaint: contact stops until an investigator decides")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    c.add_argument(
        "--source",
        default="debtor",
        choices=["debtor", "agent", "regulator", "agency", "visit"],
        help="who complains (visit: about a field visit, which also pauses the account)",
    )
    named(c, "who files it")
    c = sub.add_parser(
        "resolve-complaint",
        help="the investigator's decision, told to the debtor before collection resumes (or the account closes)",
    )
    c.add_argument("account")
    c.add_argument("decision", choices=["upheld", "rejected", "close", "resume"])
    c.add_argument("--reason", default="", help="the findings (kept in the audit log)")
    named(c, "who decides")
    c = sub.add_parser(
        "answer-plan", help="answer a plan request without a plan: declined (why) or escalated (for N days)"
    )
    c.add_argument("account")
    c.add_argument("decision", choices=["declined", "escalated"])
    c.add_argument("--reason", default="", help="declined: why, quoted to the debtor (80 characters at most)")
    c.add_argument("--days", type=int, default=2, help="escalated: the supervisor answers within these days")
    named(c, "who answers")
    c = sub.add_parser("dispute", help="the debt is disputed: no collection until verified")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    named(c, "who files it")
    c = sub.add_parser("verify-dispute", help="verification sent to the debtor: collection may resume")
    c.add_argument("account")
    c.add_argument("--reason", default="", help="what was sent to the debtor (kept in the audit log)")
    named(c, "who verified it")
    c = sub.add_parser("cease", help="stop communication on one channel or all of them, for good")
    c.add_argument("account")
    c.add_argument("channel", choices=["sms", "voice", "all"])
    named(c, "who records it")
    c = sub.add_parser("recall", help="take a placed account back from its agency")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    named(c, "who recalls it")
    c = sub.add_parser(
        "close", help="close for a reason the workflow cannot see: written off, deceased, bankrupt"
    )
    c.add_argument("account")
    c.add_argument("reason", choices=["written_off", "deceased", "bankrupt"])
    c.add_argument("--note", default="")
    named(c, "who closes it; a write-off takes two different people")
    c = sub.add_parser("reopen", help="restart collection of a closed account, on purpose (audited)")
    c.add_argument("account")
    c.add_argument("--reason", required=True)
    named(c, "who reopens it")
    c.add_argument("--day-seconds", type=float, default=None)
    pol = sub.add_parser("policy", help="policy and profile versions: list them, move running accounts")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    pol_sub.add_parser("list", help="each version, in the file now or stored, and the open accounts on it")
    up = pol_sub.add_parser(
        "upgrade", help="move running accounts to another version at their next safe point"
    )
    up.add_argument(
        "--to", help="policy version: a stored name@digest, or a file's name (its current version)"
    )
    up.add_argument("--profile-to", help="profile version: a stored name@digest, or a profile's name")
    who = up.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", nargs="+", help="these accounts")
    who.add_argument("--all", action="store_true", help="every open account running that policy (profile)")
    named(up, "who moves them")
    up.add_argument("--dry-run", action="store_true", help="count, send nothing")
    strat = sub.add_parser(
        "strategy", help="champion/challenger: show the split new accounts get, promote a challenger"
    )
    strat_sub = strat.add_subparsers(dest="strategy_command", required=True)
    strat_sub.add_parser("show", help="the strategy file's variants, policies and shares")
    promote = strat_sub.add_parser(
        "promote", help="the variant becomes the champion with every new account (audited)"
    )
    promote.add_argument("variant", help="the variant's name in the strategy file")
    promote.add_argument(
        "--upgrade-running",
        action="store_true",
        help="also move the old champion's open accounts to the variant's policy (policy upgrade)",
    )
    named(promote, "who promotes it")
    purge = sub.add_parser("purge-audit", help="delete audit lines past their profile's retention")
    purge.add_argument("--dry-run", action="store_true")
    named(purge, "who deletes them (the purge is audited)")
    audit = sub.add_parser("audit", help="every decision about an account")
    audit.add_argument("account")
    audit.add_argument("--csv", help="write CSV to this file ('-' for stdout)")
    cf = sub.add_parser(
        "credit-file",
        help="write the monthly credit-reporting file of a profile (Metro 2 or CSV); print who was held back",
    )
    cf.add_argument("--profile", required=True, help="US (Metro 2), CN or UK (CSV): its [credit_reporting]")
    cf.add_argument("--cycle", required=True, help="the cycle date the file describes, YYYY-MM-DD")
    cf.add_argument("--out", required=True, help="the file to write (it holds names: personal data)")
    cf.add_argument(
        "--furnisher-id", help="Metro 2: the id the bureaus assigned (default: $COLLECT_FURNISHER_ID)"
    )
    for name, command in sub.choices.items():
        command.prog = f"./collect {name}"
        command.epilog = f"example:\n  ./collect {EXAMPLES[name]}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return p
