"""Signatures in and out in bulk: a streamed select for exports, duplicate checks and one
bulk insert for signatures gathered on paper. Keyword-only arguments, plain results."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Table, insert, null, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Signature, User, VolunteerCode
from db.queries import SignatureFilter, count_signatures, take_numbers

_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_CODES: Table = VolunteerCode.__table__  # type: ignore[assignment]

# Rows fetched per trip: large enough that the per-trip cost vanishes, small enough that a
# batch of decoded rows stays a few hundred kilobytes.
FETCH = 5_000
# Rows per INSERT statement (SQLite allows 32,766 bound parameters; 14 columns each).
INSERT_BATCH = 1_000
_IN_CHUNK = 500  # values per IN (...) list


class ExportRow(NamedTuple):
    """One signature as an export shows it (contacts still sealed)."""

    number: int | None  # its place among counted signatures (as the signer was told it);
    # None when it was set aside
    signed_at: datetime
    full_name: str
    country: str
    region: str | None
    birth_province: str
    language: str
    channel: str
    source: str
    referrer_code: str | None
    updates_opt_in: bool
    phone: str | None
    email: str | None
    invalidated_at: datetime | None


async def stream_signatures(
    session: AsyncSession,
    *,
    where: SignatureFilter,
    include_invalidated: bool = False,
    with_contacts: bool = False,
) -> AsyncIterator[ExportRow]:
    """The signatures a filter matches, oldest first, fetched a batch at a time (a
    server-side cursor): a hundred thousand rows never sit in memory together.

    A signature's number is its place among all counted signatures (what the signer was
    told), also in a filtered export: the ids of counted signatures are read first, as a
    compact array of integers, and each row finds its place there."""
    counted = await _counted_ids(session)
    query = _export_query(
        where, include_invalidated=include_invalidated, with_contacts=with_contacts
    )
    result = await session.stream(query.execution_options(yield_per=FETCH))
    async for partition in result.partitions():
        for row in partition:
            yield _numbered(counted, row)


async def page_signatures(
    sessions: async_sessionmaker[AsyncSession],
    *,
    where: SignatureFilter,
    with_contacts: bool = False,
) -> AsyncIterator[ExportRow]:
    """The counted signatures a filter matches, like `stream_signatures`, but each batch in a
    short transaction of its own: an export made while the bot serves never holds the
    database (SQLite's one connection) for longer than a batch."""
    async with sessions() as session:
        counted = await _counted_ids(session)
    s = _SIGNATURES.c
    query = _export_query(where, include_invalidated=False, with_contacts=with_contacts)
    after = 0
    while True:
        async with sessions() as session:
            rows = (await session.execute(query.where(s.id > after).limit(FETCH))).all()
        if not rows:
            return
        after = rows[-1][0]
        for row in rows:
            yield _numbered(counted, row)


async def _counted_ids(session: AsyncSession) -> array[int]:
    s = _SIGNATURES.c
    counted = array("q")
    ids = await session.stream(
        select(s.id)
        .where(s.invalidated_at.is_(None))
        .order_by(s.id)
        .execution_options(yield_per=FETCH * 10)
    )
    async for partition in ids.partitions():
        counted.extend(value for (value,) in partition)
    return counted


def _export_query(
    where: SignatureFilter, *, include_invalidated: bool, with_contacts: bool
) -> Select[Any]:
    s = _SIGNATURES.c
    conditions = where.where(counted_only=not include_invalidated)
    # Contacts not asked for are never read from the database at all.
    contacts = (
        (s.phone, s.email) if with_contacts else (null().label("phone"), null().label("email"))
    )
    columns = (s.id, s.created_at, s.full_name, s.country, s.region, s.birth_province,
               s.language, s.channel, s.source, s.referrer_code, s.updates_opt_in,
               *contacts, s.invalidated_at)  # fmt: skip
    return select(*columns).where(*conditions).order_by(s.id)


def _numbered(counted: array[int], row: Any) -> ExportRow:
    signature_id, *rest = row
    number = bisect_right(counted, signature_id) if rest[-1] is None else None
    return ExportRow(number, *rest)


async def known_contact_hashes(session: AsyncSession, *, hashes: Iterable[str]) -> set[str]:
    """Which of these contact fingerprints an existing signature already has."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        rows = await session.execute(
            select(_SIGNATURES.c.contact_hash).where(_SIGNATURES.c.contact_hash.in_(chunk))
        )
        found.update(value for (value,) in rows)
    return found


async def stream_identities(
    session: AsyncSession, *, countries: Iterable[str]
) -> AsyncIterator[tuple[str, str, str | None, str]]:
    """(name, country, region, birth province) of the signatures from these countries, a
    batch at a time: what tells a paper signature already given in the chat."""
    wanted = sorted(set(countries))
    s = _SIGNATURES.c
    for start in range(0, len(wanted), _IN_CHUNK):
        query = (
            select(s.full_name, s.country, s.region, s.birth_province)
            .where(s.country.in_(wanted[start : start + _IN_CHUNK]))
            .execution_options(yield_per=FETCH)
        )
        result = await session.stream(query)
        async for partition in result.partitions():
            for name, country, region, birth in partition:
                yield name, country, region, birth


async def known_codes(session: AsyncSession, *, codes: Iterable[str]) -> set[str]:
    """Which of these codes are share codes: a volunteer's, or a signer's personal one."""
    wanted = sorted(set(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        for column in (_CODES.c.code, _USERS.c.share_code):
            rows = await session.execute(select(column).where(column.in_(chunk)))
            found.update(value for (value,) in rows)
    return found


async def add_signatures(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> int:
    """Insert signatures that belong to no chat user (gathered on paper), in batches, in the
    caller's transaction; returns how many."""
    statement = insert(_SIGNATURES)
    first = await take_numbers(session, count=len(rows)) if rows else 0
    numbered = [
        {**row, "number": row.get("number") or first + index} for index, row in enumerate(rows)
    ]
    for start in range(0, len(numbered), INSERT_BATCH):
        await session.execute(statement, numbered[start : start + INSERT_BATCH])
    await count_signatures(session, sum(1 for row in rows if row.get("invalidated_at") is None))
    return len(rows)
