"""Milestones: recorded once when signing passes them, announced once to the admins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import Table, event, insert, select

from bot.app import App, build_app
from bot.config import Settings
from bot.workers.watch import Watch
from db import milestones, queries
from db.models import Milestone, Signature, User, utcnow
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser

Told = list[tuple[str, str]]


@pytest.fixture
def app(admin_app: App) -> App:
    """The production app with one admin, ADMIN, from ADMIN_IDS (conftest's)."""
    return admin_app


def watch_of(app: App, told: Told) -> Watch:
    async def notify(admin: str, text: str) -> None:
        told.append((admin, text))

    return Watch(app, notify)


async def seed(app: App, count: int, *, first: int = 0) -> None:
    """`count` signatures written straight into the tables (no signing flow, no milestone)."""
    users: Table = User.__table__  # type: ignore[assignment]
    signatures: Table = Signature.__table__  # type: ignore[assignment]
    now = utcnow()
    person = {"channel": "telegram", "step": "idle", "draft": {}, "recent_updates": [],
              "created_at": now, "last_seen_at": now}  # fmt: skip
    signature = {"full_name": "Seeded", "country": "US", "birth_province": "12",
                 "language": "en", "channel": "telegram", "source": "chat",
                 "created_at": now, "updated_at": now}  # fmt: skip
    async with app.conversation.sessions() as session, session.begin():
        for number in range(first, first + count):
            added = insert(users).returning(users.c.id)
            row = {**person, "external_id": f"seed{number}"}
            user_id = (await session.execute(added, row)).scalar_one()
            number = await queries.take_numbers(session, count=1)  # as every signing does
            await session.execute(
                insert(signatures), {**signature, "user_id": user_id, "number": number}
            )
            await queries.count_signatures(session, 1)


async def to_review(someone: FakeUser, name: str = "Sok Dara") -> None:
    """The signing flow up to the last step, the confirm button not yet pressed."""
    await someone.send("/start")
    await someone.press("l:en")
    await someone.click("✍️ Sign the petition")
    await someone.click("✅ I agree")
    await someone.send(name)
    for payload in ("co:US", "r:skip", "b:12", "ct:skip", "u:n"):
        await someone.press(payload)


async def rows(app: App) -> list[tuple[int, bool]]:
    """(milestone, announced) for each recorded milestone."""
    async with app.conversation.sessions() as session:
        found = await session.execute(
            select(Milestone.value, Milestone.announced_at).order_by(Milestone.value)
        )
        return [(value, announced is not None) for value, announced in found]


async def test_passing_100_is_recorded_in_the_signing_and_announced_once(
    app: App, person: Callable[[int], FakeUser]
) -> None:
    organiser = person(ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")  # the admin reads English
    await seed(app, 98)
    told: Told = []
    watch = watch_of(app, told)

    ninety_ninth = person(2001)
    await to_review(ninety_ninth)
    await ninety_ninth.press("rv:ok")
    assert await rows(app) == []
    hundredth = person(2002)
    await to_review(hundredth)
    await hundredth.press("rv:ok")
    assert "You are signer number 100." in hundredth.text()
    assert await rows(app) == [(100, False)]  # recorded with the signature

    assert await watch.milestones() == [100]
    assert told == [
        ("777", "🎉 The petition has passed 100 signatures: 100 so far, 1% of the goal of 10,000.")
    ]
    assert await rows(app) == [(100, True)]
    assert await watch.milestones() == []  # announced once
    assert await watch_of(app, told).milestones() == []  # by whichever worker
    assert len(told) == 1

    # Once recorded, a signature costs no statement on the milestones table.
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(app.engine.sync_engine, "before_cursor_execute", seen)
    try:
        hundred_first = person(2003)
        await to_review(hundred_first)
        await hundred_first.press("rv:ok")
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", seen)
    assert any("INSERT INTO signatures" in each for each in statements)
    assert not any("milestones" in each for each in statements)
    assert await rows(app) == [(100, True)]


async def test_signers_crossing_together_make_one_row_and_one_message(
    app: App, person: Callable[[int], FakeUser]
) -> None:
    await seed(app, 96)
    signers = [person(3000 + number) for number in range(8)]
    for someone in signers:
        await to_review(someone)
    # All confirm at once: 97th to 104th, handled in the same batches.
    await asyncio.gather(*(someone.press("rv:ok") for someone in signers))
    numbers = sorted(
        int(line.split()[-1].rstrip("."))
        for someone in signers
        for line in someone.text().splitlines()
        if line.startswith("You are signer number")
    )
    assert numbers == list(range(97, 105))
    assert await rows(app) == [(100, False)]

    told: Told = []
    # Two workers' watches announce at the same moment: one claims it, one message goes out.
    claimed = await asyncio.gather(
        watch_of(app, told).milestones(), watch_of(app, told).milestones()
    )
    assert sorted(claimed) == [[], [100]]
    [(admin, text)] = told
    assert admin == "777"
    assert "១០០" in text  # an admin who never chose a language reads Khmer digits


async def test_two_workers_recording_the_same_milestone_make_one_row(
    app: App, make_settings: Callable[..., Settings]
) -> None:
    second = await build_app(make_settings(admin_ids=str(ADMIN)), migrate=False)
    try:

        async def record(worker: App, total: int) -> list[int]:
            async with worker.conversation.sessions() as session, session.begin():
                return await milestones.reach(session, total=total, goal=worker.conversation.goal)

        found = await asyncio.gather(record(app, 100), record(second, 101), record(app, 100))
        assert sorted(found) == [[], [], [100]]
        assert await rows(app) == [(100, False)]
        told: Told = []
        claimed = await asyncio.gather(
            watch_of(app, told).milestones(), watch_of(second, told).milestones()
        )
        assert sorted(claimed) == [[], [100]]
        assert len(told) == 1
    finally:
        await second.close()


async def test_a_milestone_no_signer_saw_is_found_by_the_watch(app: App) -> None:
    # Two signatures committed at the same moment on two workers can each count 99 and so
    # leave 100 unrecorded; so can a transaction that rolled back. The watch counts again.
    await seed(app, 101)
    told: Told = []
    watch = watch_of(app, told)
    assert await watch.milestones() == [100]
    assert await rows(app) == [(100, True)]
    assert await watch.milestones() == []
    assert len(told) == 1


async def test_the_goal_is_announced_and_milestones_passed_together_make_one_message(
    make_settings: Callable[..., Settings],
) -> None:
    app = await build_app(make_settings(admin_ids=str(ADMIN), petition_goal=150))
    try:
        async with app.conversation.sessions() as session, session.begin():
            session.add(User(channel="telegram", external_id=str(ADMIN), language="en",
                             step="idle", draft={}))  # fmt: skip
        await seed(app, 150)  # as an import adds them: all at once, in one transaction
        async with app.conversation.sessions() as session, session.begin():
            assert await milestones.reach(session, total=150, goal=150) == [100, 150]
        told: Told = []
        assert await watch_of(app, told).milestones() == [100, 150]
        assert told == [
            ("777", "🎉 The petition has reached its goal of 150 signatures! 150 people have "
             "signed so far.")
        ]  # fmt: skip
    finally:
        await app.close()


async def test_without_admins_a_milestone_waits_for_someone_to_tell(
    make_settings: Callable[..., Settings],
) -> None:
    app = await build_app(make_settings())
    try:
        await seed(app, 100)
        told: Told = []
        assert await watch_of(app, told).milestones() == []
        assert await rows(app) == [(100, False)]
        assert told == []
    finally:
        await app.close()
