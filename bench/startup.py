"""Figures for start-up: how long a deploy or a crash keeps people waiting.

    python -m bench.startup [--runs 3] [--database-url URL]

Real processes, as in production, against the fake Bot API (tests/botapi_server.py) in
this process, on a database already migrated (a restart, not a first install):

- the bot (`petitionbot run`, long polling): from launch to the first update taken (the
  getUpdates call that returns it) and to its answer (the sendMessage to that person);
- the broadcast worker (`petitionbot broadcast worker`) with a broadcast waiting: from
  launch to the first message delivered.

Each is launched `--runs` times; the median and the slowest are printed, with the targets
(worker ≤ 2 s to the first send, bot ≤ 4 s to the first update, on a quiet machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.app import App, build_app
from bot.config import Settings
from tests.botapi_server import FakeBotAPI
from tests.conftest import TOKEN
from tests.test_broadcast import add_many, queue_broadcast

WORKER_TARGET = 2.0
BOT_TARGET = 4.0
PERSON = 777_001
RECIPIENTS = 20


@dataclass(slots=True)
class Start:
    """One launch: seconds to the first update taken (the bot) and to the first send."""

    first_update: float | None
    first_send: float


def environment(server: FakeBotAPI, database_url: str) -> dict[str, str]:
    """The process's settings: nothing from this shell's own bot, the fake's address."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_"))}  # fmt: skip
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url, DATABASE_URL=database_url,
               BROADCAST_IN_BOT="false", LOG_LEVEL="WARNING")  # fmt: skip
    return env


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def launch_bot(server: FakeBotAPI, database_url: str) -> Start:
    """Start the bot with one update waiting; when it took it, and when it answered."""
    server.calls.clear()
    update_id = server.push_update(
        {"message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                     "chat": {"id": PERSON, "type": "private"},
                     "from": {"id": PERSON, "is_bot": False, "first_name": "A"}}}
    )  # fmt: skip
    launched = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=environment(server, database_url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        taken = None
        while True:
            await asyncio.sleep(0.01)
            if process.returncode is not None:
                raise RuntimeError("the bot stopped on its own")
            if taken is None and server.params("getUpdates"):
                taken = time.monotonic() - launched
            if server.sent(PERSON):
                return Start(taken, time.monotonic() - launched)
            if time.monotonic() - launched > 120:
                raise RuntimeError(f"no answer to update {update_id} in two minutes")
    finally:
        await stop(process)


async def launch_worker(app: App, server: FakeBotAPI, database_url: str, first: int) -> Start:
    """Start the worker with a broadcast waiting; when the first message went out."""
    await add_many(app, RECIPIENTS, first=first)
    await queue_broadcast(app, rate=1000.0, paid=True)
    before = len(server.deliveries)
    launched = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "broadcast", "worker", "--exit-when-idle",
        env=environment(server, database_url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while len(server.deliveries) == before:
            await asyncio.sleep(0.005)
            if process.returncode is not None and len(server.deliveries) == before:
                raise RuntimeError("the worker stopped without sending")
            if time.monotonic() - launched > 120:
                raise RuntimeError("the worker sent nothing in two minutes")
        return Start(None, server.deliveries[before].at - launched)
    finally:
        await asyncio.wait_for(process.wait(), 60)


def line(name: str, seconds: list[float], target: float | None) -> str:
    """Median and slowest of the launches, against the target."""
    mark = ""
    if target is not None:
        verdict = "met" if statistics.median(seconds) <= target else "MISSED"
        mark = f"  target ≤ {target:.0f} s: {verdict}"
    return (f"{name:<34} median {statistics.median(seconds):5.2f} s   "
            f"slowest {max(seconds):5.2f} s{mark}")  # fmt: skip


async def bench(args: argparse.Namespace, folder: Path) -> int:
    database_url = args.database_url or f"sqlite+aiosqlite:///{folder / 'startup.sqlite3'}"
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, database_url=database_url)
    app = await build_app(settings)  # migrated once, as an upgrade leaves it
    bots: list[Start] = []
    workers: list[Start] = []
    try:
        async with FakeBotAPI(token=TOKEN) as server:
            for run in range(args.runs):
                bots.append(await launch_bot(server, database_url))
                workers.append(await launch_worker(app, server, database_url, 900_000 + 1000 * run))
                print(f"run {run + 1}: bot took its first update after "
                      f"{bots[-1].first_update or 0:.2f} s and answered after "
                      f"{bots[-1].first_send:.2f} s; the worker sent after "
                      f"{workers[-1].first_send:.2f} s", flush=True)  # fmt: skip
    finally:
        await app.close()
    load = os.getloadavg()[0]
    print(f"\nload average when done: {load:.2f} (the targets are for a quiet machine)")
    updates = [start.first_update or start.first_send for start in bots]
    print(line("bot: launch to first update taken", updates, BOT_TARGET))
    print(line("bot: launch to first answer", [start.first_send for start in bots], None))
    print(line("worker: launch to first send", [s.first_send for s in workers], WORKER_TARGET))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Launch the bot and the worker a few times each."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="petitionbot-startup-") as directory:
        return asyncio.run(bench(args, Path(directory)))


if __name__ == "__main__":
    sys.exit(main())
