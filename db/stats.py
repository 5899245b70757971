"""The figures behind `/stats`: a few GROUP BY queries, no signature rows loaded into Python.

Seven or eight statements, whatever the number of signatures: the totals split by language,
channel, source and news; provinces of birth; countries with their regions, signatures per
day (which also give today, the last 7 and the last 30 days) and the top share codes, each
read from its index alone, less those set aside by an admin (one more statement when there
are any); the volunteers' names of the top codes; the users who have not signed, by step.
Days are UTC days, computed from the epoch in SQL so that SQLite and PostgreSQL agree
whatever the server's time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Table, case, cast, desc, exists, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Signature, User, VolunteerCode

_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_CODES: Table = VolunteerCode.__table__  # type: ignore[assignment]
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


async def figures(session: AsyncSession, *, now: datetime) -> Figures:
    """All the figures, as of `now` (timezone-aware)."""
    s = _SIGNATURES.c
    counted = s.invalidated_at.is_(None)

    def when(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # Totals by language, channel and source, with news, those set aside and those signed in
    # a chat (by a user) counted alongside: the funnel's signers come from here too.
    main = await session.execute(
        select(
            s.language, s.channel, s.source, when(counted),
            when(counted & s.updates_opt_in), when(counted & s.user_id.is_not(None)),
            when(~counted), when(~counted & s.user_id.is_not(None)),
        ).group_by(s.language, s.channel, s.source)
    )  # fmt: skip
    languages: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    total = opted_in = signers = set_aside = signers_aside = 0
    for language, channel, source, kept, news, chat, aside, chat_aside in main:
        total, opted_in, signers = total + kept, opted_in + news, signers + chat
        set_aside, signers_aside = set_aside + aside, signers_aside + chat_aside
        if kept:
            languages[language] += kept
            channels[channel] += kept
            sources[source] += kept

    provinces = await session.execute(
        select(s.birth_province, func.count()).where(counted).group_by(s.birth_province)
    )

    # Places, days and share codes are counted over every signature, from their indexes
    # alone (a scan of the table would read every name and sealed contact), then those set
    # aside, usually none and always few, are taken off.
    day = _day_number(s.created_at)
    aside_places: Counter[tuple[str, str | None]] = Counter()
    aside_days: Counter[int] = Counter()
    aside_codes: Counter[str] = Counter()
    if set_aside:
        rows = await session.execute(
            select(day, s.country, s.region, s.referrer_code, func.count())
            .where(~counted)
            .group_by(day, s.country, s.region, s.referrer_code)
        )
        for number, country, region, code, count in rows:
            aside_places[(country, region)] += count
            aside_days[int(number)] += count
            if code is not None:
                aside_codes[code] += count

    countries: Counter[str] = Counter()
    regions: dict[str, Counter[str | None]] = {}
    rows = await session.execute(
        select(s.country, s.region, func.count()).group_by(s.country, s.region)
    )
    for country, region, count in rows:
        kept = count - aside_places[(country, region)]
        if kept:
            countries[country] += kept
            regions.setdefault(country, Counter())[region or None] += kept

    days = await session.execute(select(day, func.count()).group_by(day).order_by(day))
    per_day = [
        (_EPOCH + timedelta(days=int(number)), int(count) - aside_days[int(number)])
        for number, count in days
        if count > aside_days[int(number)]
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
        by_province=_ranked(Counter({code: int(count) for code, count in provinces})),
        per_day=per_day,
        top_codes=await _top_codes(session, aside=aside_codes),
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

    Every signature made in a chat belongs to one user (a unique key), so the users are
    those without a signature (counted here, an anti-join on that key) plus the signers.
    """
    u, s = _USERS.c, _SIGNATURES.c
    agreed = case((u.agreed_at.is_(None), 0), else_=1)
    rows = await session.execute(
        select(u.step, agreed, func.count())
        .where(~exists().where(s.user_id == u.id))
        .group_by(u.step, agreed)
    )
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
