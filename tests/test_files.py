"""Files on the server's disk: the SQLite database, its WAL files and its folder.

A copy of the disk or another account on the machine must not read signatures, so every
file the database layer makes is its owner's alone, whatever the umask of the shell that
started the bot (the usual 022 gives every file to every user).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from db import session as db_session
from db.session import create_engine


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask of most shells and service managers: files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


async def write_and_keep_open(path: Path) -> dict[str, int]:
    """Write through the production engine; the files in the folder while it is open, with
    their permission bits (SQLite removes its WAL files when the last connection closes)."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x TEXT)"))
            await connection.execute(text("INSERT INTO t VALUES ('Sophea')"))
        async with engine.connect() as connection:  # the WAL and its index exist while open
            await connection.execute(text("SELECT x FROM t"))
            return {file.name: mode(file) for file in sorted(path.parent.iterdir())}
    finally:
        await engine.dispose()


async def test_a_new_database_and_its_folder_are_the_owners_alone(tmp_path: Path) -> None:
    database = tmp_path / "data" / "petitionbot.sqlite3"
    files = await write_and_keep_open(database)

    # SQLite gives its WAL and shared-memory files the database file's bits.
    assert files == {
        "petitionbot.sqlite3": 0o600,
        "petitionbot.sqlite3-shm": 0o600,
        "petitionbot.sqlite3-wal": 0o600,
    }
    assert mode(database.parent) == 0o700


async def test_an_existing_database_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "shared" / "petitionbot.sqlite3"
    database.parent.mkdir(mode=0o755)
    database.touch(mode=0o644)
    for suffix in ("-wal", "-shm"):  # left by a version that did not care
        database.with_name(database.name + suffix).touch(mode=0o644)

    files = await write_and_keep_open(database)

    assert files == {
        "petitionbot.sqlite3": 0o600,
        "petitionbot.sqlite3-shm": 0o600,
        "petitionbot.sqlite3-wal": 0o600,
    }
    # A folder the organiser chose and made is theirs to set; the files in it are private.
    assert mode(database.parent) == 0o755


async def test_the_projects_own_data_folder_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "data"
    own.mkdir(mode=0o755)  # made by an earlier version, or by hand
    monkeypatch.setattr(db_session, "DATA_FOLDER", own)

    await write_and_keep_open(own / "petitionbot.sqlite3")

    assert mode(own) == 0o700
