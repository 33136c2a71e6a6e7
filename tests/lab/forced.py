"""A behaviour model file where every reached debtor engages and always does one given thing."""

from __future__ import annotations

from pathlib import Path

NOTHING = {"pay_full": 0.0, "pay_part": 0.0, "plan": 0.0, "stop": 0.0, "complain": 0.0}


def forced_model_file(tmp_path: Path, does: str, keep: float = 1.0, periods: int = 3) -> Path:
    odds = {**NOTHING, does: 1.0}
    lines = ["seed = 3", "engage_other_hours = 1.0"]
    lines += [f'[[engage]]\nchannel = "{c}"\nhours = [0, 24]\np = 1.0' for c in ("sms", "voice", "voicemail")]
    lines += ["[segments.default]", *(f"{k} = {v}" for k, v in odds.items())]
    lines += ["pay_part_share = [0.25, 0.25]", f"plan_periods = [{periods}]", f"keep = {keep}"]
    lines += ["[[lateness]]", "until = 100000", "pay = 1", "plan = 1", "stop = 1", "complain = 1"]
    path = tmp_path / f"debtors-{does}-{keep}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
