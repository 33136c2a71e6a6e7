"""Settings from environment variables (prefix ``COLLECT_``) or a ``.env`` file.

Every knob an operator needs is here and nowhere else, so docker-compose, the README and the
code agree on names. See ``.env.example`` for the documented list.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR_SID = "AC" + "0" * 31 + "1"
SIMULATOR_TOKEN = "simulator-auth-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECT_", env_file=".env", extra="ignore")

    # Temporal
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_api_key: SecretStr | None = None
    task_queue: str = "collections"
    contact_task_queue: str = "collections-contact"
    strict_sandbox: bool = Field(
        default=True,
        description="Re-import our workflow modules in each workflow's sandbox (false: faster, less memory)",
    )
    max_cached_workflows: int = Field(
        default=2000,
        ge=0,
        description="Open accounts a worker keeps in memory (sticky cache); the rest replay when they wake",
    )

    # application database
    database_url: str = f"sqlite:///{ROOT / 'var' / 'collect.db'}"

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

    # who we are, in messages
    company_name: str = "Acme Finance"
    callback_number: str = "+15005550006"
    agent_name: str = "Sam Taylor"
    self_service_url: str = "http://localhost:8000/me"

    # the HTTP service (negotiation API, consoles, webhooks, codec endpoint)
    service_host: str = "127.0.0.1"
    service_port: int = 8000
    api_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='Bearer tokens: JSON {"<token>": "<name>:<role>"}, role one of agent, supervisor, auditor',
    )
    link_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the debtor's self-service links (required to issue links)"
    )
    link_ttl_days: int = Field(default=14, gt=0, le=90)
    codec_keys: SecretStr | None = Field(
        default=None,
        description="Payload encryption keys 'kid:base64(32 bytes)[,kid:…]'; the first encrypts, all decrypt",
    )
    ui_origin: str = Field(
        default="http://localhost:8233",
        description="Origin of the Temporal UI allowed to call the codec endpoint from the browser (CORS)",
    )
    metrics_port: int | None = Field(default=None, description="Prometheus /metrics port of the worker")
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface of the worker's /metrics (0.0.0.0 in a container)"
    )
    metrics_business: bool = Field(
        default=True,
        description="Also serve the business figures (read from the database) on the worker's /metrics",
    )

    # time: real seconds per policy day (86400 = real time; 2 = a policy day every two seconds)
    day_seconds: float = Field(default=86_400, gt=0)

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
