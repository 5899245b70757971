"""Figures for broadcasts: the rate reached, duplicates, losses, a SIGKILL, memory.

    python -m bench.broadcast [--people 100000] [--latency-ms 50] [--window-s 60]

100,000 opted-in people; the fake Bot API (tests/botapi_server.py) answers each send after
50 ms, in this process; the worker is `petitionbot broadcast worker`, a process of its own,
as in production. Three runs:

1. 25 messages a second (the default), measured over one minute, then stopped (SIGTERM);
2. 1,000 a second (a paid broadcast) to everyone, measured over the whole run;
3. 1,000 a second again, the worker killed (SIGKILL) at a random point and started again.

Rates are counted by the fake, on its own clock. A duplicate is a chat that got the same
broadcast twice; a loss is a row that never went out and is not `unknown`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bot.app import App, build_app
from bot.config import Settings
from bot.workers.broadcast import window_for
from db import broadcasts as store
from db.models import utcnow
from tests.botapi_server import Delivery, FakeBotAPI
from tests.conftest import TOKEN
from tests.test_broadcast import add_many, outbox, queue_broadcast

TARGET_SHARE = 0.95
TARGET_MEMORY_MIB = 300
FIRST = 1_000_000


@dataclass(slots=True)
class Run:
    """One measurement: what to print, and the figures the targets are checked on."""

    line: str
    share: float
    duplicates: int
    lost: int
    peak_kib: int
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class Worker:
    """A worker process and the highest resident memory seen for it."""

    process: asyncio.subprocess.Process
    peak_kib: int = 0

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))


async def start_worker(server: FakeBotAPI, database_url: str, *, until_idle: bool) -> Worker:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_"))}  # fmt: skip
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url,
               DATABASE_URL=database_url, LOG_LEVEL="WARNING")  # fmt: skip
    command = [sys.executable, "-m", "bot", "broadcast", "worker"]
    if until_idle:
        command.append("--exit-when-idle")
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return Worker(process)


async def watch(worker: Worker, seconds: float | None = None) -> None:
    """Sample the worker's memory until it ends (or for `seconds`)."""
    deadline = time.monotonic() + seconds if seconds is not None else None
    while worker.process.returncode is None:
        worker.sample()
        if deadline is not None and time.monotonic() >= deadline:
            return
        try:
            await asyncio.wait_for(asyncio.shield(worker.process.wait()), 0.5)
        except TimeoutError:
            continue


def rate(deliveries: list[Delivery]) -> float:
    """Messages a second from the first delivery to the last."""
    if len(deliveries) < 2:
        return 0.0
    return (len(deliveries) - 1) / (deliveries[-1].at - deliveries[0].at)


async def figures(app: App, broadcast_id: int) -> Counter[str]:
    return Counter(status for status, _error in (await outbox(app, broadcast_id)).values())


def doubles(deliveries: list[Delivery]) -> int:
    return sum(count - 1 for count in Counter(d.chat_id for d in deliveries).values())


def lost(rows: Counter[str], deliveries: list[Delivery], people: int) -> int:
    """Rows that should have gone out and did not: neither sent nor unknown, or recorded
    sent without the fake having it."""
    delivered = len({d.chat_id for d in deliveries})
    return (people - rows["sent"] - rows["unknown"]) + max(0, rows["sent"] - delivered)


async def at_25(app: App, server: FakeBotAPI, url: str, window: float) -> Run:
    start = len(server.deliveries)
    broadcast_id = await queue_broadcast(app, rate=25.0)
    worker = await start_worker(server, url, until_idle=False)
    while len(server.deliveries) == start and worker.process.returncode is None:
        await watch(worker, 0.5)
    await watch(worker, window + 2)
    worker.process.terminate()  # a graceful stop: nothing left in flight
    await watch(worker)
    async with app.conversation.sessions() as session, session.begin():
        await store.cancel_broadcast(session, broadcast_id=broadcast_id, now=utcnow())
    deliveries = server.deliveries[start:]
    first = deliveries[0].at
    counted = sum(1 for d in deliveries if first <= d.at < first + window)
    share = counted / window / 25.0
    rows = await figures(app, broadcast_id)
    line = (
        f"25/s, over {window:.0f} s: {counted / window:.2f}/s = {share:.1%} of the limit; "
        f"duplicates {doubles(deliveries)}; after SIGTERM: {rows['unknown']} unknown, "
        f"{rows['sent']:,} sent, the rest put back and cancelled"
    )
    lost_rows = max(0, rows["sent"] - len({d.chat_id for d in deliveries}))
    return Run(line, share, doubles(deliveries), lost_rows, worker.peak_kib)


