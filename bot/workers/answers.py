"""The answers this process sent, added every second to the counts every broadcaster reads
(db/sends.py): Telegram's overall rate is one, shared by answers and broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

from bot.app import App
from db import sends

logger = logging.getLogger(__name__)

EVERY = 1.0  # seconds between two additions
FORGET_EVERY = 60  # additions between two clearings of the counts older than a minute


async def publish(app: App, *, forget: bool = False) -> None:
    """Add what was sent since the last time (nothing written when nothing was sent); with
    `forget`, drop the counts older than a minute too."""
    pending = {channel: count for channel, count in app.metrics.unpublished.items() if count}
    if not pending and not forget:
        return
    for channel in pending:
        app.metrics.unpublished[channel] -= pending[channel]
    try:
        async with app.conversation.sessions() as session, session.begin():
            for channel, count in pending.items():
                await sends.add_sent(session, channel=channel, count=count)
            if forget:
                for channel in app.metrics.unpublished:
                    await sends.forget_sent(session, channel=channel)
    except Exception:
        # A count lost makes a broadcast a little fast for a few seconds, nothing more.
        logger.warning("could not count the answers sent", exc_info=True)


@contextlib.asynccontextmanager
async def publishing(app: App) -> AsyncIterator[None]:
    """Publish every EVERY seconds while the block runs, and once more on the way out."""

    async def loop() -> None:
        for turn in itertools.count(1):
            await asyncio.sleep(EVERY)
            await publish(app, forget=turn % FORGET_EVERY == 0)

    task = asyncio.create_task(loop(), name="answers-published")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await publish(app)
