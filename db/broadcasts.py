"""Broadcast queries: audiences, the outbox (claimed, recorded, recovered) and the figures.

An outbox row goes pending → sending (claimed, committed before the platform is called) →
sent, failed, blocked or skipped; a row still `sending` when a worker dies becomes `unknown`
and is never sent again. Claims are one conditional UPDATE, so two workers never hold the
same row. The broadcaster's lease (one sender at a time) is the only dialect-specific part:
it sits at the end of this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    String,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from db.models import Broadcast, OutboxMessage, Signature, User, utcnow

logger = logging.getLogger(__name__)

_USERS: Table = User.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_BROADCASTS: Table = Broadcast.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]

# Channels a broadcast can reach (the console is a terminal, not a person to write to).
CHANNELS = ("telegram", "messenger")
LANGUAGES = ("km", "en")
STATUSES = ("pending", "sending", "sent", "failed", "blocked", "skipped", "unknown")
# Why a row was not sent, as stored in `outbox.error` (organisers read them in reports).
OPTED_OUT = "opted out before it was sent"
OUTSIDE_WINDOW = "messenger: more than 24 hours since their last message"
CANCELLED = "broadcast cancelled"
IN_FLIGHT = "in flight when the worker stopped: may have arrived, not sent again"
MESSENGER_WINDOW = timedelta(hours=24)


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands them back without a zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---------------------------------------------------------------- audiences


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives a broadcast, among the people who opted in (empty lists: no filter).

    Countries and regions add up (people in France, or in California); languages, provinces
    and `signers_only` narrow down. A place or a province implies a (counted) signature.
    """

    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    regions: tuple[tuple[str, str], ...] = ()  # (country, region)
    provinces: tuple[str, ...] = ()
    signers_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """The form stored in `broadcasts.audience`."""
        return {
            "languages": list(self.languages),
            "countries": list(self.countries),
            "regions": [list(pair) for pair in self.regions],
            "provinces": list(self.provinces),
            "signers_only": self.signers_only,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Audience:
        """Read back what `to_json` stored (unknown keys and bad values are ignored)."""
        data = data or {}

        def strings(key: str) -> tuple[str, ...]:
            values = data.get(key) or []
            return tuple(str(value) for value in values if isinstance(value, str))

        regions = tuple(
            (str(pair[0]), str(pair[1]))
            for pair in data.get("regions") or []
            if isinstance(pair, list | tuple) and len(pair) == 2
        )
        return cls(
            languages=strings("languages"),
            countries=strings("countries"),
            regions=regions,
            provinces=strings("provinces"),
            signers_only=bool(data.get("signers_only")),
        )

    @property
    def needs_signature(self) -> bool:
        """Whether only signers can match."""
        return bool(self.signers_only or self.countries or self.regions or self.provinces)


def _reachable() -> Any:
    # Marked unreachable when the platform refused them; writing to us again undoes it.
    return or_(_USERS.c.unreachable_at.is_(None), _USERS.c.last_seen_at > _USERS.c.unreachable_at)


def _wants_news() -> list[Any]:
    """Opted in, reachable, and not blocked by an admin."""
    return [_USERS.c.updates_opt_in.is_(True), _USERS.c.blocked.is_(False), _reachable()]


def _eligible() -> list[Any]:
    """Who may ever receive a broadcast: someone who wants news, on a channel we can reach."""
    return [*_wants_news(), _USERS.c.channel.in_(CHANNELS)]


def _language() -> Any:
    # Inline, not a bound parameter: PostgreSQL must see the same expression in GROUP BY.
    return func.coalesce(_USERS.c.language, literal_column("'km'", String))


def _conditions(audience: Audience) -> list[Any]:
    conditions = _eligible()
    if audience.languages:
        conditions.append(_language().in_(list(audience.languages)))
    places: list[Any] = []
    if audience.countries:
        places.append(_SIGNATURES.c.country.in_(list(audience.countries)))
    for country, region in audience.regions:
        places.append(
            and_(
                _SIGNATURES.c.country == country,
                func.lower(_SIGNATURES.c.region) == func.lower(literal(region)),
            )
        )
    if places:
        conditions.append(or_(*places))
    if audience.provinces:
        conditions.append(_SIGNATURES.c.birth_province.in_(list(audience.provinces)))
    if audience.needs_signature:
        conditions += [_SIGNATURES.c.id.is_not(None), _SIGNATURES.c.invalidated_at.is_(None)]
    return conditions


_PEOPLE = _USERS.outerjoin(_SIGNATURES, _SIGNATURES.c.user_id == _USERS.c.id)


def version_language(versions: Iterable[str]) -> Any:
    """SQL for the version a person gets: their language's, else the one there is."""
    have = [language for language in LANGUAGES if language in set(versions)]
    if not have:
        raise ValueError("a broadcast needs at least one language version")
    if len(have) == 1:
        return literal(have[0])
    return case((_language() == "en", "en"), else_="km")


async def count_audience(session: AsyncSession, *, audience: Audience) -> dict[str, int]:
    """How many people the audience holds, by their language ({"km": 10, "en": 3})."""
    rows = await session.execute(
        select(_language(), func.count())
        .select_from(_PEOPLE)
        .where(*_conditions(audience))
        .group_by(_language())
    )
    return {str(language): int(count) for language, count in rows.all()}


# ---------------------------------------------------------------- broadcasts


async def create_broadcast(
    session: AsyncSession,
    *,
    created_by: str,
    versions: dict[str, Any],
    audience: Audience,
    scheduled_for: datetime,
    rate: float,
    paid: bool,
    total: int,
    report_channel: str | None = None,
    report_chat: str | None = None,
) -> int:
    """A scheduled broadcast (due now, or later); its outbox is filled when it starts."""
    broadcast = Broadcast(
        created_by=created_by,
        created_at=utcnow(),
        status="scheduled",
        versions=versions,
        audience=audience.to_json(),
        scheduled_for=as_utc(scheduled_for),
        rate=rate,
        paid=paid,
        total=total,
        report_channel=report_channel,
        report_chat=report_chat,
    )
    session.add(broadcast)
    await session.flush()
    return broadcast.id


async def get_broadcast(session: AsyncSession, *, broadcast_id: int) -> Broadcast | None:
    """One broadcast, or None."""
    return await session.get(Broadcast, broadcast_id)


async def latest_broadcasts(session: AsyncSession, *, limit: int) -> list[Broadcast]:
    """The newest broadcasts first."""
    rows = await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
    return list(rows.scalars())


async def active_broadcasts(session: AsyncSession) -> list[Broadcast]:
    """Scheduled and running broadcasts, oldest first."""
    rows = await session.execute(
        select(Broadcast)
        .where(Broadcast.status.in_(("scheduled", "running")))
        .order_by(Broadcast.id)
    )
    return list(rows.scalars())


async def start_due(session: AsyncSession, *, now: datetime) -> list[int]:
    """Start every scheduled broadcast that is due: its outbox gets one row per recipient,
    chosen now (whoever opted out meanwhile is left out). Returns the started ids."""
    due = await session.execute(
        select(Broadcast.id, Broadcast.versions, Broadcast.audience)
        .where(Broadcast.status == "scheduled", Broadcast.scheduled_for <= now)
        .order_by(Broadcast.scheduled_for, Broadcast.id)
    )
    started = []
    for broadcast_id, versions, audience in due.all():
        # Only one worker wins the switch from scheduled to running, and only it fills the
        # outbox, in the same transaction.
        won: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
            update(_BROADCASTS)
            .where(_BROADCASTS.c.id == broadcast_id, _BROADCASTS.c.status == "scheduled")
            .values(status="running", started_at=now)
        )
        if won.rowcount != 1:
            continue
        total = await _fill_outbox(
            session,
            broadcast_id=broadcast_id,
            versions=versions,
            audience=Audience.from_json(audience),
            now=now,
        )
        await session.execute(
            update(_BROADCASTS).where(_BROADCASTS.c.id == broadcast_id).values(total=total)
        )
        started.append(broadcast_id)
    return started


