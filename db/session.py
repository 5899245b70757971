"""Engine and session factory; the one place that knows SQLite needs pragmas."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

logger = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters (names, phone numbers) at DEBUG:
# never let them into the logs, whatever level the rest of the program runs at.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`: SQLite (WAL, one writer connection) or PostgreSQL.

    Statement parameters are hidden from errors and logs: they hold names and phone numbers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite has one writer at a time: a single connection queues transactions in-process
    # instead of making them spin on the file lock. Every use of it ends in a commit or a
    # rollback, so the pool's extra rollback on return (a thread hand-off) is skipped.
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        hide_parameters=True,
        pool_reset_on_return=None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep their objects readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
