"""The application database: SQLAlchemy 2 models, Alembic migrations and idempotent repository functions.

Only :mod:`store.repo` and :mod:`store.db` are meant to be imported by the rest of the code base; ORM
rows never leave :mod:`store.repo`, so workflows and activities see domain/pydantic objects only.
"""