async def at_1000(
    app: App, server: FakeBotAPI, url: str, people: int, *, kill: bool, rng: random.Random
) -> Run:
    start = len(server.deliveries)
    broadcast_id = await queue_broadcast(app, rate=1000.0, paid=True)
    worker = await start_worker(server, url, until_idle=True)
    peak = 0
    notes = []
    if kill:
        at = rng.randint(people // 10, people * 9 // 10)
        while len(server.deliveries) - start < at and worker.process.returncode is None:
            await watch(worker, 0.2)
        worker.process.kill()
        await watch(worker)
        peak = worker.peak_kib
        killed_at = len(server.deliveries) - start
        before = await figures(app, broadcast_id)
        notes.append(f"killed after {killed_at:,} deliveries ({before['sending']} rows in flight)")
        worker = await start_worker(server, url, until_idle=True)
    await watch(worker)
    peak = max(peak, worker.peak_kib)
    deliveries = server.deliveries[start:]
    rows = await figures(app, broadcast_id)
    window = window_for(1000.0)
    seconds = deliveries[-1].at - deliveries[0].at
    label = "1000/s, whole run"
    if kill:
        # Measured while a worker runs: the restart in between (a new process starting)
        # is left out, and said.
        gap = max(range(1, len(deliveries)), key=lambda i: deliveries[i].at - deliveries[i - 1].at)
        pause = deliveries[gap].at - deliveries[gap - 1].at
        seconds -= pause
        pieces = [rate(deliveries[:gap]), rate(deliveries[gap:])]
        notes.append(
            "before/after the kill: "
            + ", ".join(f"{p:.0f}/s" for p in pieces)
            + f"; the restart took {pause:.1f} s, left out of the rate"
        )
        label = "1000/s, killed and restarted"
    achieved = (len(deliveries) - 1) / seconds
    share = achieved / 1000.0
    line = (
        f"{label}: {achieved:.0f}/s = {share:.1%} of the limit over {seconds:.1f} s; "
        f"duplicates {doubles(deliveries)}; lost {lost(rows, deliveries, people)}; "
        f"unknown {rows['unknown']} (in-flight window {window}); failed {rows['failed']}"
    )
    if rows["unknown"]:
        arrived = {d.chat_id for d in deliveries}
        unknown = [chat for chat, (status, _e) in (await outbox(app, broadcast_id)).items()
                   if status == "unknown"]  # fmt: skip
        reached = sum(1 for chat in unknown if chat in arrived)
        notes.append(
            f"of the {len(unknown)} unknown, {reached} had reached the platform and "
            f"{len(unknown) - reached} were claimed but not yet sent (never resent either way)"
        )
    return Run(line, share, doubles(deliveries), lost(rows, deliveries, people), peak,
               tuple(notes))  # fmt: skip


async def bench(args: argparse.Namespace, folder: Path) -> int:
    url = f"sqlite+aiosqlite:///{folder / 'broadcast.sqlite3'}"
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, database_url=url)
    app = await build_app(settings)
    rng = random.Random(args.seed)
    runs: list[Run] = []
    problems: list[str] = []
    try:
        started = time.perf_counter()
        await add_many(app, args.people, first=FIRST)
        print(f"{args.people:,} opted-in people seeded in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        latency = args.latency_ms / 1000
        async with FakeBotAPI(token=TOKEN, latency=latency, record_calls=False) as server:
            runs.append(await at_25(app, server, url, args.window_s))
            print(runs[-1].line, flush=True)
            for kill in (False, True):
                runs.append(await at_1000(app, server, url, args.people, kill=kill, rng=rng))
                print(runs[-1].line, flush=True)
                for note in runs[-1].notes:
                    print(f"   {note}", flush=True)
    finally:
        await app.close()
    memory = max(run.peak_kib for run in runs) / 1024
    print(f"worker peak memory (VmHWM): {memory:.0f} MiB (target < {TARGET_MEMORY_MIB})")
    for run in runs:
        if run.share < TARGET_SHARE:
            problems.append(f"below {TARGET_SHARE:.0%} of the limit: {run.line}")
        if run.duplicates or run.lost:
            problems.append(f"duplicates or losses: {run.line}")
    if memory >= TARGET_MEMORY_MIB:
        problems.append("memory over target")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("all targets met")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements in a temporary directory."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.broadcast",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=14042027)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="petitionbot-broadcast-") as directory:
        return asyncio.run(bench(args, Path(directory)))


if __name__ == "__main__":
    sys.exit(main())
