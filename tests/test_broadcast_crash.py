"""A broadcast worker killed mid-run (SIGKILL, a real process) resumes from the database:
nobody gets the message twice, everybody gets it once, except at most the rows that were in
flight at the kill, which are `unknown` and never resent."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bot.app import build_app
from bot.config import Settings
from bot.workers.broadcast import window_for
from tests.botapi_server import FakeBotAPI
from tests.conftest import TOKEN
from tests.test_broadcast import add_many, outbox, queue_broadcast

PEOPLE = 600
RATE = 200.0  # messages a second (a paid broadcast): the run takes a few seconds
FIRST = 20_000


async def start_worker(server: FakeBotAPI, database_url: str) -> asyncio.subprocess.Process:
    """`petitionbot broadcast worker` in a process of its own, pointed at the fake."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_"))}  # fmt: skip
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=server.url,
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "broadcast", "worker", "--exit-when-idle",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def until(condition: Callable[[], bool], process: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if condition() or process.returncode is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("waited 30 s")


async def test_a_killed_worker_resumes_without_doubles_or_losses(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rng = random.Random(14042027)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'broadcast.sqlite3'}"
    app = await build_app(make_settings(database_url=database_url))
    try:
        await add_many(app, PEOPLE, first=FIRST)
        broadcast_id = await queue_broadcast(app, rate=RATE, paid=True)
    finally:
        await app.close()

    async with FakeBotAPI(token=TOKEN, latency=0.05) as server:
        for kill in range(2):
            process = await start_worker(server, database_url)
            # Somewhere in the middle of the work.
            goal = len(server.delivered()) + rng.randint(50, 200)
            await until(lambda goal=goal: len(server.delivered()) >= goal, process)  # type: ignore[misc]
            assert process.returncode is None, f"the worker ended before kill {kill + 1}"
            process.kill()
            await process.wait()
        process = await start_worker(server, database_url)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        delivered = Counter(d.chat_id for d in server.delivered())

    app = await build_app(make_settings(database_url=database_url))
    try:
        rows = await outbox(app, broadcast_id)
    finally:
        await app.close()
    assert max(delivered.values()) == 1  # nobody twice
    statuses = Counter(status for status, _error in rows.values())
    assert set(statuses) <= {"sent", "unknown"}
    for chat, (status, _error) in rows.items():
        if status == "sent":
            assert delivered[chat] == 1  # every one recorded as sent was delivered
    # Every row was sent, except those in flight at the two kills: at most the window each.
    assert statuses["sent"] + statuses["unknown"] == PEOPLE
    assert statuses["unknown"] <= 2 * window_for(RATE)
    assert len(delivered) >= statuses["sent"]
