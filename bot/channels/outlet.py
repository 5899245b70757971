"""What background work needs from a platform, and what a platform tells it back.

Here, below both, so that the channels (which implement `Outlet` and `Reporter`, and run
`Background` work beside them) and the workers (which drive them) need not import each
other: the CLI puts the two together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from handlers.base import Reply


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the platform did with one message.

    `status`: sent, failed (permanent, with the platform's text), blocked (the person
    blocked the bot or is gone), skipped (with the reason), retry (temporary: timeout, 5xx,
    network), or again (429: resend once the pause of `retry_after` seconds is over).
    """

    status: str
    message_id: str | None = None
    error: str | None = None
    retry_after: float = 0.0
    pieces: int = 0  # of a message sent in parts, how many have gone (resume from there)


class Outlet(Protocol):
    """How broadcasts reach people on one platform."""

    async def send(self, external_id: str, reply: Reply, *, paid: bool, resume: int = 0) -> Outcome:
        """Send one broadcast message, from its part `resume` on when an earlier try sent
        the first parts; never raises."""

    async def close(self) -> None:
        """Release the connections."""


class Reporter(Protocol):
    """Where admins read a broadcast's progress (Telegram)."""

    async def post(self, chat: str, text: str) -> str | None:
        """Send a message; its id, or None when it failed (logged)."""

    async def edit(self, chat: str, message_id: str, text: str) -> None:
        """Replace a message's text; failures are logged."""


# How background work writes to an admin: (admin's platform id, text). None where the
# channel has no admins to write to.
Notify = Callable[[str, str], Awaitable[None]]
# Work that runs beside a channel while it serves (the broadcaster, the watch): the channel
# enters it once it is ready and leaves it on its way out.
Background = Callable[[Notify | None], AbstractAsyncContextManager[object]]


@contextlib.asynccontextmanager
async def beside_nothing(_notify: Notify | None) -> AsyncIterator[None]:
    """No background work: a channel run on its own (tests, `petitionbot chat`)."""
    yield
