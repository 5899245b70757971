"""The hot queries use their indexes on PostgreSQL (SQLite's planner needs no telling): a
plan that scans a whole table fails here, on tables filled and analysed as a campaign's are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Table, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from db import broadcasts, queries
from db.migrate import upgrade
from db.models import Broadcast, OutboxMessage, User
from db.session import create_engine, create_sessionmaker

PEOPLE = 20_000


async def plan(session: AsyncSession, statement: object) -> str:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    rows = await session.execute(text(f"EXPLAIN {compiled}"))
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
