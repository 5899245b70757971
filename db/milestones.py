"""Milestones: totals the petition passes, recorded once and announced once.

Recording happens in the transaction that adds signatures (`reach`, from the signing flow and
imports): an insert that ignores conflicts, so the primary key makes each milestone one row
whatever the number of signers and workers crossing it together. Announcing happens later,
outside it: whoever claims a row (`claim`: the update that sets `announced_at`) tells the
admins, and nobody else does.

Signing must stay cheap: each process remembers, per database, which milestones already
have a row, so a signature costs no query at all once a milestone is recorded. That memory is
filled before the commit; if the transaction then rolls back, the watch's next round (which
reloads it from the table with `refresh`) records the milestone instead.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_ignoring_conflicts
from db.models import Milestone, Signature, utcnow
from db.queries import counted_signatures

MILESTONES = (100, 500, 1_000, 5_000, 10_000)  # and the goal

_MILESTONES: Table = Milestone.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
# Per database (engine), the milestones known to have a row.
_recorded: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()


def thresholds(goal: int) -> list[int]:
    """Every milestone, the goal among them, smallest first."""
    return sorted({*MILESTONES, goal})


def _known(session: AsyncSession) -> set[int]:
    return _recorded.setdefault(session.bind, set())


async def reach(session: AsyncSession, *, total: int, goal: int) -> list[int]:
    """Record, in the caller's transaction, the milestones that a counted total of `total`
    has passed; returns those recorded by this call (usually none, and then no query)."""
    known = _known(session)
    due = [value for value in thresholds(goal) if value <= total and value not in known]
    if not due:
        return []
    now = utcnow()
    result = await session.execute(
        insert_ignoring_conflicts(session, _MILESTONES, (_MILESTONES.c.value,)),
        [{"value": value, "reached_at": now, "announced_at": None} for value in due],
    )
    added = sorted(result.scalars())
    known.update(due)
    return added


async def refresh(session: AsyncSession) -> set[int]:
    """Reload from the table which milestones are recorded (the watch does, now and then)."""
    rows = await session.execute(select(_MILESTONES.c.value))
    found = {int(value) for (value,) in rows}
    _recorded[session.bind] = set(found)
    return found


async def unannounced(session: AsyncSession) -> list[int]:
    """Milestones recorded and not yet announced, smallest first."""
    rows = await session.execute(
        select(_MILESTONES.c.value)
        .where(_MILESTONES.c.announced_at.is_(None))
        .order_by(_MILESTONES.c.value)
    )
    return [int(value) for (value,) in rows]


async def claim(session: AsyncSession, *, value: int) -> bool:
    """Take the announcement of a milestone; True for exactly one claimer, ever. Commit
    before sending, so that no other worker claims it too."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(_MILESTONES)
        .where(_MILESTONES.c.value == value, _MILESTONES.c.announced_at.is_(None))
        .values(announced_at=utcnow())
    )
    return result.rowcount == 1


async def latest_signature(session: AsyncSession) -> int | None:
    """The highest signature id (an index lookup): it changes when signatures are added."""
    return (await session.execute(select(func.max(_SIGNATURES.c.id)))).scalar_one_or_none()


async def counted_total(session: AsyncSession) -> int:
    """The number of counted signatures (not set aside): the counter's row, O(1), not a
    count of every signature every 12 seconds while people sign."""
    return await counted_signatures(session)
