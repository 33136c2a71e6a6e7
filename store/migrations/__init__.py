"""Alembic migrations of the application database (a package so that wheels ship them)."""
