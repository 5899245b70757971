"""The one module that knows SQL dialects differ: inserts that ignore conflicts, and how
deleted data really leaves the file."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Column, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Set on a session whose transaction deleted personal data (an erasure, anonymising): once it
# commits, `forget_deleted` runs.
FORGET = "forget_deleted"


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


def locks_rows(session: AsyncSession) -> bool:
    """Whether `SELECT ... FOR UPDATE` locks rows here (PostgreSQL). SQLite has one writer
    at a time and ignores it: a statement to take the locks would be a wasted trip."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def mark_deleted(session: AsyncSession) -> None:
    """Note that this transaction deleted personal data, for `forget_deleted` after commit."""
    session.info[FORGET] = True


async def forget_deleted(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After a commit that deleted personal data: on SQLite, copy the write-ahead log into the
    file (whose deleted cells `secure_delete` has zeroed) and truncate the log, so that the
    old rows are in neither file. PostgreSQL keeps dead rows until VACUUM reclaims them
    (autovacuum does, or the operator after `anonymise`)."""
    async with sessions() as session:
        if session.bind is None or session.bind.dialect.name != "sqlite":
            return
        # Outside a transaction: a checkpoint cannot run inside one.
        connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await session.commit()


def insert_adding(session: AsyncSession, table: Table, key: str, column: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET column = column + the new row's, for the
    session's dialect: a count that several processes add to."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return _adding(dialect, table, key, column)


@cache
def _adding(dialect: str, table: Table, key: str, column: str) -> Insert:
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        raise NotImplementedError(f"no adding insert for {dialect}")
    statement = module.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={column: table.c[column] + statement.excluded[column]},
    )
