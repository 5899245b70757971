"""The app factory: everything built from `Settings`, the same for production and tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.conversation import Conversation
from bot.i18n import Translations
from db import queries
from db.migrate import upgrade
from db.session import create_engine, create_sessionmaker
from handlers import places
from handlers.content import load_content

logger = logging.getLogger(__name__)

# Platforms redeliver an update within minutes; a week of records is plenty.
UPDATE_MEMORY = timedelta(days=7)
HOUSEKEEPING_EVERY = 3600.0


@dataclass(slots=True)
class App:
    """The running application's parts."""

    settings: Settings
    engine: AsyncEngine
    conversation: Conversation
    translations: Translations

    async def forget_old_updates(self) -> int:
        """Drop the records of updates handled more than a week ago."""
        async with self.conversation.sessions() as session, session.begin():
            return await queries.forget_updates(session, older_than=UPDATE_MEMORY)

    @contextlib.asynccontextmanager
    async def housekeeping(self, every: float = HOUSEKEEPING_EVERY) -> AsyncIterator[None]:
        """Run periodic chores in the background while the bot serves."""

        async def loop() -> None:
            while True:
                try:
                    forgotten = await self.forget_old_updates()
                    logger.debug("forgot %d old update records", forgotten)
                except Exception:
                    logger.exception("housekeeping failed; will try again")
                await asyncio.sleep(every)

        task = asyncio.create_task(loop(), name="housekeeping")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Finish the updates in hand, then release the database."""
        await self.conversation.close()
        await self.engine.dispose()


async def build_app(settings: Settings, *, migrate: bool = True) -> App:
    """Connect, bring the schema up to date, load catalogs and content."""
    content = load_content(settings.petition_file)
    places.warm_up()
    translations = Translations(settings.locales_dir)
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    conversation = Conversation(
        sessions=create_sessionmaker(engine),
        translations=translations,
        content=content,
        goal=settings.petition_goal,
    )
    return App(
        settings=settings, engine=engine, conversation=conversation, translations=translations
    )
