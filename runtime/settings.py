"""Settings from environment variables (prefix ``COLLECT_``) or a ``.env`` file.

Every knob an operator needs is here and nowhere else, so docker-compose, the README and the
code agree on names. See ``.env.example`` for the documented list.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR_SID = "AC" + "0" * 31 + "1"
SIMULATOR_TOKEN = "simulator-auth-token"
#: Hosts a local dev server may bind: `./collect server` and `./collect demo` start one only for these.
# (names a host may have, not an address anything binds)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # nosec B104


def split_address(address: str, default_port: int = 7233) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``, or a bare host on ``default_port``) as (host, port)."""
    text = address.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.removeprefix(":") or default_port)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or ":" in host:
        return text, default_port
    return host, int(port)


#: What one cached account costs a worker (bench footprint: 566 MB RSS for 2,000 cached of 10,000 open,
#: with the process's own ~150 MB; 0.25 MB keeps a margin)
CACHED_ACCOUNT_BYTES = 256 * 1024
MIN_STICKY_CACHE = 2000
MAX_STICKY_CACHE = 50_000


def memory_limit_bytes() -> int | None:
    """The memory this process may use: the cgroup's limit where one is set (containers), else the
    machine's physical memory; None where neither can be read."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number: no limit
            return int(text)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECT_", env_file=".env", extra="ignore")

    # Temporal
    env: Literal["development", "production"] = Field(
        default="development",
        description=(
            "development: worker and service migrate the database at start; production: they refuse "
            "a database behind the code (run `./collect migrate`)"
        ),
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for a terminal; json: one object per line, for a log shipper"
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector (e.g. http://otel-collector:4318): traces from API to carrier; unset: off",
    )
    temporal_address: str = Field(
        default="localhost:7233",
        description="Temporal frontend; `./collect server`/`demo` start their dev server on its port",
    )
    temporal_ui_port: int = Field(
        default=8233,
        gt=0,
        lt=65536,
        description="Web UI port of the dev server `./collect server`/`demo` start",
    )
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_api_key: SecretStr | None = None
    # mutual TLS to a frontend of your own (compose issues these: runtime/certs.py); any of them turns TLS on
    temporal_tls_ca_file: Path | None = Field(
        default=None, description="PEM of the CA that signed the frontend's certificate (a private CA)"
    )
    temporal_tls_cert_file: Path | None = Field(
        default=None, description="PEM of this process's client certificate (mTLS)"
    )
    temporal_tls_key_file: Path | None = Field(default=None, description="PEM of that certificate's key")
    temporal_tls_server_name: str | None = Field(
        default=None, description="The name in the frontend's certificate, when the address says another"
    )
    task_queue: str = "collections"
    contact_task_queue: str = "collections-contact"
    strict_sandbox: bool = Field(
        default=True,
        description="Re-import our workflow modules in each workflow's sandbox (false: faster, less memory)",
    )
    workflow_task_slots: int = Field(
        default=16,
        ge=2,
        description=(
            "Workflow tasks a worker takes at once. Python runs them one at a time under the GIL, so "
            "more slots only queue tasks inside the worker, where their 10 s timeout runs: with the SDK's "
            "100, a burst of cold accounts (0.1 to 0.25 s each in the sandbox) timed out and was redone"
        ),
    )
    max_cached_workflows: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Open accounts a worker keeps in memory (sticky cache); the rest replay when they wake. "
            "Empty: sized from the machine's memory (see sticky_cache)"
        ),
    )

    # where the local processes keep their state: the dev server's SQLite file and log, the demo's
    # secrets, and (unless database_url says otherwise) the application's SQLite database
    state_dir: Path = Field(
        default=ROOT / "var", description="State directory of the local stack (relative: to the project)"
    )

    # application database; empty: SQLite in the state directory (state_dir/collect.db)
    database_url: str = ""

    # the collection agencies the lender contracts with (regions, licences, capacity)
    agencies_file: Path = Field(
        default=ROOT / "policies" / "agencies.toml",
        description="The agencies file (relative: to the project): who serves which region under which licence",
    )
    # champion/challenger (domain/strategy.py): no such file, no test; intake gives the rows' policies
    strategy_file: Path = Field(
        default=ROOT / "policies" / "strategies" / "current.toml",
        description="The champion/challenger strategy intake assigns new accounts by (relative: to the project)",
    )

    # Twilio; with no account SID the local carrier simulator stands in
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str = "+15005550006"
    twilio_api_base_url: str | None = Field(
        default=None, description="Send the SDK's requests here instead of api.twilio.com (simulator, Prism)"
    )
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8099
    sender_messages_per_second: float = Field(default=1.0, gt=0, description="Twilio long code: about 1/s")
    public_base_url: str | None = Field(
        default=None,
        description="Public URL of the HTTP service for Twilio callbacks; unset: poll for outcomes",
    )
    status_poll_first_seconds: float = Field(
        default=0.2,
        gt=0,
        le=5,
        description="after a send, the first pause before asking again for its final status (then x1.5, "
        "at most 5 s); the database, where webhooks land, is read at the same pace",
    )

    # who we are, in messages
    company_name: str = "Acme Finance"
    callback_number: str = "+15005550006"
    agent_name: str = "Sam Taylor"
    self_service_url: str = Field(
        default="",
        description="Base of the debtor's self-service link; empty: http://localhost:<service_port>/me",
    )

    # the HTTP service (negotiation API, consoles, webhooks, codec endpoint)
    service_host: str = "127.0.0.1"
    service_port: int = 8000
    api_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='Bearer tokens: JSON {"<token>": "<name>:<role>"}, role one of agent, supervisor, auditor',
    )
    console_idle_minutes: int = Field(
        default=30, gt=0, le=24 * 60, description="A console session unused this long is signed out"
    )
    console_session_hours: int = Field(
        default=12, gt=0, le=7 * 24, description="A console session ends this long after sign-in, used or not"
    )
    login_attempts_per_minute: int = Field(
        default=5, gt=0, description="Console sign-in tries per client address (and per token) per minute"
    )
    oidc_issuer: str = Field(
        default="",
        description="OpenID Connect issuer operators sign in to the console with; empty: API tokens",
    )
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_role_claim: str = Field(
        default="collect_role", description="ID-token claim holding the operator's role (agent, supervisor …)"
    )
    oidc_name_claim: str = Field(
        default="preferred_username", description="ID-token claim naming the operator"
    )
    rate_limit_storage: str = Field(
        default="",
        description="Where every service replica counts failed tries: a Redis URL (redis://host:6379); "
        "empty: each process in its own memory",
    )
    refusals_per_minute: int = Field(
        default=20,
        gt=0,
        description="Refused requests (forged links and webhooks, codec calls without a valid token) one "
        "client address may make per minute before every request from it waits (429)",
    )
    link_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the debtor's self-service links (required to issue links)"
    )
    link_ttl_days: int = Field(default=14, gt=0, le=90)
    # the debtor pays from their page (service/checkout): Stripe Checkout where a key is set, else, in
    # development only, the local checkout simulator
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe secret key (sk_live_… / sk_test_…); unset: no Stripe"
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of the Stripe webhook endpoint (whsec_…), required with a key",
    )
    stripe_api_base: str | None = Field(
        default=None, description="Another Stripe API address (a local stand-in); unset: api.stripe.com"
    )
    signin_countries: list[str] = Field(
        default_factory=lambda: ["US", "CN", "GB"],
        min_length=1,
        description="Countries a debtor may pick at /me to key in a number without its +code (ISO 3166 "
        'alpha-2, JSON: ["US", "CN"]); the first is the default (zh-CN pages: CN when listed)',
    )
    signin_codes_per_number_per_hour: int = Field(
        default=5, gt=0, description="Sign-in codes one number may be sent per hour (asked for at /me)"
    )
    signin_codes_per_address_per_hour: int = Field(
        default=20, gt=0, description="Sign-in codes one client address may ask for per hour, any numbers"
    )
    codec_keys: SecretStr | None = Field(
        default=None,
        description="Payload encryption keys 'kid:base64(32 bytes)[,kid:…]'; the first encrypts, all decrypt",
    )
    ui_origin: str = Field(
        default="",
        description=(
            "Origin of the Temporal UI allowed to call the codec endpoint from the browser (CORS); "
            "empty: http://localhost:<temporal_ui_port>"
        ),
    )
    metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of the worker")
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface of the worker's /metrics (0.0.0.0 in a container)"
    )
    metrics_business: bool = Field(
        default=True,
        description="Also serve the business figures (read from the database) on the worker's /metrics",
    )

    # events out to the lender's systems: the deliverer (workers/events.py, `./collect events`)
    events_in_worker: bool = Field(
        default=False,
        description="Also run the event deliverer inside each worker process, instead of a process of its own",
    )
    events_timeout_seconds: float = Field(
        default=15,
        gt=0,
        le=120,
        description="How long a subscriber's endpoint may take to answer one delivery (the specification: 15-30 s)",
    )
    events_max_attempts: int = Field(
        default=16,
        ge=1,
        le=100,
        description="Tries of one delivery before it is a dead letter, which stops that account's events "
        "for that subscription until an operator sends it again",
    )
    events_backoff_seconds: float = Field(
        default=5, gt=0, description="The wait after a delivery's first failed try; it doubles after each"
    )
    events_backoff_max_seconds: float = Field(
        default=21_600, gt=0, description="The longest wait between two tries of a delivery (6 hours)"
    )
    events_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Accounts one deliverer sends to at once (one event at a time each)",
    )
    events_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle deliverer looks for new events"
    )

    # time: real seconds per policy day (86400 = real time; 2 = a policy day every two seconds)
    day_seconds: float = Field(default=86_400, gt=0)

    @field_validator("signin_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        import phonenumbers

        codes = [code.strip().upper() for code in value]
        unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(
                f"signin_countries: {', '.join(unknown)} is not a country code phonenumbers knows"
            )
        return codes

    @field_validator("state_dir", "agencies_file", "strategy_file")
    @classmethod
    def _under_project(cls, value: Path) -> Path:
        return value if value.is_absolute() else ROOT / value

    @field_validator("temporal_tls_ca_file", "temporal_tls_cert_file", "temporal_tls_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty variable (compose's default emptied in .env for Temporal Cloud) means "not set"."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _client_certificate_pairs(self) -> Settings:
        if (self.temporal_tls_cert_file is None) != (self.temporal_tls_key_file is None):
            given, missing = (
                ("temporal_tls_cert_file", "temporal_tls_key_file")
                if self.temporal_tls_key_file is None
                else ("temporal_tls_key_file", "temporal_tls_cert_file")
            )
            raise ValueError(
                f"{missing}: {given} is set, and a client certificate needs both its PEM and its key"
            )
        return self

    @model_validator(mode="after")
    def _stripe_pair(self) -> Settings:
        if self.stripe_secret_key is not None and self.stripe_webhook_secret is None:
            raise ValueError(
                "stripe_webhook_secret: a Stripe key is set, and a payment is taken only on the webhook "
                "that secret verifies"
            )
        return self

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        """Defaults that follow other settings, so a second stack needs only its ports and state dir."""
        if not self.database_url:
            self.database_url = f"sqlite:///{self.state_dir / 'collect.db'}"
        if not self.self_service_url:
            self.self_service_url = f"http://localhost:{self.service_port}/me"
        if not self.ui_origin:
            self.ui_origin = f"http://localhost:{self.temporal_ui_port}"
        return self

    @property
    def migrate_on_start(self) -> bool:
        """Whether a worker or the service brings the schema up to date itself (development only)."""
        return self.env == "development"

    @property
    def sticky_cache(self) -> int:
        """The worker's sticky cache: ``max_cached_workflows`` if set, else a quarter of the memory
        this process may use at :data:`CACHED_ACCOUNT_BYTES` per account, never under
        :data:`MIN_STICKY_CACHE`. Why from memory: an account out of the cache is replayed before a
        plan update runs, and that replay, not the update, is what made ``propose_settlement`` slow
        at 10,000 open accounts with a fixed 2,000 (bench: p99 x2.71 of the raw update, x1.63 with
        all of them cached); memory, not the cache's size, is the real limit."""
        if self.max_cached_workflows is not None:
            return self.max_cached_workflows
        usable = memory_limit_bytes()
        if usable is None:
            return MIN_STICKY_CACHE
        return max(MIN_STICKY_CACHE, min(MAX_STICKY_CACHE, usable // 4 // CACHED_ACCOUNT_BYTES))

    @property
    def temporal_host(self) -> str:
        return split_address(self.temporal_address)[0]

    @property
    def temporal_port(self) -> int:
        return split_address(self.temporal_address)[1]

    @property
    def temporal_is_local(self) -> bool:
        """The address is this machine's: a local dev server may be started on its port."""
        return self.temporal_host.lower() in LOCAL_HOSTS

    @property
    def using_simulator(self) -> bool:
        return not self.twilio_account_sid

    @property
    def twilio_sid(self) -> str:
        return self.twilio_account_sid or SIMULATOR_SID

    @property
    def twilio_token(self) -> str:
        if self.twilio_auth_token is not None:
            return self.twilio_auth_token.get_secret_value()
        return SIMULATOR_TOKEN if self.using_simulator else ""

    @property
    def twilio_base(self) -> str | None:
        if self.twilio_api_base_url:
            return self.twilio_api_base_url
        return f"http://{self.simulator_host}:{self.simulator_port}" if self.using_simulator else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
