"""Figures for broadcasts: the rate reached, duplicates, losses, a SIGKILL, memory, start-up.

    python -m bench.broadcast [--engine sqlite|postgresql|both] [--people 100000]
        [--kill-people 10000] [--latency-ms 50] [--window-s 10] [--postgres URL]

100,000 opted-in people; the fake Bot API (tests/botapi_server.py) answers each send after
50 ms, in this process; the worker is `petitionbot broadcast worker`, a process of its own,
as in production. On each engine (SQLite in a temporary folder; PostgreSQL in a database of
the bench's own, `bench_broadcast`, dropped and created again at the start), four runs:

1. 25 messages a second (the default), measured over `--window-s`, then stopped (SIGTERM);
2. 1,000 a second (a paid broadcast) to everyone, measured over the whole run;
3. 1,000 a second to everyone again: a second broadcast of the same size, the first one's
   outbox rows still there (as they stay for OUTBOX_RETENTION_DAYS), measured the same way;
4. 1,000 a second to the `--kill-people` who read English, the worker killed (SIGKILL) at
   a random point and started again.

Rates are counted by the fake, on its own clock. A duplicate is a chat that got the same
broadcast twice; a loss is a row that never went out and is not `unknown`. A worker's
start-up is the time from spawning its process to the fake's first delivery: Python and
the imports, the schema check, the lease, filling the outbox, the first claim and send.
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
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

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
ENGINES = ("sqlite", "postgresql")
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
# The bench's own database, dropped and created again at every start: never a name that
# tests or people use.
DATABASE = "bench_broadcast"


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
    """A worker process, when it was spawned, and the highest resident memory seen for it."""

    process: asyncio.subprocess.Process
    spawned: float
    peak_kib: int = 0

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))


@dataclass(slots=True)
class Bench:
    """What every run of one engine shares."""

    app: App
    server: FakeBotAPI
    url: str
    people: int
    log: IO[bytes] | None
    log_level: str
    rng: random.Random
    startups: list[float]  # every spawn's, in order

    async def start_worker(self, *, until_idle: bool) -> Worker:
        ours = ("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_")
        env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
        env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=self.server.url,
                   DATABASE_URL=self.url, LOG_LEVEL=self.log_level)  # fmt: skip
        command = [sys.executable, "-m", "bot", "broadcast", "worker"]
        if until_idle:
            command.append("--exit-when-idle")
        spawned = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.log or asyncio.subprocess.DEVNULL,
        )
        return Worker(process, spawned)

    def startup(self, worker: Worker, start: int) -> float:
        """Seconds from spawning `worker` to the first delivery at or after index `start`."""
        if len(self.server.deliveries) <= start:
            return float("nan")
        seconds = self.server.deliveries[start].at - worker.spawned
        self.startups.append(seconds)
        return seconds


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


def arrival(delivery: Delivery) -> float:
    return delivery.at


def rate(deliveries: list[Delivery]) -> float:
    """Messages a second from the first delivery to the last."""
    if len(deliveries) < 2:
        return 0.0
    return (len(deliveries) - 1) / (deliveries[-1].at - deliveries[0].at)


def longest_pause(deliveries: list[Delivery]) -> float:
    """The longest time between two deliveries in a row."""
    return max((b.at - a.at for a, b in pairwise(deliveries)), default=0.0)


async def figures(app: App, broadcast_id: int) -> Counter[str]:
    return Counter(status for status, _error in (await outbox(app, broadcast_id)).values())


def doubles(deliveries: list[Delivery]) -> int:
    return sum(count - 1 for count in Counter(d.chat_id for d in deliveries).values())


def lost(rows: Counter[str], deliveries: list[Delivery], people: int) -> int:
    """Rows that should have gone out and did not: neither sent nor unknown, or recorded
    sent without the fake having it."""
    delivered = len({d.chat_id for d in deliveries})
    return (people - rows["sent"] - rows["unknown"]) + max(0, rows["sent"] - delivered)


async def at_25(bench: Bench, window: float) -> Run:
    server = bench.server
    start = len(server.deliveries)
    broadcast_id = await queue_broadcast(bench.app, rate=25.0)
    worker = await bench.start_worker(until_idle=False)
    while len(server.deliveries) == start and worker.process.returncode is None:
        await watch(worker, 0.1)
    startup = bench.startup(worker, start)
    await watch(worker, window + 2)
    worker.process.terminate()  # a graceful stop: nothing left in flight
    await watch(worker)
    async with bench.app.conversation.sessions() as session, session.begin():
        await store.cancel_broadcast(session, broadcast_id=broadcast_id, now=utcnow())
    deliveries = server.deliveries[start:]
    first = deliveries[0].at
    counted = sum(1 for d in deliveries if first <= d.at < first + window)
    share = counted / window / 25.0
    rows = await figures(bench.app, broadcast_id)
    line = (
        f"25/s, over {window:.0f} s: {counted / window:.2f}/s = {share:.1%} of the limit; "
        f"duplicates {doubles(deliveries)}; after SIGTERM: {rows['unknown']} unknown, "
        f"{rows['sent']:,} sent, the rest put back and cancelled"
    )
    notes = (f"worker start-up (spawn to first delivery): {startup:.2f} s",)
    lost_rows = max(0, rows["sent"] - len({d.chat_id for d in deliveries}))
    return Run(line, share, doubles(deliveries), lost_rows, worker.peak_kib, notes)


async def at_1000(bench: Bench, label: str, *, kill: bool = False) -> Run:
    """A paid broadcast at 1,000 a second to everyone, or (`kill`) to those who read English
    with a SIGKILL on the way; the rate over the whole run."""
    server = bench.server
    people = bench.people
    audience = None
    if kill:
        audience = store.Audience(languages=("en",))
        async with bench.app.conversation.sessions() as session:
            people = sum((await store.count_audience(session, audience=audience)).values())
    start = len(server.deliveries)
    broadcast_id = await queue_broadcast(bench.app, rate=1000.0, paid=True, audience=audience)
    worker = await bench.start_worker(until_idle=True)
    notes = []
    startups = []
    restarted: Worker | None = None
    peak = 0
    if kill:
        at = bench.rng.randint(people // 10, people * 9 // 10)
        while len(server.deliveries) - start < at and worker.process.returncode is None:
            await watch(worker, 0.1)
        startups.append(bench.startup(worker, start))
        worker.process.kill()
        await watch(worker)
        peak = worker.peak_kib
        before = await figures(bench.app, broadcast_id)
        notes.append(
            f"killed after {len(server.deliveries) - start:,} deliveries "
            f"({before['sending']} rows in flight)"
        )
        worker = restarted = await bench.start_worker(until_idle=True)
    await watch(worker)
    peak = max(peak, worker.peak_kib)
    deliveries = server.deliveries[start:]
    # The new process's first delivery (requests the killed one had already written may
    # still have arrived after it died).
    gap = 0 if restarted is None else bisect_left(deliveries, restarted.spawned, key=arrival)
    startups.append(bench.startup(worker, start + gap))
    rows = await figures(bench.app, broadcast_id)
    window = window_for(1000.0)
    seconds = deliveries[-1].at - deliveries[0].at
    pauses = [longest_pause(deliveries)]
    if restarted is not None:
        # Measured while a worker runs: the restart in between (a new process starting)
        # is left out, and said.
        pause = deliveries[gap].at - deliveries[gap - 1].at
        seconds -= pause
        pieces = [deliveries[:gap], deliveries[gap:]]
        pauses = [longest_pause(piece) for piece in pieces]
        notes.append(
            "before/after the kill: "
            + ", ".join(f"{rate(piece):.0f}/s" for piece in pieces)
            + f"; the restart took {pause:.1f} s, left out of the rate"
        )
    achieved = (len(deliveries) - 1) / seconds
    share = achieved / 1000.0
    line = (
        f"{label}: {achieved:.0f}/s = {share:.1%} of the limit over {seconds:.1f} s "
        f"({len(deliveries):,} sent); duplicates {doubles(deliveries)}; "
        f"lost {lost(rows, deliveries, people)}; unknown {rows['unknown']} "
        f"(in-flight window {window}); failed {rows['failed']}"
    )
    started = ", after the kill ".join(f"{seconds:.2f} s" for seconds in startups)
    longest = ", ".join(f"{pause:.2f} s" for pause in pauses)
    notes.append(
        f"worker start-up (spawn to first delivery): {started}; "
        f"longest pause between deliveries: {longest}"
    )
    if rows["unknown"]:
        arrived = {d.chat_id for d in deliveries}
        unknown = [chat for chat, (status, _e) in (await outbox(bench.app, broadcast_id)).items()
                   if status == "unknown"]  # fmt: skip
        reached = sum(1 for chat in unknown if chat in arrived)
        notes.append(
            f"of the {len(unknown)} unknown, {reached} had reached the platform and "
            f"{len(unknown) - reached} were claimed but not yet sent (never resent either way)"
        )
    return Run(line, share, doubles(deliveries), lost(rows, deliveries, people), peak,
               tuple(notes))  # fmt: skip


async def fresh_postgres(server: str) -> str:
    """Drop and create the bench's own database on `server`; its URL."""
    url = make_url(server)
    if url.database not in (None, "", "postgres", DATABASE):
        raise SystemExit(f"--postgres names a server, not a database ({url.database})")
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
            await connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    finally:
        await admin.dispose()
    return url.set(database=DATABASE).render_as_string(hide_password=False)


