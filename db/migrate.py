"""Alembic, driven from the program: `petitionbot db upgrade` and the upgrade on start.

Several processes may start together on one database (two bot processes and a broadcast
worker after a deploy): the upgrade holds a lock, so one migrates while the others wait and
then find nothing left to do. PostgreSQL: an advisory lock for the transaction; SQLite: a lock
file beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x50455450  # "PETP": the migrations' advisory lock (the broadcaster's is PETI)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at this package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (one process at a time)."""
    async with _migrating(engine) as connection:
        await connection.run_sync(_run, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database schema down to `revision` (one process at a time)."""
    async with _migrating(engine) as connection:
        await connection.run_sync(_run, "downgrade", revision)


@contextlib.asynccontextmanager
async def _migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that no other process's migration runs beside."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        async with engine.begin() as connection:
            # Released when the transaction ends; a second process waits here.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            yield connection
        return
    if not url.database or url.database == ":memory:":
        async with engine.begin() as connection:
            yield connection
        return
    # SQLite sends no BEGIN before the first write, so two processes could both read "no
    # schema yet" and both create it: a lock file orders them.
    lock = await asyncio.to_thread(_lock_file, Path(f"{url.database}.migrate.lock"))
    try:
        async with engine.begin() as connection:
            yield connection
    finally:
        os.close(lock)


def _lock_file(path: Path) -> int:
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process migrates
    return handle
