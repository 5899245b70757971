"""Alerts to admins that any process may raise, told once: the first process to claim one
sends it, the others find it claimed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_ignoring_conflicts
from db.models import Alert

_ALERTS: Table = Alert.__table__  # type: ignore[assignment]


async def claim(
    session: AsyncSession, *, kind: str, key: str, now: datetime, every: timedelta
) -> bool:
    """Whether this process is the one to send the alert (`kind`, `key`) now: it was never
    sent, or last sent `every` ago or more. Commit before sending."""
    first = await session.execute(
        insert_ignoring_conflicts(session, _ALERTS, (_ALERTS.c.id,)),
        [{"kind": kind, "key": key, "sent_at": now}],
    )
    if first.first() is not None:
        return True
    again: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(_ALERTS)
        .where(_ALERTS.c.kind == kind, _ALERTS.c.key == key, _ALERTS.c.sent_at <= now - every)
        .values(sent_at=now)
    )
    return bool(again.rowcount)
