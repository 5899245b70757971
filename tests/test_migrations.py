"""Every migration goes up and down (the stairway), and the models match the last one."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from db.migrate import alembic_config, downgrade, upgrade
from db.models import Base
from db.session import create_engine


async def test_stairway_upgrades_and_downgrades_every_revision(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    engine = create_engine(database_url)
    try:
        for revision in revisions:
            await upgrade(engine, revision.revision)
            await downgrade(engine, revision.down_revision or "base")
            await upgrade(engine, revision.revision)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"users", "signatures"} <= set(tables)
    finally:
        await engine.dispose()


async def test_models_match_the_migrations(database_url: str) -> None:
    engine = create_engine(database_url)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_processes_that_start_together_migrate_one_after_the_other(
    database_url: str, tmp_path: Path
) -> None:
    """`petitionbot db upgrade & petitionbot db upgrade & wait` on an empty database: one
    migrates while the others wait, and none fails (the bot runs the same upgrade at start)."""
    environment = {**os.environ, "DATABASE_URL": database_url}
    for name in ("TELEGRAM_BOT_TOKEN", "DATA_KEY", "HASH_KEY", "ADMIN_IDS"):
        environment.pop(name, None)

    async def upgrade_in_a_process() -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "upgrade",
            cwd=tmp_path, env=environment,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _out, err = await process.communicate()
        return process.returncode or 0, err

    results = await asyncio.gather(*(upgrade_in_a_process() for _ in range(3)))
    assert [code for code, _err in results] == [0, 0, 0], [err for _code, err in results]
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            heads = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
        script = ScriptDirectory.from_config(alembic_config())
        assert heads == (script.get_current_head(),)
    finally:
        await engine.dispose()
