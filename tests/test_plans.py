"""The hot queries use their indexes on PostgreSQL (SQLite's planner needs no telling): a
plan that scans a whole table fails here, on tables filled and analysed as a campaign's are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from db import broadcasts, queries, stats
from db.migrate import upgrade
from db.models import Broadcast, OutboxMessage, Signature, User
from db.session import create_engine, create_sessionmaker

PEOPLE = 20_000


async def plan(session: AsyncSession, statement: object) -> str:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    # Compiled for a driver's parameters, a modulo comes out doubled (%%): once here.
    rows = await session.execute(text(f"EXPLAIN {compiled}".replace("%%", "%")))
    return "\n".join(row[0] for row in rows)


async def test_the_claim_and_a_persons_load_use_their_indexes(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the plans checked are PostgreSQL's")
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        users: Table = User.__table__  # type: ignore[assignment]
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                insert(users),
                [{"channel": "telegram", "external_id": str(100_000 + number), "step": "idle",
                  "draft": {}, "recent_updates": [], "updates_opt_in": True, "created_at": now,
                  "last_seen_at": now} for number in range(PEOPLE)],
            )  # fmt: skip
            first, second = (
                Broadcast(created_by="shell", status=status, created_at=now)
                for status in ("done", "running")
            )
            session.add_all([first, second])
            await session.flush()
            # A first broadcast all sent, a second 90 % sent: the claim must not wade through.
            await session.execute(
                insert(outbox),
                [{"broadcast_id": broadcast.id, "user_id": number + 1, "channel": "telegram",
                  "external_id": str(100_000 + number), "language": "km", "attempts": 0,
                  "updated_at": now,
                  "status": "sent" if broadcast is first or number < PEOPLE * 0.9 else "pending"}
                 for broadcast in (first, second) for number in range(PEOPLE)],
            )  # fmt: skip
            second_id = second.id
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        async with create_sessionmaker(engine)() as session:
            claim = await plan(session, broadcasts.claim_statement(second_id, 100, now))
            lock, read = queries.person_statements("telegram", ["100007", "100042"])
            person = await plan(session, lock) + "\n" + await plan(session, read)
        assert "Seq Scan on outbox" not in claim, claim
        assert "ix_outbox_broadcast_status_id" in claim, claim
        assert "Seq Scan on users" not in person, person
        assert "uq_users_channel_external" in person, person
    finally:
        await engine.dispose()


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan in PostgreSQL's JSON form."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def test_a_second_broadcast_is_claimed_without_wading_through_the_first(
    database_url: str,
) -> None:
    """The outbox keeps a finished broadcast's rows (for OUTBOX_RETENTION_DAYS), and the
    statistics may date from before the next one's rows came (autovacuum has not looked
    again yet): the next broadcast's claims read their own rows through the index, a few
    pages, not the first broadcast's rows that come before them in id order."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the plans checked are PostgreSQL's")
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        users: Table = User.__table__  # type: ignore[assignment]
        outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]

        def rows(broadcast_id: int, status: str) -> list[dict[str, Any]]:
            return [{"broadcast_id": broadcast_id, "user_id": number + 1, "channel": "telegram",
                     "external_id": str(100_000 + number), "language": "km", "attempts": 0,
                     "updated_at": now, "status": status} for number in range(PEOPLE)]  # fmt: skip

        sessions = create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            await session.execute(
                insert(users),
                [{"channel": "telegram", "external_id": str(100_000 + number), "step": "idle",
                  "draft": {}, "recent_updates": [], "updates_opt_in": True, "created_at": now,
                  "last_seen_at": now} for number in range(PEOPLE)],
            )  # fmt: skip
            first = Broadcast(created_by="shell", status="done", created_at=now)
            session.add(first)
            await session.flush()
            await session.execute(insert(outbox), rows(first.id, "sent"))
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        async with sessions() as session, session.begin():
            second = Broadcast(created_by="shell", status="running", created_at=now)
            session.add(second)
            await session.flush()
            await session.execute(insert(outbox), rows(second.id, "pending"))
            second_id = second.id
        for _round in range(3):  # a few claims in, as the worker makes them
            async with sessions() as session, session.begin():
                await broadcasts.claim(session, broadcast_id=second_id, limit=500, now=now)
        statement = broadcasts.claim_statement(second_id, 500, now).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        async with engine.connect() as connection, connection.begin() as transaction:
            explained = await connection.execute(
                text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}")
            )
            [[document]] = explained.all()
            await transaction.rollback()
    finally:
        await engine.dispose()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    scans = [node for node in nodes(plan) if node.get("Relation Name") == "outbox"]
    assert not [node for node in scans if node["Node Type"] == "Seq Scan"], plan
    [walk] = [node for node in scans if node.get("Index Name") == "ix_outbox_broadcast_status_id"]
    assert walk["Actual Rows"] == 500
    # 500 index entries and the claimed ones before them: a few pages, not the 20,000 rows
    # of the first broadcast.
    assert walk["Shared Hit Blocks"] + walk["Shared Read Blocks"] < 60, walk


async def test_stats_reads_only_what_came_after_its_checkpoint(database_url: str) -> None:
    """/stats at 100,000 signatures: the signatures after the checkpoint are found by their
    primary key, those who have not signed by the index on their mark, never by a scan."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the plans checked are PostgreSQL's")
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        users: Table = User.__table__  # type: ignore[assignment]
        signatures: Table = Signature.__table__  # type: ignore[assignment]
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                insert(users),
                [{"id": number + 1, "channel": "telegram", "external_id": str(100_000 + number),
                  "step": "idle" if number % 10 else "name", "draft": {}, "recent_updates": [],
                  "updates_opt_in": False, "created_at": now, "last_seen_at": now,
                  "signed": bool(number % 10)} for number in range(PEOPLE)],
            )  # fmt: skip
            await session.execute(
                insert(signatures),
                [{"user_id": number + 1, "full_name": "Sok Dara", "country": "US",
                  "birth_province": "12", "language": "km", "channel": "telegram",
                  "source": "chat", "created_at": now, "updated_at": now}
                 for number in range(PEOPLE) if number % 10],
            )  # fmt: skip
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        async with create_sessionmaker(engine)() as session:
            since = await plan(session, stats.since_statement(PEOPLE - 200))
            unsigned = await plan(session, stats.unsigned_statement())
        assert "Seq Scan" not in since, since
        assert "pk_signatures" in since, since
        assert "Seq Scan" not in unsigned, unsigned
        assert "ix_users_signed_step" in unsigned, unsigned
    finally:
        await engine.dispose()
