"""Engine and session factory; the one place that knows SQLite needs pragmas."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
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
# The project's own folder for data (the default of DATABASE_URL and FILES_DIR in
# bot/config.py): made private even when an earlier version left it open to every user.
DATA_FOLDER = Path(__file__).resolve().parent.parent / "data"


def _owner_only(database: Path) -> None:
    """Make the SQLite file, and the folder when it is ours, readable by their owner only.

    The file is created before SQLite opens it: SQLite gives its -wal, -shm and -journal
    files the database file's permission bits, so they are private too. Existing files are
    tightened; a folder the organiser chose keeps its own mode.
    """
    folder = database.parent
    try:
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)  # mkdir's mode passes through the umask
    except FileExistsError:
        if folder.resolve() == DATA_FOLDER.resolve():
            _tighten(folder, 0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            _tighten(path, 0o600)


def _tighten(path: Path, private: int) -> None:
    """Take away the bits outside `private`, never add any (a read-only file stays so)."""
    current = path.stat().st_mode & 0o777
    if current & 0o077:
        try:
            path.chmod(current & private)
        except OSError as error:
            # Someone else's file: SQLite still opens it, but the organiser should know.
            logger.warning("%s stays readable by others: %s", path, error.strerror)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`: SQLite (WAL, one writer connection) or PostgreSQL.

    Statement parameters are hidden from errors and logs: they hold names and phone numbers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
        count_changes_to_signatures(engine)
        return engine
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        _owner_only(Path(parsed.database))
    engine = _one_connection(url, echo=echo)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # The driver would send BEGIN only before the first write, so what a transaction
        # read first (a person's row) could be overwritten by another process in between
        # and then written back over it: every transaction begins as a writer instead
        # (below), and another process's waits for it (busy_timeout).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # What is deleted (an erased person, anonymised names) is overwritten with zeros,
        # not left in free pages for whoever copies the file (see db/dialect.forget_deleted).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    count_changes_to_signatures(engine)
    return engine


# Every statement that changes or deletes signatures starts so (SQLAlchemy writes them so).
_CHANGING_SIGNATURES = ("UPDATE SIGNATURES ", "DELETE FROM SIGNATURES ")
_CHANGED = "UPDATE counters SET value = value + 1 WHERE name = 'changes'"


def count_changes_to_signatures(engine: AsyncEngine) -> None:
    """Bump the `changes` counter, in the same transaction, after any statement that changed
    or deleted signatures, whatever code sent it: the checkpoint of /stats's figures
    (db/stats.py) is kept only while the counter has not moved. Adding signatures does not
    count: the figures add those from their ids."""

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _changed(
        connection: Any, cursor: Any, statement: str, _p: Any, _c: Any, _many: bool
    ) -> None:
        if statement.lstrip()[:24].upper().startswith(_CHANGING_SIGNATURES) and cursor.rowcount:
            # A cursor of its own: the statement's may still hold rows it returns.
            counter = connection.connection.cursor()
            try:
                counter.execute(_CHANGED)
            finally:
                counter.close()


def create_reader(engine: AsyncEngine) -> AsyncEngine | None:
    """For long reads (/stats over every signature) beside the writer: on a SQLite file, a
    connection of its own that only reads (WAL lets it read while the writer writes, and
    neither waits); None elsewhere, where the engine's pool already has room for it."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    reader = _one_connection(url)

    @event.listens_for(reader.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return reader


def _one_connection(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    # SQLite has one writer at a time: a single connection queues transactions in-process
    # instead of making them spin on the file lock. Every use of it ends in a commit or a
    # rollback, so the pool's extra rollback on return (a thread hand-off) is skipped.
    return create_async_engine(
        url,
        echo=echo,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        hide_parameters=True,
        pool_reset_on_return=None,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep their objects readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
