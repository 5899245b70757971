"""The figures behind `/stats`: GROUP BY queries, no signature rows loaded into Python, and
at 100,000 signatures no full read of the table either.

The counts over the signatures (totals by language, channel, source and news; provinces of
birth; countries with their regions; signatures per UTC day, which also give today, the last 7
and the last 30 days) are kept in a checkpoint, refreshed in the background by the watch
(bot/workers/watch.py) after every 2,000 new signatures. /stats reads it and counts only the
signatures added after it. The checkpoint holds while no signature has been changed or deleted
since it was taken: every such statement bumps the `changes` counter (db/session.py), and
until the next checkpoint /stats counts everything, as it did before there were any.

Besides: the top share codes (from their index), the volunteers' names of the top codes, and
the users who have not signed, by step (from an index on users). Days are UTC days, computed
from the epoch in SQL so that SQLite and PostgreSQL agree whatever the server's time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Table,
    case,
    cast,
    delete,
    desc,
    extract,
    false,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Counter as CounterRow
from db.models import Signature, StatsCheckpoint, User, VolunteerCode

_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_CODES: Table = VolunteerCode.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = StatsCheckpoint.__table__  # type: ignore[assignment]
_COUNTERS: Table = CounterRow.__table__  # type: ignore[assignment]
CHECKPOINT = "figures"
CHANGES = "changes"  # the counter bumped by every change to signatures (db/session.py)
CHECKPOINT_BEHIND = 2_000  # signatures added after the checkpoint before a new one is taken
SETTLE = timedelta(minutes=1)
_EPOCH = date(1970, 1, 1)
_DAY_SECONDS = 86400
TOP_CODES = 10


@dataclass(frozen=True, slots=True)
class Funnel:
    """Users from their first message to a signature, and where the others are now."""

    started: int = 0  # every user who wrote to the bot
    agreed: int = 0  # accepted the petition text (signers count as having agreed)
    signed: int = 0  # have a counted signature
    # Those with no signature: (their current step, whether they had agreed, how many).
    stops: list[tuple[str, bool, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything `/stats` shows, as plain values. Counts are of counted signatures only
    (those set aside by an admin are in `set_aside` and nowhere else)."""

    total: int = 0
    set_aside: int = 0
    today: int = 0  # since 00:00 UTC
    week: int = 0  # today and the 6 days before
    month: int = 0  # today and the 29 days before
    opted_in: int = 0
    by_language: list[tuple[str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    by_source: list[tuple[str, int]] = field(default_factory=list)
    by_country: list[tuple[str, int]] = field(default_factory=list)
    # Per country, its regions (None: not given), largest first.
    by_region: dict[str, list[tuple[str | None, int]]] = field(default_factory=dict)
    by_province: list[tuple[str, int]] = field(default_factory=list)
    per_day: list[tuple[date, int]] = field(default_factory=list)  # days with signatures
    top_codes: list[tuple[str, str | None, int]] = field(default_factory=list)  # code, name, n
    funnel: Funnel = field(default_factory=Funnel)


def _ranked(counter: Counter[Any]) -> list[tuple[Any, int]]:
    """Largest first; ties in a stable order (by key, None last) so the text is the same
    every time."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0] is None, str(item[0])))


def _day_number(column: Any) -> Any:
    """Whole UTC days since 1970-01-01, in portable SQL (EXTRACT(epoch) on both dialects).

    Subtracting the remainder first keeps the division exact on PostgreSQL, where the epoch
    is a fraction and a cast to integer would round instead of truncate.
    """
    seconds = extract("epoch", column)
    return cast((seconds - seconds % _DAY_SECONDS) / _DAY_SECONDS, Integer)


@dataclass(slots=True)
class _Tally:
    """The signature counts behind the figures, over a range of signature ids: what the
    checkpoint keeps, and what the signatures added since it add to it."""

    # (language, channel, source) → [counted, with news, counted in a chat, set aside,
    # set aside in a chat]
    main: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    provinces: Counter[str] = field(default_factory=Counter)  # counted
    places: Counter[tuple[str, str | None]] = field(default_factory=Counter)  # counted
    days: Counter[int] = field(default_factory=Counter)  # counted, by UTC day number
    codes_aside: Counter[str] = field(default_factory=Counter)  # share codes of those set aside

    def add(self, other: _Tally) -> _Tally:
        for key, values in other.main.items():
            mine = self.main.setdefault(key, [0] * len(values))
            for index, value in enumerate(values):
                mine[index] += value
        self.provinces.update(other.provinces)
        self.places.update(other.places)
        self.days.update(other.days)
        self.codes_aside.update(other.codes_aside)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "main": [[*key, *values] for key, values in self.main.items()],
            "provinces": [[key, n] for key, n in self.provinces.items()],
            "places": [[*key, n] for key, n in self.places.items()],
            "days": [[key, n] for key, n in self.days.items()],
            "codes_aside": [[key, n] for key, n in self.codes_aside.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Tally:
        return cls(
            main={(a, b, c): [int(n) for n in rest] for a, b, c, *rest in data["main"]},
            provinces=Counter({key: int(n) for key, n in data["provinces"]}),
            places=Counter({(country, region): int(n) for country, region, n in data["places"]}),
            days=Counter({int(key): int(n) for key, n in data["days"]}),
            codes_aside=Counter({key: int(n) for key, n in data["codes_aside"]}),
        )


async def figures(session: AsyncSession, *, now: datetime) -> Figures:
    """All the figures, as of `now` (timezone-aware): from the checkpoint and the signatures
    added since it when the checkpoint still holds, from every signature otherwise."""
    tally = await _from_checkpoint(session)
    if tally is None:
        tally = await _tally(session)
    return await _figures(session, tally, now=now)


async def _from_checkpoint(session: AsyncSession) -> _Tally | None:
    """The checkpoint's tally plus the signatures added after it; None when there is no
    checkpoint or a signature has changed or gone since it was taken."""
    kept = (
        await session.execute(
            select(_CHECKPOINTS.c.through_id, _CHECKPOINTS.c.changes, _CHECKPOINTS.c.figures).where(
                _CHECKPOINTS.c.name == CHECKPOINT
            )
        )
    ).first()
    if kept is None or kept.changes != await _changes(session):
        return None
    return _Tally.from_json(kept.figures).add(await _tally_since(session, kept.through_id))


def since_statement(after: int) -> Select[Any]:
    """The signatures after the checkpoint, as `_tally_since` counts them."""
    s = _SIGNATURES.c
    return select(
        s.language, s.channel, s.source, s.invalidated_at.is_(None), s.updates_opt_in,
        s.user_id.is_not(None), s.birth_province, s.country, s.region,
        _day_number(s.created_at), s.referrer_code,
    ).where(s.id > after)  # fmt: skip


def unsigned_statement() -> Select[Any]:
    """Those who have not signed, by step and whether they had agreed (the funnel)."""
    u = _USERS.c
    agreed = case((u.agreed_at.is_(None), 0), else_=1)
    return select(u.step, agreed, func.count()).where(u.signed == false()).group_by(u.step, agreed)


async def _tally_since(session: AsyncSession, after: int) -> _Tally:
    """The counts over the signatures with an id above `after`: read one by one (a few
    thousand at most, found by their primary key) and counted here, where GROUP BY queries
    would have the database weigh other indexes."""
    rows = await session.execute(since_statement(after))
    tally = _Tally()
    for (
        language,
        channel,
        source,
        kept,
        news,
        chat,
        province,
        country,
        region,
        number,
        code,
    ) in rows:
        values = tally.main.setdefault((language, channel, source), [0, 0, 0, 0, 0])
        if kept:
            values[0] += 1
            values[1] += bool(news)
            values[2] += bool(chat)
            tally.provinces[province] += 1
            tally.places[(country, region or None)] += 1
            tally.days[int(number)] += 1
        else:
            values[3] += 1
            values[4] += bool(chat)
            if code is not None:
                tally.codes_aside[code] += 1
    return tally


async def _changes(session: AsyncSession) -> int | None:
    """The counter of changes to signatures (None before migration 0015)."""
    value = await session.execute(select(_COUNTERS.c.value).where(_COUNTERS.c.name == CHANGES))
    return value.scalar_one_or_none()


async def new_checkpoint(
    session: AsyncSession, *, now: datetime, behind: int = CHECKPOINT_BEHIND
) -> dict[str, Any] | None:
    """A new checkpoint, to `keep`, when there is none, when it no longer holds, or when more
    than `behind` signatures have been added after it; None when the one kept will do.

    Only reads (a read-only session will do: the counting takes half a second at 100,000
    signatures, which no writer should wait for). The counter of changes is read first: a
    change made while the signatures are counted leaves the new checkpoint already stale,
    never wrong. The checkpoint stops at the highest id among the signatures made a minute
    before `now` (SETTLE), not at the last one: on PostgreSQL a signature can be committed
    after one with a higher id, and none older than a minute is still waiting for its
    commit. (Were one ever missed, the next checkpoint, counted afresh, has it.)
    """
    changes = await _changes(session)
    if changes is None:
        return None
    s = _SIGNATURES.c
    kept = (
        await session.execute(
            select(_CHECKPOINTS.c.through_id, _CHECKPOINTS.c.changes).where(
                _CHECKPOINTS.c.name == CHECKPOINT
            )
        )
    ).first()
    if kept is not None and kept.changes == changes:
        added = await session.execute(
            select(func.count()).select_from(_SIGNATURES).where(s.id > kept.through_id)
        )
        if added.scalar_one() <= behind:
            return None
    settled = await session.execute(select(func.max(s.id)).where(s.created_at < now - SETTLE))
    through = settled.scalar_one_or_none() or 0
    tally = await _tally(session, through=through)
    return {
        "name": CHECKPOINT,
        "through_id": through,
        "changes": changes,
        "taken_at": now,
        "figures": tally.to_json(),
    }


async def keep(session: AsyncSession, checkpoint: dict[str, Any]) -> None:
    """Store a checkpoint from `new_checkpoint` in place of the one kept (the caller's
    transaction)."""
    await session.execute(delete(_CHECKPOINTS).where(_CHECKPOINTS.c.name == CHECKPOINT))
    await session.execute(insert(_CHECKPOINTS), [checkpoint])


async def _tally(session: AsyncSession, *, after: int = 0, through: int | None = None) -> _Tally:
    """The counts over the signatures with `after` < id <= `through` (every one by default)."""
    s = _SIGNATURES.c
    within = [s.id > after] if after else []
    if through is not None:
        within.append(s.id <= through)
    counted = s.invalidated_at.is_(None)

    def when(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    tally = _Tally()
    # Totals by language, channel and source, with news, those set aside and those signed in
    # a chat (by a user) counted alongside: the funnel's signers come from here too.
    main = await session.execute(
        select(
            s.language, s.channel, s.source, when(counted),
            when(counted & s.updates_opt_in), when(counted & s.user_id.is_not(None)),
            when(~counted), when(~counted & s.user_id.is_not(None)),
        ).where(*within).group_by(s.language, s.channel, s.source)
    )  # fmt: skip
    for language, channel, source, *values in main:
        tally.main[(language, channel, source)] = [int(value) for value in values]
    set_aside = sum(values[3] for values in tally.main.values())

    provinces = await session.execute(
        select(s.birth_province, func.count()).where(counted, *within).group_by(s.birth_province)
    )
    tally.provinces.update({province: int(count) for province, count in provinces})

    # Places and days are counted over every signature, from their indexes alone (a scan of
    # the table would read every name and sealed contact), then those set aside, usually
    # none and always few, are taken off.
    day = _day_number(s.created_at)
    if set_aside:
        rows = await session.execute(
            select(day, s.country, s.region, s.referrer_code, func.count())
            .where(~counted, *within)
            .group_by(day, s.country, s.region, s.referrer_code)
        )
        for number, country, region, code, count in rows:
            tally.places[(country, region or None)] -= count
            tally.days[int(number)] -= count
            if code is not None:
                tally.codes_aside[code] += count
    rows = await session.execute(
        select(s.country, s.region, func.count()).where(*within).group_by(s.country, s.region)
    )
    for country, region, count in rows:
        tally.places[(country, region or None)] += count
    days = await session.execute(select(day, func.count()).where(*within).group_by(day))
    for number, count in days:
        tally.days[int(number)] += count
    return tally


async def _figures(session: AsyncSession, tally: _Tally, *, now: datetime) -> Figures:
    languages: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    total = opted_in = signers = set_aside = signers_aside = 0
    for (language, channel, source), values in tally.main.items():
        kept, news, chat, aside, chat_aside = values
        total, opted_in, signers = total + kept, opted_in + news, signers + chat
        set_aside, signers_aside = set_aside + aside, signers_aside + chat_aside
        if kept:
            languages[language] += kept
            channels[channel] += kept
            sources[source] += kept
    countries: Counter[str] = Counter()
    regions: dict[str, Counter[str | None]] = {}
    for (country, region), count in tally.places.items():
        if count > 0:
            countries[country] += count
            regions.setdefault(country, Counter())[region] += count
    per_day = [
        (_EPOCH + timedelta(days=number), count)
        for number, count in sorted(tally.days.items())
        if count > 0
    ]
    # The windows are whole UTC days, so they add up from the days.
    today = now.astimezone(UTC).date()

    def since(first: date) -> int:
        return sum(count for each, count in per_day if each >= first)

    return Figures(
        total=total,
        set_aside=set_aside,
        today=since(today),
        week=since(today - timedelta(days=6)),
        month=since(today - timedelta(days=29)),
        opted_in=opted_in,
        by_language=_ranked(languages),
        by_channel=_ranked(channels),
        by_source=_ranked(sources),
        by_country=_ranked(countries),
        by_region={country: _ranked(found) for country, found in regions.items()},
        by_province=_ranked(+tally.provinces),
        per_day=per_day,
        top_codes=await _top_codes(session, aside=+tally.codes_aside),
        funnel=await _funnel(session, signed=signers, set_aside=signers_aside),
    )


async def _top_codes(
    session: AsyncSession, *, aside: Counter[str]
) -> list[tuple[str, str | None, int]]:
    """The share codes that brought the most counted signatures, with volunteers' names.

    Counted from the code's index over every signature. Taking off those set aside can only
    lower the codes they came through, so the top ten are among the first ten plus one per
    such code: a code further down has no more than the ten untouched ones above it.
    """
    s = _SIGNATURES.c
    n = func.count().label("n")
    rows = await session.execute(
        select(s.referrer_code, n)
        .where(s.referrer_code.is_not(None))
        .group_by(s.referrer_code)
        .order_by(desc(n), s.referrer_code)
        .limit(TOP_CODES + len(aside))
    )
    kept = Counter({code: int(count) - aside[code] for code, count in rows})
    top = _ranked(+kept)[:TOP_CODES]
    if not top:
        return []
    names = dict(
        (
            await session.execute(
                select(_CODES.c.code, _CODES.c.name).where(_CODES.c.code.in_([c for c, _ in top]))
            )
        ).all()
    )
    return [(code, names.get(code), count) for code, count in top]


async def _funnel(session: AsyncSession, *, signed: int, set_aside: int) -> Funnel:
    """Users who wrote → agreed → signed, and the steps of those with no signature.

    Those with no signature are read from the index on (signed, step, agreed_at) alone; the
    signers are counted from their signatures (every signature made in a chat belongs to
    one user, a unique key).
    """
    rows = await session.execute(unsigned_statement())
    stops: Counter[tuple[str, bool]] = Counter()
    for step, has_agreed, count in rows:
        stops[(step, bool(has_agreed))] += count
    waiting = sum(stops.values())
    return Funnel(
        started=waiting + signed + set_aside,
        # Signing needs the consent step: signers from before agreed_at existed count too.
        agreed=signed + set_aside + sum(count for (_, was), count in stops.items() if was),
        signed=signed,
        stops=[(step, was, count) for (step, was), count in _ranked(stops)],
    )
