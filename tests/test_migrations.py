"""Every migration goes up and down (the stairway), and the models match the last one."""

from __future__ import annotations

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
