"""The app factory: everything built from `Settings`, the same for production and tests."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.conversation import Conversation
from bot.metrics import Metrics
from db.migrate import upgrade
from db.session import create_engine, create_reader, create_sessionmaker
from handlers.reading import places
from handlers.reading.content import Content, load_content
from words.i18n import Translations

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class App:
    """The running application's parts."""

    settings: Settings
    engine: AsyncEngine
    conversation: Conversation
    translations: Translations
    metrics: Metrics = field(default_factory=Metrics)
    reader: AsyncEngine | None = None  # long reads beside the writer (SQLite)

    async def close(self) -> None:
        """Finish the updates in hand, then release the database."""
        await self.conversation.close()
        await self.engine.dispose()
        if self.reader is not None:
            await self.reader.dispose()


async def build_app(settings: Settings, *, migrate: bool = True) -> App:
    """Connect, bring the schema up to date, load catalogs and content."""
    content = load_content(settings.petition_file, settings.faq_file)  # training begins
    translations = Translations(settings.locales_dir)
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    reader = create_reader(engine)
    conversation = Conversation(
        sessions=create_sessionmaker(engine),
        readers=create_sessionmaker(reader) if reader is not None else None,
        translations=translations,
        content=content,
        goal=settings.petition_goal,
        admin_ids=frozenset(str(admin) for admin in settings.admin_ids),
        cipher=settings.contact_cipher(),
        question_days=settings.question_retention_days,
    )
    if conversation.cipher is None:
        logger.warning(
            "DATA_KEY and HASH_KEY are not set: the bot will not ask for phone numbers or "
            "e-mails (it cannot keep them encrypted)"
        )
    threading.Thread(target=_warm_up, args=(content,), name="warm-up", daemon=True).start()
    return App(
        settings=settings,
        engine=engine,
        conversation=conversation,
        translations=translations,
        metrics=conversation.metrics,
        reader=reader,
    )


def _warm_up(content: Content) -> None:
    """Beside the start: the place names' tables and the FAQ's matcher, which the first
    signers and questions would otherwise wait for; then everything loaded (libraries,
    catalogs, tables), which lives as long as the process, is kept out of the collector's
    full passes, which would otherwise scan it all and pause every conversation for a
    fifth of a second now and then."""
    try:
        places.warm_up()
        content.faq.matcher  # noqa: B018 (waits for the training)
    except Exception:
        logger.exception("warming up failed; the first people will wait for it instead")
        return
    gc.collect()
    gc.freeze()
