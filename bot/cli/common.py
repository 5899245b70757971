"""What the shell's commands share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Settings


async def in_transaction(settings: Settings, task: Callable[[Any], Awaitable[int]]) -> int:
    """Run `task(session)` in one transaction on an up-to-date database."""
    from db import dialect
    from db.migrate import upgrade
    from db.session import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        sessions = create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            result = await task(session)
        if session.info.get(dialect.FORGET):
            await dialect.forget_deleted(sessions)
        return result
    finally:
        await engine.dispose()