async def _fill_outbox(
    session: AsyncSession,
    *,
    broadcast_id: int,
    versions: dict[str, Any],
    audience: Audience,
    now: datetime,
) -> int:
    people = (
        select(
            literal(broadcast_id),
            _USERS.c.id,
            _USERS.c.channel,
            _USERS.c.external_id,
            version_language(versions),
            literal("pending"),
            literal(0),
            literal(now, type_=_OUTBOX.c.updated_at.type),
        )
        .select_from(_PEOPLE)
        .where(*_conditions(audience))
        .order_by(_USERS.c.id)
    )
    columns = ["broadcast_id", "user_id", "channel", "external_id", "language", "status",
               "attempts", "updated_at"]  # fmt: skip
    await session.execute(insert(_OUTBOX).from_select(columns, people))
    counted = await session.execute(
        select(func.count()).select_from(_OUTBOX).where(_OUTBOX.c.broadcast_id == broadcast_id)
    )
    return int(counted.scalar_one())


async def set_report_message(
    session: AsyncSession, *, broadcast_id: int, message_id: str | None
) -> None:
    """Remember where the admin's progress message is."""
    await session.execute(
        update(_BROADCASTS)
        .where(_BROADCASTS.c.id == broadcast_id)
        .values(report_message_id=message_id)
    )


