"""The application database: SQLAlchemy 2 models, Alembic migrations and idempotent repository functions.

The repository functions are small, typed, idempotent reads and writes, one module per concern:
:mod:`store.accounts` (accounts and intake), :mod:`store.contacts` (the send-time gate's live inputs,
contact points and contact attempts), :mod:`store.holds`, :mod:`store.ledger` (plans, payments and the
fee-waiver queue), :mod:`store.audit`, :mod:`store.agencies` (field visits and placements) and
:mod:`store.reporting` (the dashboard); :mod:`store.rows` holds what they share.

Every function takes a :class:`~sqlalchemy.orm.Session` inside the caller's transaction
(``with sessions.begin() as s:``) and never commits, so one activity's writes land together or not at
all. Every write is safe to repeat: Temporal retries activities, and a retry after a commit whose
acknowledgement was lost must change nothing.

Only the repository modules and :mod:`store.db` are meant to be imported by the rest of the code base;
ORM rows never leave them (callers get domain models, the pydantic views the modules define, or plain
values), so workflows and activities see domain/pydantic objects only.
"""
