"""`./collect bench`'s intake benchmark goes through the CLI's own intake, so it must keep up with what
that asks: since intake names who acts (`--as`), the benchmark's run failed at once with "who is
acting?" and printed no intake figure at all, on either database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.infra import make_accounts, write_csv
from bench.intake import intake_csv
from runtime.settings import Settings


async def test_the_intake_benchmark_takes_its_accounts_in(
    own_env: Any, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "intake.csv"
    accounts = make_accounts(3, due_in_days=5, tag="bi")
    write_csv(path, accounts)
    seconds = await intake_csv(own_env.client, settings, path)
    assert seconds > 0
    for account in accounts:  # each one's run started (nobody runs them: the server is the test's own)
        described = await own_env.client.get_workflow_handle(account.workflow_id).describe()
        assert described.workflow_type == "DelinquencyWorkflow"
