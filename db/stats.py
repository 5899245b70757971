"""The figures behind `/stats`: a few GROUP BY queries, no signature rows loaded into Python.

Six statements, whatever the number of signatures: the totals split by language, channel,
source and news; countries with their regions; provinces of birth; signatures per day (which
also give today, the last 7 and the last 30 days); the top share codes; the users who have
not signed, by step. Days are UTC days, computed from the epoch in SQL so that SQLite and
PostgreSQL agree whatever the server's time zone.
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

    # Totals by language, channel, source and news, with those set aside and those signed
    # in a chat (a user) told apart: the funnel's signers come from here too.
    aside = case((counted, 0), else_=1)
    chatted = case((s.user_id.is_(None), 0), else_=1)
    main = await session.execute(
        select(s.language, s.channel, s.source, s.updates_opt_in, aside, chatted, func.count())
        .group_by(s.language, s.channel, s.source, s.updates_opt_in, aside, chatted)
    )  # fmt: skip
    languages: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    total = set_aside = opted_in = signers = signers_aside = 0
    for language, channel, source, opt_in, is_aside, has_user, count in main:
        if is_aside:
            set_aside += count
            signers_aside += count if has_user else 0
            continue
        total += count
        signers += count if has_user else 0
        opted_in += count if opt_in else 0
        languages[language] += count
        channels[channel] += count
        sources[source] += count

    countries: Counter[str] = Counter()
    regions: dict[str, Counter[str | None]] = {}
    rows = await session.execute(
        select(s.country, s.region, func.count()).where(counted).group_by(s.country, s.region)
    )
    for country, region, count in rows:
        countries[country] += count
        regions.setdefault(country, Counter())[region or None] += count

    provinces = await session.execute(
        select(s.birth_province, func.count()).where(counted).group_by(s.birth_province)
    )

    day = _day_number(s.created_at)
    days = await session.execute(
        select(day, func.count()).where(counted).group_by(day).order_by(day)
    )
    per_day = [(_EPOCH + timedelta(days=int(number)), int(count)) for number, count in days]
    # The windows are whole UTC days, so they add up from the days.
    today = now.astimezone(UTC).date()

    def since(first: date) -> int:
        return sum(count for each, count in per_day if each >= first)

    n = func.count().label("n")
    codes = await session.execute(
        select(s.referrer_code, _CODES.c.name, n)
        .select_from(_SIGNATURES.outerjoin(_CODES, _CODES.c.code == s.referrer_code))
        .where(counted, s.referrer_code.is_not(None))
        .group_by(s.referrer_code, _CODES.c.name)
        .order_by(desc(n), s.referrer_code)
        .limit(TOP_CODES)
    )

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
        top_codes=[(code, name, int(count)) for code, name, count in codes],
        funnel=await _funnel(session, signed=signers, set_aside=signers_aside),
    )


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