async def finish_if_done(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """Mark a running broadcast done once no row is pending or in flight."""
    left = exists().where(
        _OUTBOX.c.broadcast_id == broadcast_id, _OUTBOX.c.status.in_(("pending", "sending"))
    )
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(_BROADCASTS)
        .where(_BROADCASTS.c.id == broadcast_id, _BROADCASTS.c.status == "running", ~left)
        .values(status="done", finished_at=now)
    )
    return result.rowcount == 1


async def cancel_broadcast(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """Cancel a scheduled or running broadcast: its pending rows are skipped (rows already
    in flight finish). False when it was neither."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(_BROADCASTS)
        .where(
            _BROADCASTS.c.id == broadcast_id,
            _BROADCASTS.c.status.in_(("scheduled", "running")),
        )
        .values(status="cancelled", finished_at=now)
    )
    if result.rowcount != 1:
        return False
    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.broadcast_id == broadcast_id, _OUTBOX.c.status == "pending")
        .values(status="skipped", error=CANCELLED, updated_at=now)
    )
    return True


# ---------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class Figures:
    """How many outbox rows of a broadcast are in each state."""

    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    skipped: int = 0
    unknown: int = 0

    @property
    def total(self) -> int:
        """Every row."""
        return sum(getattr(self, status) for status in STATUSES)

    @property
    def remaining(self) -> int:
        """Rows still to send (pending, or in flight)."""
        return self.pending + self.sending


async def figures(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Figures]:
    """The figures of each broadcast (an empty one for a broadcast with no rows yet)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(_OUTBOX.c.broadcast_id, _OUTBOX.c.status, func.count())
        .where(_OUTBOX.c.broadcast_id.in_(list(ids)))
        .group_by(_OUTBOX.c.broadcast_id, _OUTBOX.c.status)
    )
    found: dict[int, dict[str, int]] = {broadcast_id: {} for broadcast_id in ids}
    for broadcast_id, status, count in rows.all():
        if status in STATUSES:
            found[int(broadcast_id)][str(status)] = int(count)
    kept = await session.execute(
        select(Broadcast.id, Broadcast.figures).where(
            Broadcast.id.in_(list(ids)), Broadcast.figures.is_not(None)
        )
    )
    for broadcast_id, counts in kept.all():  # its rows were purged: the figures stayed
        found[int(broadcast_id)] = {k: int(v) for k, v in counts.items() if k in STATUSES}
    return {broadcast_id: Figures(**counts) for broadcast_id, counts in found.items()}


async def purge_outbox(session: AsyncSession, *, finished_before: datetime) -> int:
    """Retention: the outbox rows (who got which news) of broadcasts that finished before a
    moment go; each keeps its figures. Returns how many rows went."""
    ids = list(
        (
            await session.execute(
                select(Broadcast.id).where(
                    Broadcast.status.in_(("done", "cancelled")),
                    Broadcast.finished_at < finished_before,
                    Broadcast.figures.is_(None),
                )
            )
        ).scalars()
    )
    purged = 0
    for broadcast_id, counted in (await figures(session, ids=ids)).items():
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(figures={status: getattr(counted, status) for status in STATUSES})
        )
        gone: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
            delete(_OUTBOX).where(_OUTBOX.c.broadcast_id == broadcast_id)
        )
        purged += int(gone.rowcount or 0)
    return purged


