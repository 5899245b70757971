"""How many messages the bots send on their own (answers to people), counted per second in
`counters` by every process, so that a broadcast worker, in whatever process, leaves the
platform's overall rate room for them (bot/workers/broadcast.py)."""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_adding
from db.models import Counter

_PREFIX = "sent:"
WINDOW = 5  # seconds of answers the broadcaster looks back over


def _name(channel: str, second: int) -> str:
    # Zero-padded: names sort as their seconds do, so old ones go with one comparison.
    return f"{_PREFIX}{channel}:{second:012d}"


async def add_sent(
    session: AsyncSession, *, channel: str, count: int, at: float | None = None
) -> None:
    """Count `count` answers sent on `channel` in the second `at` (now)."""
    if count <= 0:
        return
    second = int(time.time() if at is None else at)
    table = Counter.__table__
    statement = insert_adding(session, table, "name", "value")  # type: ignore[arg-type]
    await session.execute(statement, [{"name": _name(channel, second), "value": count}])


async def answers_rate(session: AsyncSession, *, channel: str, at: float | None = None) -> float:
    """Answers a second sent on `channel` by every process over the last WINDOW whole
    seconds (the one under way is not over: its count is still growing)."""
    now = int(time.time() if at is None else at)
    total = await session.execute(
        select(func.coalesce(func.sum(Counter.value), 0)).where(
            Counter.name >= _name(channel, now - WINDOW), Counter.name < _name(channel, now)
        )
    )
    return float(total.scalar_one()) / WINDOW


async def forget_sent(session: AsyncSession, *, channel: str, at: float | None = None) -> None:
    """Drop the counts older than a minute."""
    now = int(time.time() if at is None else at)
    await session.execute(
        delete(Counter).where(
            Counter.name >= _name(channel, 0), Counter.name < _name(channel, now - 60)
        )
    )