async def bench_engine(args: argparse.Namespace, engine: str, folder: Path) -> list[str]:
    """The four runs on one engine; the targets missed."""
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'broadcast.sqlite3'}"
        print("SQLite, a file in a temporary folder", flush=True)
    else:
        url = await fresh_postgres(args.postgres)
        print(f"PostgreSQL, database {DATABASE} (created afresh)", flush=True)
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, database_url=url)
    app = await build_app(settings)
    runs: list[Run] = []
    startups: list[float] = []
    problems: list[str] = []
    log = args.worker_log.open("ab") if args.worker_log else None
    try:
        started = time.perf_counter()
        # Those who read English come first: the killed run's audience.
        kill_people = min(args.kill_people, args.people)
        await add_many(app, kill_people, first=FIRST, language="en")
        await add_many(app, args.people - kill_people, first=FIRST + kill_people)
        print(f"{args.people:,} opted-in people seeded in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        latency = args.latency_ms / 1000
        async with FakeBotAPI(token=TOKEN, latency=latency, record_calls=False) as server:
            bench = Bench(app, server, url, args.people, log, args.log_level,
                          random.Random(args.seed), startups)  # fmt: skip
            measurements = [
                lambda: at_25(bench, args.window_s),
                lambda: at_1000(bench, "1000/s, whole run"),
                lambda: at_1000(bench, "1000/s, a second broadcast to everyone"),
                lambda: at_1000(bench, "1000/s, killed and restarted", kill=True),
            ]
            for measure in measurements:
                runs.append(await measure())
                print(runs[-1].line, flush=True)
                for note in runs[-1].notes:
                    print(f"   {note}", flush=True)
    finally:
        await app.close()
        if log is not None:
            log.close()
    memory = max(run.peak_kib for run in runs) / 1024
    print(f"worker peak memory (VmHWM): {memory:.0f} MiB (target < {TARGET_MEMORY_MIB})")
    print("worker start-up, every spawn: " + ", ".join(f"{s:.2f} s" for s in startups))
    for run in runs:
        if run.share < TARGET_SHARE:
            problems.append(f"{engine}: below {TARGET_SHARE:.0%} of the limit: {run.line}")
        if run.duplicates or run.lost:
            problems.append(f"{engine}: duplicates or losses: {run.line}")
    if memory >= TARGET_MEMORY_MIB:
        problems.append(f"{engine}: memory over target")
    return problems


async def bench(args: argparse.Namespace, folder: Path) -> int:
    engines = ENGINES if args.engine == "both" else (args.engine,)
    problems: list[str] = []
    started = time.monotonic()
    for number, engine in enumerate(engines):
        if number:
            print()
        problems += await bench_engine(args, engine, folder)
    print(f"\n{len(engines)} engine(s) in {time.monotonic() - started:.0f} s")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("all targets met")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Run the measurements on each engine asked for (a temporary directory for SQLite)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.broadcast",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument(
        "--postgres", default=POSTGRES, help=f"the server ({DATABASE} is made there)"
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--kill-people", type=int, default=10_000,
                        help="the audience of the run with a SIGKILL")  # fmt: skip
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=14042027)
    parser.add_argument("--worker-log", type=Path, help="append the workers' logs to this file")
    parser.add_argument("--log-level", default="WARNING", help="the workers' LOG_LEVEL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="petitionbot-broadcast-") as directory:
        return asyncio.run(bench(args, Path(directory)))


if __name__ == "__main__":
    sys.exit(main())
