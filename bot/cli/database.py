"""`petitionbot db upgrade`: the schema brought up to date."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.config import Settings


def add_commands(commands: Any) -> None:
    """Add `db upgrade`."""
    db = commands.add_parser("db", help="database tasks")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="bring the schema up to date")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of these; None otherwise."""
    if args.command != "db":
        return None
    asyncio.run(_db_upgrade(settings))
    print("Database is up to date.")
    return 0


async def _db_upgrade(settings: Settings) -> None:
    from db.migrate import upgrade
    from db.session import create_engine

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
