"""Two bot processes on one database (two apps, each with its own engine and conversation,
as two `petitionbot run` behind a load balancer): what one signer is told, no other is."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.app import build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from bot.flood import FloodGuard
from db import queries
from db.models import Signature
from handlers.base import Incoming, Reply
from tests.telegram_fakes import FakeUser, RecordingSession

SIGNERS = 40
NUMBER = re.compile(r"You are signer number ([\d,]+)\.")


async def to_review(someone: FakeUser) -> None:
    """The flow up to the last question."""
    await someone.send("/start")
    await someone.press("l:en")
    await someone.press("go:sign")
    await someone.press("c:y")
    await someone.send("Sok Dara")
    for payload in ("co:US", "r:skip", "b:12", "ct:skip", "u:n"):
        await someone.press(payload)


async def confirm(someone: FakeUser) -> int:
    """Confirm; the number the signer is told."""
    await someone.press("rv:ok")
    found = NUMBER.search(someone.text())
    assert found, someone.text()
    return int(found.group(1).replace(",", ""))


async def test_no_two_signers_are_told_the_same_number(
    make_settings: Callable[..., Settings],
) -> None:
    apps = [await build_app(make_settings()) for _ in range(2)]
    session = RecordingSession()
    bots = []
    try:
        people = []
        for index, app in enumerate(apps):
            app.conversation.flood = FloodGuard(limit=1_000_000)
            bot = build_bot(app.settings, session=session)
            bots.append(bot)
            dispatcher = build_dispatcher(app)
            people += [
                FakeUser(dispatcher, bot, session, 80_000 + index * 1_000 + number)
                for number in range(SIGNERS // 2)
            ]
        await asyncio.gather(*(to_review(someone) for someone in people))
        # Everyone confirms at once, half through each process.
        told = await asyncio.gather(*(confirm(someone) for someone in people))
        assert len(set(told)) == SIGNERS, sorted(told)
        async with apps[0].conversation.sessions() as db:
            numbers = list((await db.execute(select(Signature.number))).scalars())
            count = (await db.execute(select(func.count(Signature.id)))).scalar_one()
        assert count == SIGNERS
        assert sorted(numbers) == sorted(told)
    finally:
        for bot in bots:
            await bot.session.close()
        for app in apps:
            await app.close()


async def test_two_transactions_signing_at_once_take_different_numbers(
    make_settings: Callable[..., Settings],
) -> None:
    """The race itself, step by step: one process signs and has not committed yet when the
    other signs. The second waits for the counter the first holds, then takes the next."""
    apps = [await build_app(make_settings()) for _ in range(2)]
    try:
        first, second = (app.conversation.sessions() for app in apps)
        async with first as one, second as other:
            await one.begin()
            [mine] = (await queries.load_users(one, identities=[("telegram", "81001")])).values()
            signed = await queries.add_signature(one, user=mine, fields=FIELDS)
            assert signed is not None
            number, _total = await queries.standing(one, signature_id=signed)

            async def the_other_signs() -> int:
                await other.begin()
                [theirs] = (
                    await queries.load_users(other, identities=[("telegram", "81002")])
                ).values()
                their_signature = await queries.add_signature(other, user=theirs, fields=FIELDS)
                assert their_signature is not None
                told, _total = await queries.standing(other, signature_id=their_signature)
                await other.commit()
                return told

            racing = asyncio.create_task(the_other_signs())
            await asyncio.sleep(0.5)  # the other is now as far as it can go
            await one.commit()
            assert {number, await racing} == {1, 2}
    finally:
        for app in apps:
            await app.close()


FIELDS = {"full_name": "Sok Dara", "country": "US", "region": None, "birth_province": "12"}


async def test_a_signature_committed_while_waiting_for_the_lock_is_seen(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """One process signs for a person; another, with that person's next update, waits for
    their row. Once the first commits, the second must see the signature (or /start would
    begin the flow again for someone who has just signed)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time and no row locks to wait for")
    apps = [await build_app(make_settings()) for _ in range(2)]
    try:
        first, second = (app.conversation.sessions() for app in apps)
        async with first as one, second as other:
            await one.begin()
            [signer] = (await queries.load_users(one, identities=[("telegram", "82001")])).values()
            await one.commit()
            await one.begin()
            await queries.load_users(one, identities=[("telegram", "82001")])  # locked
            assert await queries.add_signature(one, user=signer, fields=FIELDS) is not None

            async def the_next_update() -> int | None:
                await other.begin()
                users = await queries.load_users(other, identities=[("telegram", "82001")])
                await other.rollback()
                return users[("telegram", "82001")].signature_id

            waiting = asyncio.create_task(the_next_update())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # it waits for the row
            await one.commit()
            assert await waiting is not None
    finally:
        for app in apps:
            await app.close()


async def test_one_persons_updates_reaching_two_processes_at_once_take_turns(
    make_settings: Callable[..., Settings],
) -> None:
    """What holds across processes (the README's deployment section): two updates of one
    person handled at the same moment by two processes are handled one after the other,
    the second seeing all the first wrote; which goes first is the order they reach the
    database, not the order the person sent them. Here nothing written is lost: both are
    recorded, and the person ends where the second left them."""
    apps = [await build_app(make_settings()) for _ in range(2)]
    for app in apps:
        app.conversation.flood = FloodGuard(limit=1_000_000)
    try:

        async def update(app_index: int, key: str, incoming: Incoming) -> list[Reply]:
            return await apps[app_index].conversation.process(
                channel="telegram", user_id="83001", update_key=key, incoming=incoming,
                share_link=lambda code: None,
            )  # fmt: skip

        await update(0, "u1", Incoming.message("/start"))
        await update(1, "u2", Incoming.button("l:en"))
        for round_ in range(5):
            answers = await asyncio.gather(
                update(0, f"a{round_}", Incoming.message("/help")),
                update(1, f"b{round_}", Incoming.message("/privacy")),
            )
            assert all(answer != [] for answer in answers)
        async with apps[0].conversation.sessions() as session:
            recent = (await queries.load_users(session, identities=[("telegram", "83001")]))[
                ("telegram", "83001")
            ].recent_updates
        assert {f"a{n}" for n in range(5)} | {f"b{n}" for n in range(5)} <= set(recent)
    finally:
        for app in apps:
            await app.close()
