"""The one module that knows SQL dialects differ: inserts that ignore conflicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(
    session: AsyncSession, table: Any, rows: dict[str, Any] | list[dict[str, Any]]
) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING of one row or several, for the session's dialect."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        return postgresql.insert(table).values(rows).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).values(rows).on_conflict_do_nothing()
    raise NotImplementedError(f"no conflict-ignoring insert for {dialect}")
