"""Work that goes on beside the conversation: the broadcaster (`broadcast`) and the watch
(`watch`: spikes, retention, milestones). Each keeps its state in the database, so any
process can take over what another began.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot.app import App
from bot.channels.outlet import Background, Notify
from bot.workers.answers import publishing
from bot.workers.broadcast import running_worker
from bot.workers.watch import Watch


def beside(app: App) -> Background:
    """The background work of a serving bot, for a channel to run beside it: the broadcaster,
    the watch where the channel can write to admins, and the count of answers sent."""

    @contextlib.asynccontextmanager
    async def running(notify: Notify | None) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(publishing(app))
            if notify is not None:
                await stack.enter_async_context(Watch(app, notify).running())
            if app.settings.broadcast_in_bot:
                await stack.enter_async_context(running_worker(app))
            yield

    return running
