"""The answers this process sent, added every second to the counts every broadcaster reads
(db/sends.py): Telegram's overall rate is one, shared by answers and broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from bot.app import App
from db import sends

logger = logging.getLogger(__name__)

EVERY = 1.0  # seconds between two additions


async def publish(app: App) -> None:
    """Add what was sent since the last time (nothing written when nothing was sent)."""
    pending = {channel: count for channel, count in app.metrics.unpublished.items() if count}
    if not pending:
        return
    for channel in pending:
        app.metrics.unpublished[channel] -= pending[channel]
    try:
        async with app.conversation.sessions() as session, session.begin():
            for channel, count in pending.items():
                await sends.add_sent(session, channel=channel, count=count)
    except Exception:
        # A count lost makes a broadcast a little fast for a few seconds, nothing more.
        logger.warning("could not count the answers sent", exc_info=True)


@contextlib.asynccontextmanager
async def publishing(app: App) -> AsyncIterator[None]:
    """Publish every EVERY seconds while the block runs, and once more on the way out."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(EVERY)
            await publish(app)

    task = asyncio.create_task(loop(), name="answers-published")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await publish(app)
