"""Killed at any moment (SIGKILL, a real process), the bot loses nothing, doubles no
signature, and leaves nobody without an answer."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from db.models import PendingReply, Signature, User
from db.session import create_engine
from handlers.base import Incoming, Reply
from tests.botapi_server import FakeBotAPI
from tests.conftest import DATA_KEY, HASH_KEY, TOKEN
from tests.test_telegram_http import Person

SIGNERS = 30
RECORDED = "ហត្ថលេខារបស់លោកអ្នកត្រូវបានកត់ត្រាទុកហើយ"  # "Your signature is recorded."
KILLS = int(os.environ.get("CRASH_KILLS", "4"))
# One signer's whole conversation, and how many messages the bot sends for each step.
FLOW = [
    ("text", "/start", 1), ("button", "l:km", 1), ("button", "go:sign", 1), ("button", "c:y", 1),
    ("text", "សុខ សុភា", 1), ("button", "co:US", 1), ("text", "California", 1),
    ("button", "b:17", 1), ("button", "ct:skip", 2), ("button", "u:y", 1), ("button", "rv:ok", 1),
]  # fmt: skip


async def start_bot(
    server: FakeBotAPI, folder: Path, database_url: str | None = None
) -> asyncio.subprocess.Process:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_"))}  # fmt: skip
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=server.url,
        DATABASE_URL=database_url or f"sqlite+aiosqlite:///{folder / 'crash.sqlite3'}",
        DATA_KEY=DATA_KEY,
        HASH_KEY=HASH_KEY,
        LOG_LEVEL="WARNING",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=folder,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def queue_flows(server: FakeBotAPI, people: list[Person]) -> int:
    """Queue every signer's whole conversation, step by step across signers; the last id."""
    last_id = 0
    for kind, value, _answers in FLOW:
        for person in people:
            update = (
                person.message_update(value) if kind == "text" else person.callback_update(value)
            )
            last_id = server.push_update(update)
    return last_id


def all_confirmed(server: FakeBotAPI, last_id: int) -> bool:
    offsets = [int(params.get("offset") or 0) for params in server.params("getUpdates")]
    return bool(offsets) and max(offsets) > last_id


async def test_killed_at_random_the_bot_loses_and_doubles_nothing(
    tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(20140309)
    async with FakeBotAPI(long_poll_cap=0.2) as server:
        people = [Person(server, 7000 + number) for number in range(SIGNERS)]
        last_id = queue_flows(server, people)

        kills = 0
        while True:
            process = await start_bot(server, tmp_path, database_url)
            if kills < KILLS:
                # Somewhere between start-up and the middle of the work.
                await asyncio.sleep(rng.uniform(2.0, 4.5))
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                    kills += 1
                    continue
            for _ in range(300):
                if all_confirmed(server, last_id) or process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)
            break
        assert all_confirmed(server, last_id)
        assert kills == KILLS

        expected = sum(answers for _kind, _value, answers in FLOW)
        for person in people:
            sent = server.sent(person.user_id)
            # Nobody left without an answer: a reply committed but not yet sent when the
            # process died is kept, and goes when Telegram delivers the update again. (A kill
            # between a send and its record can send that one reply twice.)
            assert len(sent) >= expected, (person.user_id, len(sent))
            # The last step's answer (the thanks) reached them.
            assert any(RECORDED in str(params.get("text")) for params in sent[-2:])

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            signed = await connection.execute(
                select(func.count(), func.count(func.distinct(Signature.user_id)))
            )
            assert tuple(signed.one()) == (SIGNERS, SIGNERS)  # none lost, none doubled
            steps = (await connection.execute(select(User.step).distinct())).all()
            assert [tuple(step) for step in steps] == [
                ("idle",)
            ]  # where their last update left them
    finally:
        await engine.dispose()


async def test_an_answer_committed_but_not_sent_goes_when_the_update_comes_again(
    app: App,
) -> None:
    """The process dies after the commit and before the send (here the send itself dies):
    Telegram delivers the update again, and it is answered then, once."""
    sent: list[Reply] = []

    async def dies(_replies: list[Reply]) -> bool:
        raise ConnectionResetError  # where a SIGKILL would stop it

    async def delivers(replies: list[Reply]) -> bool:
        sent.extend(replies)
        return True

    async def update(deliver: Callable[[list[Reply]], Awaitable[bool]]) -> list[Reply]:
        return await app.conversation.process(
            channel="telegram", user_id="6001", update_key="9001",
            incoming=Incoming.message("/start"), share_link=lambda _code: None,
            deliver=deliver,
        )  # fmt: skip

    with pytest.raises(ConnectionResetError):
        await update(dies)
    assert sent == []
    await update(delivers)  # redelivered: recognised as handled, and its answer goes now
    assert [reply.text for reply in sent] == ["សូមជ្រើសរើសភាសា។\nPlease choose your language."]
    assert [button.payload for button in sent[0].options()] == ["l:km", "l:en"]
    await app.conversation.settle()  # the answer is recorded as sent
    assert await update(delivers) == []  # a third delivery: nothing twice
    assert len(sent) == 1
    async with app.conversation.sessions() as session:
        assert (await session.execute(select(func.count(PendingReply.id)))).scalar_one() == 0
