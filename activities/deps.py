"""What activities need at run time, built once per worker process and shared by its threads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from runtime.settings import Settings


@dataclass
class Deps:
    settings: Settings
    engine: Engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)

    @cached_property
    def twilio(self):  # type: ignore[no-untyped-def]
        """The real twilio SDK client, pointed at the simulator or Prism when a base URL is set."""
        from activities.twilio_client import make_twilio_client

        s = self.settings
        return make_twilio_client(s.twilio_sid, s.twilio_token, s.twilio_base)
