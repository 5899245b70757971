"""The one module that knows SQL dialects differ: inserts that ignore conflicts."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Column, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(
    session: AsyncSession, table: Table, returning: tuple[Column[object], ...] = ()
) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING [RETURNING ...] for the session's dialect.

    Built once per table and dialect and executed with a list of rows, so SQLAlchemy sends
    one multi-row statement from its compiled cache.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return _statement(dialect, table, returning)


@cache
def _statement(dialect: str, table: Table, returning: tuple[Column[object], ...]) -> Insert:
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:
        raise NotImplementedError(f"no conflict-ignoring insert for {dialect}")
    return statement.returning(*returning) if returning else statement