# ---------------------------------------------------------------- the outbox


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row a worker took: whom to send which version."""

    id: int
    user_id: int
    channel: str
    external_id: str
    language: str
    attempts: int
    pieces_sent: int = 0  # of a message in parts, those already delivered


@dataclass(frozen=True, slots=True)
class Result:
    """What became of a claimed row: its new status (`pending` again for a retry)."""

    id: int
    status: str
    message_id: str | None = None
    error: str | None = None
    attempts: int = 0
    not_before: datetime | None = None
    user_id: int | None = None  # set for `blocked`: the person is opted out
    pieces_sent: int = 0


class ClaimedRows(list[Claimed]):
    """The rows claimed to send, and how many rows the claim took in all: those skipped on
    the way (opted out meanwhile, outside Messenger's window) count there, so an all-skipped
    claim is not mistaken for the end of the broadcast."""

    touched: int = 0


async def claim(
    session: AsyncSession, *, broadcast_id: int, limit: int, now: datetime
) -> ClaimedRows:
    """Take up to `limit` due pending rows, oldest first, marking them `sending` in one
    conditional UPDATE that only one worker can win for each row.

    Rows whose person opted out, became unreachable or was blocked since the broadcast
    started are skipped on the way, and Messenger people who last wrote more than 24 hours
    ago too (the platform allows no message then); those are not returned.
    """
    rows = (await session.execute(claim_statement(broadcast_id, limit, now))).all()
    claimed = ClaimedRows(
        sorted(
            (Claimed(row.id, row.user_id, row.channel, row.external_id, row.language,
                     row.attempts, pieces_sent=row.pieces_sent)
             for row in rows if row.status == "sending"),
            key=lambda row: row.id,
        )
    )  # fmt: skip
    claimed.touched = len(rows)
    return claimed


def claim_statement(broadcast_id: int, limit: int, now: datetime) -> Update:
    """The one statement of `claim` (tests read its plan)."""
    # A CTE, not `IN (SELECT ... LIMIT n)`: PostgreSQL may run such a subquery again for
    # each row it updates, and take more than n; a locking CTE runs once.
    due = (
        select(_OUTBOX.c.id)
        .where(
            _OUTBOX.c.broadcast_id == broadcast_id,
            _OUTBOX.c.status == "pending",
            or_(_OUTBOX.c.not_before.is_(None), _OUTBOX.c.not_before <= now),
        )
        .order_by(_OUTBOX.c.id)
        .limit(limit)
        # PostgreSQL: workers claiming at once take different rows instead of queueing;
        # SQLite has a single writer and ignores the clause.
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    person = and_(_USERS.c.id == _OUTBOX.c.user_id, *_wants_news())
    eligible = exists().where(person)
    in_window = or_(
        _OUTBOX.c.channel != "messenger",
        exists().where(
            _USERS.c.id == _OUTBOX.c.user_id, _USERS.c.last_seen_at >= now - MESSENGER_WINDOW
        ),
    )
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(select(due.c.id)), _OUTBOX.c.status == "pending")
        .values(
            status=case((~eligible, "skipped"), (~in_window, "skipped"), else_="sending"),
            error=case((~eligible, OPTED_OUT), (~in_window, OUTSIDE_WINDOW), else_=None),
            updated_at=now,
        )
        .returning(
            _OUTBOX.c.id,
            _OUTBOX.c.user_id,
            _OUTBOX.c.channel,
            _OUTBOX.c.external_id,
            _OUTBOX.c.language,
            _OUTBOX.c.attempts,
            _OUTBOX.c.status,
            _OUTBOX.c.pieces_sent,
        )
    )


_RECORD = (
    update(_OUTBOX)
    # Not `IN (...)`: an expanding list cannot go into an executemany.
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        or_(_OUTBOX.c.status == "sending", _OUTBOX.c.status == "unknown"),
    )
    .values(
        status=bindparam("new_status"),
        message_id=bindparam("new_message_id"),
        error=bindparam("new_error"),
        attempts=bindparam("new_attempts"),
        not_before=bindparam("new_not_before"),
        pieces_sent=bindparam("new_pieces_sent"),
        updated_at=bindparam("now"),
    )
)


async def record(session: AsyncSession, *, results: Sequence[Result], now: datetime) -> None:
    """Write what became of claimed rows, in one statement; the people who blocked the bot
    are opted out and marked unreachable."""
    if not results:
        return
    rows = [
        {
            "row_id": result.id,
            "new_status": result.status,
            "new_message_id": result.message_id,
            "new_error": result.error[:200] if result.error else None,
            "new_attempts": result.attempts,
            "new_not_before": result.not_before,
            "new_pieces_sent": result.pieces_sent,
            "now": now,
        }
        for result in results
    ]
    await session.execute(_RECORD, rows)
    gone = [r.user_id for r in results if r.status == "blocked" and r.user_id is not None]
    if gone:
        await opt_out(session, user_ids=gone, now=now)


async def opt_out(session: AsyncSession, *, user_ids: Sequence[int], now: datetime) -> None:
    """The platform refuses to deliver to these people: no more news, and unreachable."""
    await session.execute(
        update(_USERS)
        .where(_USERS.c.id.in_(list(user_ids)))
        .values(updates_opt_in=False, unreachable_at=now)
    )
    await session.execute(
        update(_SIGNATURES)
        .where(_SIGNATURES.c.user_id.in_(list(user_ids)))
        .values(updates_opt_in=False)
    )


async def mark_unreachable(
    session: AsyncSession, *, channel: str, external_id: str, now: datetime
) -> bool:
    """Someone blocked the bot (the platform told us): opt them out; False if unknown."""
    found = await session.execute(
        select(_USERS.c.id).where(_USERS.c.channel == channel, _USERS.c.external_id == external_id)
    )
    user_id = found.scalar_one_or_none()
    if user_id is None:
        return False
    await opt_out(session, user_ids=[user_id], now=now)
    return True


async def set_reachable(session: AsyncSession, *, user_id: int) -> None:
    """They asked for news again: whatever the platform said before, try them again."""
    await session.execute(update(_USERS).where(_USERS.c.id == user_id).values(unreachable_at=None))


async def recover(session: AsyncSession, *, now: datetime) -> dict[int, int]:
    """Rows a dead worker left in flight become `unknown` (never resent): how many, by
    broadcast. Only the lease holder may call this."""
    rows = await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.status == "sending")
        .values(status="unknown", error=IN_FLIGHT, updated_at=now)
        .returning(_OUTBOX.c.broadcast_id)
    )
    found: dict[int, int] = {}
    for (broadcast_id,) in rows.all():
        found[int(broadcast_id)] = found.get(int(broadcast_id), 0) + 1
    return found


# ---------------------------------------------------------------- the lease (dialects)
#
# One broadcaster sends at a time, so the global rate holds however many processes run a
# worker; the others stand by. PostgreSQL: a session advisory lock on a connection kept for
# the purpose (the server frees it when the process dies). SQLite (one machine): an
# exclusive flock on a file beside the database (the kernel frees it when the process dies).

_LOCK_KEY = 0x50455449  # "PETI": the advisory lock's number


class Lease:
    """`await lease.acquire()` → True when this process is the broadcaster."""

    async def acquire(self) -> bool:
        """Try to become the broadcaster, without waiting."""
        raise NotImplementedError

    async def alive(self) -> bool:
        """Whether the lease is still held."""
        return True

    async def release(self) -> None:
        """Stop being the broadcaster."""


class _FileLease(Lease):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _ProcessLease(Lease):
    """An in-memory database lives in one process: a flag within it is enough."""

    _taken = False

    def __init__(self) -> None:
        self._mine = False

    async def acquire(self) -> bool:
        if not self._mine and not _ProcessLease._taken:
            _ProcessLease._taken = self._mine = True
        return self._mine

    async def release(self) -> None:
        if self._mine:
            _ProcessLease._taken = self._mine = False


class _AdvisoryLease(Lease):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._connection is not None:
            return True
        connection = await self.engine.connect()
        try:
            # Autocommit: the connection waits idle, never "idle in transaction".
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}
            )
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def alive(self) -> bool:
        if self._connection is None:
            return False
        try:
            await self._connection.scalar(text("SELECT 1"))
        except Exception:
            logger.warning("the broadcaster's lease connection was lost")
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
            return False
        return True

    async def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(Exception):
            await self._connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY}
            )
        with contextlib.suppress(Exception):
            await self._connection.close()
        self._connection = None


def lease_for(engine: AsyncEngine) -> Lease:
    """The broadcaster's lease for this database."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return _AdvisoryLease(engine)
    if not url.database or url.database == ":memory:":
        return _ProcessLease()
    return _FileLease(Path(f"{url.database}.broadcaster.lock"))


async def outbox_depth(session: AsyncSession) -> int:
    """Broadcast messages waiting to go or in flight, all broadcasts together (metrics)."""
    query = select(func.count()).where(_OUTBOX.c.status.in_(("pending", "sending")))
    return int((await session.execute(query)).scalar_one())
