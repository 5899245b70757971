"""Runs one update through the handlers: in order per person, in one transaction, once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Translations
from db import queries
from db.models import utcnow
from handlers import route
from handlers.base import Context, Incoming, Reply
from handlers.content import Content

logger = logging.getLogger(__name__)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, key: str) -> _Held:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._release_ref(key)
            raise
        return _Held(self, key, lock)

    def _release_ref(self, key: str) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(slots=True)
class _Held:
    owner: KeyedLocks
    key: str
    lock: asyncio.Lock

    def release(self) -> None:
        self.lock.release()
        self.owner._release_ref(self.key)


@dataclass(slots=True)
class Conversation:
    """Everything a handler needs, built once by the app factory."""

    sessions: async_sessionmaker[AsyncSession]
    translations: Translations
    content: Content
    goal: int
    locks: KeyedLocks = field(default_factory=KeyedLocks)

    async def process(
        self,
        *,
        channel: str,
        user_id: str,
        update_key: str | None,
        incoming: Incoming,
        share_link: Callable[[str], str | None],
        deliver: Callable[[list[Reply]], Awaitable[None]] | None = None,
    ) -> list[Reply]:
        """Answer one update; [] when the same update was already handled.

        `deliver` sends the replies after the commit, still in this person's turn, so their
        answers reach them in the order of their messages.
        """
        # Updates of one person queue here so they are handled in the order they came;
        # across workers the row lock taken by `load_user` keeps the same order.
        held = await self.locks(f"{channel}:{user_id}")
        try:
            replies = await self._answer(channel, user_id, update_key, incoming, share_link)
            if deliver is not None and replies:
                await deliver(replies)
            return replies
        finally:
            held.release()

    async def _answer(
        self,
        channel: str,
        user_id: str,
        update_key: str | None,
        incoming: Incoming,
        share_link: Callable[[str], str | None],
    ) -> list[Reply]:
        language: str | None = None
        try:
            async with self.sessions() as session, session.begin():
                if update_key is not None and not await queries.claim_update(
                    session, channel=channel, key=update_key
                ):
                    logger.info("update %s on %s already handled; skipped", update_key, channel)
                    return []
                user = await queries.load_user(session, channel=channel, external_id=user_id)
                user.last_seen_at = utcnow()
                language = user.language
                translator = self.translations.get(user.language)
                ctx = Context(
                    user=user,
                    session=session,
                    gettext=translator.gettext,
                    content=self.content,
                    goal=self.goal,
                    share_link=share_link,
                    channel=channel,
                    translator_for=lambda language: self.translations.get(language).gettext,
                )
                return await route(ctx, incoming)
        except Exception:
            # Nothing was written (the transaction rolled back); say so instead of going quiet.
            logger.exception("update on %s failed; rolled back", channel)
            _ = self.translations.get(language).gettext
            return [Reply(_("Sorry, something went wrong on our side. Please try again."))]
