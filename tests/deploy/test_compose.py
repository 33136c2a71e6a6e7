"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine.

No Docker daemon runs where the suite runs, so these tests check what can be checked offline and
would otherwise only fail on an operator's machine: the file is valid Compose (the specification's own
JSON schema, vendored with its source in ``compose-spec.SOURCE.md``), every command a container runs
exists in this project with the options it is given, healthchecks and start-up order hold together,
Temporal gets PostgreSQL and our search attributes, workers can be scaled, the image installs the
project, and every setting is documented in ``.env.example``.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runtime.settings import Settings
from workflows.search import CLI_TYPES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SETTINGS = {f"COLLECT_{name.upper()}" for name in Settings.model_fields}
#: services that are not long-running processes of ours and that nothing waits on
NO_HEALTHCHECK = {"temporal-ui": "nothing depends on it", "prometheus": "nothing depends on it"}


VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(node: Any) -> Any:
    """``${NAME:-default}`` as ``docker compose`` resolves it with nothing set in .env: the default."""
    if isinstance(node, str):
        return VARIABLE.sub(lambda m: m[2] or "", node)
    if isinstance(node, dict):
        return {key: interpolate(value) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value) for value in node]
    return node


@cache
def compose() -> dict[str, Any]:
    """The file as Compose sees it: anchors and merge keys resolved, variables at their defaults."""
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@cache
def compose_schema() -> dict[str, Any]:
    return json.loads((HERE / "compose-spec.json").read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def ours() -> dict[str, dict[str, Any]]:
    """The services built from this project's Dockerfile."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# ---- the file itself ---------------------------------------------------------------------------------
def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_would_catch_a_broken_file() -> None:
    """The schema is strict enough to matter: a misspelt key or a wrong type is reported, by path."""
    broken = copy.deepcopy(compose())
    broken["services"]["worker"]["comand"] = ["python", "-m", "workers"]
    broken["services"]["api"]["ports"] = "8000:8000"
    errors = schema_errors(broken)
    assert any("comand" in e for e in errors), errors
    assert any(e.startswith("services/api/ports") for e in errors), errors


# ---- every command exists -----------------------------------------------------------------------------
def project_module(module: str) -> Path | None:
    """The file ``python -m module`` runs, if the module is part of this project."""
    base = ROOT.joinpath(*module.split("."))
    if (base / "__main__.py").is_file():
        return base / "__main__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def flags(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def command_problems(argv: list[str]) -> list[str]:
    """Why ``argv`` would not start in the image (empty: it would)."""
    match argv:
        case ["python", "-m", module, *args]:
            if project_module(module) is None:
                return [f"python -m {module}: no module {module} in the project"]
            if flags(args):
                helped = subprocess.run(
                    [sys.executable, "-m", module, "--help"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                return [f"python -m {module}: no option {f}" for f in flags(args) if f not in helped.stdout]
            return []
        case ["uvicorn", target, *args]:
            module, _, attribute = target.partition(":")
            app = getattr(importlib.import_module(module), attribute, None)
            problems = [] if callable(app) else [f"uvicorn: {target} is not callable"]
            cli = sys.modules[importlib.import_module("uvicorn.main").__name__].main
            known = {o for p in cli.params for o in p.opts}
            return problems + [f"uvicorn: no option {f}" for f in flags(args) if f not in known]
        case ["alembic", *args]:
            scripts = importlib.metadata.entry_points(group="console_scripts", name="alembic")
            problems = [] if scripts else ["alembic: no console script installed"]
            if not (ROOT / "alembic.ini").is_file():
                problems.append("alembic: no alembic.ini in the project root")
            if args[:2] == ["upgrade", "head"]:
                from alembic.config import Config
                from alembic.script import ScriptDirectory

                heads = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads()
                if len(heads) != 1:
                    problems.append(f"alembic: 'head' is ambiguous, heads {heads}")
            return problems
    return [f"unknown command shape {argv}"]


@pytest.mark.parametrize("name", sorted(ours()))
def test_every_command_of_our_services_exists_in_the_project(name: str) -> None:
    service = services()[name]
    argv = service.get("command") or service.get("entrypoint")
    assert isinstance(argv, list) and argv, f"{name}: give the command as a list (exec form, gets SIGTERM)"
    assert command_problems(argv) == []


def healthcheck_urls(name: str) -> list[tuple[str, str, str]]:
    """(host, port, path) of each URL a service's healthcheck opens."""
    return re.findall(r"http://([\w.]+):(\d+)(/[\w/]*)", services()[name]["healthcheck"]["test"][3])


def test_healthchecks_of_our_services_compile_and_probe_their_own_port() -> None:
    for name, service in ours().items():
        test = service.get("healthcheck", {}).get("test")
        if not test:
            continue
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: healthcheck {test}"
        compile(test[3], f"{name} healthcheck", "exec")
        for host, port, path in healthcheck_urls(name):
            assert host == "127.0.0.1"
            if name == "worker":  # runtime.metrics.MetricsServer serves /healthz next to /metrics
                assert (port, path) == (service["environment"]["COLLECT_METRICS_PORT"], "/healthz")
            if name == "api":
                assert port == service["command"][service["command"].index("--port") + 1]
                assert path in metrics_router_paths(), (
                    f"api healthcheck {path}: not a route of service/metrics.py"
                )


def metrics_router_paths() -> set[str]:
    from service import metrics

    return {route.path for route in metrics.router.routes}  # type: ignore[attr-defined]


def app_paths() -> set[str]:
    return set(importlib.import_module("service.app").create_app().openapi()["paths"])


def test_the_service_app_serves_the_api_healthcheck_and_metrics() -> None:
    """Without the router mounted, compose would never see the api healthy and Prometheus would get 404."""
    assert {path for _, _, path in healthcheck_urls("api")} | {"/metrics"} <= app_paths()


# ---- start-up order and health -------------------------------------------------------------------------
def test_long_running_services_have_healthchecks_and_start_in_order() -> None:
    for name, service in services().items():
        one_shot = service.get("restart") == "no"
        if not one_shot and name not in NO_HEALTHCHECK:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services()[dependency], f"{name} waits for {dependency}'s health"
            if condition == "service_completed_successfully":
                assert services()[dependency].get("restart") == "no", f"{dependency} is not a one-shot job"
    # nothing touches the application database before the migration, nor Temporal before the attributes
    for name in ("worker", "api"):
        needs = services()[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["temporal-setup"]["condition"] == "service_completed_successfully"


def test_workers_can_be_scaled_and_stop_gracefully() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs neither"
    assert worker["command"] == ["python", "-m", "workers"]
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    grace = worker["stop_grace_period"]
    seconds = int(grace.rstrip("s")) if grace.endswith("s") and "m" not in grace else None
    assert seconds is not None and seconds > 60, "longer than a send activity's 60 s start-to-close"
    assert worker["environment"]["COLLECT_METRICS_HOST"] == "0.0.0.0"  # scrapable from Prometheus


def test_temporal_runs_on_postgresql_with_our_search_attributes_registered_at_start() -> None:
    temporal = services()["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    seed = services()[temporal["environment"]["POSTGRES_SEEDS"]]
    assert seed["image"].startswith("postgres:")
    setup = services()["temporal-setup"]
    module = project_module(setup["command"][2])
    assert module is not None and "register_search_attributes" in module.read_text()
    # PostgreSQL visibility (no Elasticsearch) holds a limited number of custom attributes per type
    limits = {"Keyword": 10, "Int": 3, "Datetime": 3, "Double": 3, "Bool": 3, "Text": 3, "KeywordList": 3}
    for kind, count in Counter(CLI_TYPES.values()).items():
        assert count <= limits[kind], (
            f"{count} {kind} search attributes: PostgreSQL visibility allows {limits[kind]}"
        )
    # the application has a PostgreSQL of its own, not Temporal's
    url = services()["worker"]["environment"]["COLLECT_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@app-db:" in url
    assert services()["app-db"]["image"].startswith("postgres:")


def test_the_ui_and_the_images_are_pinned() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version ({image!r})"


# ---- the image -----------------------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_installs_the_project_and_copies_everything_the_commands_need() -> None:
    instructions = dockerfile()
    base = next(arg for op, arg in instructions if op == "FROM")
    version = re.match(r"python:(\d+)\.(\d+)", base)
    assert version, base
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = tuple(int(x) for x in re.findall(r"\d+", pyproject["project"]["requires-python"])[:2])
    assert (int(version[1]), int(version[2])) >= minimum
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert re.search(r"pip install [^&]*(-e )?\.(\s|$)", runs), "the project itself is pip-installed"
    assert ("COPY", ". .") in instructions
    assert any(op == "USER" and arg not in ("root", "0") for op, arg in instructions), "runs as root"

    ignored = [
        p.strip().rstrip("/")
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def excluded(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in ignored)

    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = [
        p.name for p in ROOT.iterdir() if p.is_dir() and any(fnmatch.fnmatch(p.name, g) for g in packages)
    ]
    needed += ["policies", "alembic.ini", "starter.py", "pyproject.toml", "README.md"]
    assert [p for p in needed if excluded(p)] == []
    assert excluded(".env") and excluded(".venv") and excluded(".git"), "no secrets or venv in the image"


# ---- settings only through environment variables, all documented ----------------------------------------
def env_example_names() -> dict[str, bool]:
    """Every COLLECT_ variable .env.example names, and whether it is set (True) or shown commented out."""
    names: dict[str, bool] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        found = re.match(r"^(#\s*)?(COLLECT_[A-Z0-9_]+)=", line)
        if found:
            names[found[2]] = names.get(found[2], False) or not found[1]
    return names


def compose_variables() -> set[str]:
    """Variables docker-compose.yml interpolates (``${NAME:-default}``)."""
    return set(re.findall(r"\$\{(COLLECT_[A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = set(env_example_names())
    assert SETTINGS - documented == set(), "settings missing from .env.example"
    assert documented - SETTINGS - compose_variables() == set(), ".env.example names unknown settings"


def test_env_example_values_are_the_real_defaults_and_parse() -> None:
    """Copying .env.example to .env changes nothing: what it shows is what the code does by default."""
    loaded = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in (n for n, is_set in env_example_names().items() if is_set and n in SETTINGS):
        field = name.removeprefix("COLLECT_").lower()
        assert getattr(loaded, field) == getattr(defaults, field), name


def test_compose_sets_only_settings_that_exist() -> None:
    for name, service in ours().items():
        for variable in service.get("environment", {}):
            if variable.startswith("COLLECT_"):
                assert variable in SETTINGS, f"{name}: {variable} is not a setting (typo?)"


#: what may be published beyond the host: the HTTP service (its own authentication, rate limits)
PUBLIC_PORTS = {("api", 8000)}


def published(entry: Any) -> tuple[str, int]:
    """(host address, container port) of a ``ports`` entry: short (``[ip:]host:container``) or long."""
    if isinstance(entry, dict):
        return str(entry.get("host_ip", "0.0.0.0")), int(entry["target"])
    parts = str(entry).split(":")
    address = parts[0] if len(parts) == 3 else "0.0.0.0"
    return address, int(parts[-1].split("/")[0])


def test_no_internal_port_is_published_beyond_the_host() -> None:
    """Found: Temporal's frontend (7233) and UI (8080) on every interface, without authentication."""
    for name, service in services().items():
        for entry in service.get("ports", []):
            address, port = published(entry)
            if (name, port) in PUBLIC_PORTS:
                continue
            assert address == "127.0.0.1", f"{name}: port {port} is published on {address}, not loopback"


def test_the_port_check_would_catch_a_published_frontend() -> None:
    assert published("7233:7233") == ("0.0.0.0", 7233)
    assert published("127.0.0.1:8080:8080") == ("127.0.0.1", 8080)
    assert published({"target": 9090, "published": 9090}) == ("0.0.0.0", 9090)


def test_prometheus_scrapes_the_service_with_a_token() -> None:
    config = yaml.safe_load(compose()["configs"]["prometheus"]["content"])
    [api_job] = [job for job in config["scrape_configs"] if job["job_name"] == "collect-api"]
    assert "credentials" in api_job["authorization"]
