"""``python -m carrier``: serve the carrier simulator in the foreground, where the settings say
(``COLLECT_SIMULATOR_HOST``/``PORT``, 127.0.0.1:8099 by default; ``--host``/``--port`` override).

Credentials default to the project's simulator credentials (what ``runtime.settings`` uses when no
Twilio account is configured) so that ``./collect demo`` and a hand-started simulator agree.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from carrier import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from carrier.app import create_app
from carrier.contract import find_spec, validation_available
from carrier.lifecycle import SimConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carrier", description=__doc__)
    from runtime.logs import FORMATS, setup_logging
    from runtime.settings import get_settings

    # the same settings the worker reads, so a simulator started by hand is where the worker looks
    settings = get_settings()
    parser.add_argument("--host", default=settings.simulator_host, help="default: COLLECT_SIMULATOR_HOST")
    parser.add_argument(
        "--port", type=int, default=settings.simulator_port, help="default: COLLECT_SIMULATOR_PORT"
    )
    parser.add_argument("--account-sid", default=os.environ.get("CARRIER_ACCOUNT_SID", DEFAULT_ACCOUNT_SID))
    parser.add_argument("--auth-token", default=os.environ.get("CARRIER_AUTH_TOKEN", DEFAULT_AUTH_TOKEN))
    parser.add_argument(
        "--spec",
        default="auto",
        help="Twilio OpenAPI file to validate requests against; 'auto' = $TWILIO_OPENAPI_SPEC or .cache/npm if present; 'none' = off",
    )
    parser.add_argument(
        "--step-delay", type=float, default=SimConfig().step_delay, help="seconds between two status events"
    )
    parser.add_argument(
        "--log-format", choices=FORMATS, default=None, help="default: COLLECT_LOG_FORMAT (text)"
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_format or settings.log_format)

    if args.spec == "none":
        spec = None
    elif args.spec == "auto":
        spec = find_spec() if validation_available() else None
    else:
        spec = args.spec
    app = create_app(
        args.account_sid, args.auth_token, spec_path=spec, config=SimConfig(step_delay=args.step_delay)
    )
    print(
        f"carrier simulator on http://{args.host}:{args.port} (account {args.account_sid}; "
        f"spec validation: {spec or 'off'})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
