"""Simulated signers through the Telegram adapter and the real dispatcher, timed.

Every signer walks the whole flow (language, consent, name, country, region, birthplace,
contact, news, review) as Telegram updates fed to the production dispatcher, on a SQLite
file or a PostgreSQL database of its own. The same updates also go through an echo bot on
a bare dispatcher, so the figures can be read against what aiogram itself costs.

Runs of the petition flow:
- saturated: each signer sends the next update the moment the answer arrives. This gives
  the most updates per second the bot can handle; latency there is only queueing
  (200 signers always waiting, so mean latency = 200 / throughput).
- paced: each signer pauses before every step (exponentially distributed, mean --think-ms,
  500 ms by default: quicker than people tap, so the load is still heavy). This is the run
  the latency target is read from. `--think-ms 185` makes 200 signers offer about 1,000
  updates a second, a stress test of latency near the bot's limit.
- paced with /stats (`--stats-every S`): the same paced run again while an organiser (in
  ADMIN_IDS) sends /stats every S seconds; the signers' p99 is compared with the run
  without, and /stats's own latency is shown.

`--preload N` first fills the database with N signatures spread as a diaspora campaign's
are (countries, regions, provinces, languages, a year of days, half with a sealed contact,
a few from paper and a few set aside), their people's rows, a quarter as many people who
started and stopped, the signer counter and the milestones passed, in bulk inserts; on
PostgreSQL then VACUUM ANALYZE, as autovacuum would have done (and would otherwise do in
the middle of the run). On PostgreSQL the database named in --pg-url (`bench_signing`) is
dropped and made again first; only names starting with "bench" are accepted.

    python -m bench.signing --signers 2000 --concurrency 200 [--think-ms 500] [--db PATH]
        [--engine sqlite|postgresql] [--preload 100000] [--stats-every 2] [--json PATH]

`python -m bench.signing_scale` (`make bench`) compares an empty database with 100,000
signatures on both engines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import logging
import math
import pstats
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    GetMe,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Chat, Message, PhotoSize, Update, User
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import admin as campaign
from bot.app import build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from db import stats
from db.migrate import upgrade
from db.milestones import thresholds
from db.models import Counter as CounterRow
from db.models import Milestone, Signature
from db.models import User as UserRow
from db.protect import ContactCipher, new_key
from db.queries import SIGNERS
from db.session import create_engine, create_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:" + "A" * 35
BOT_USER = User(id=123456, is_bot=True, first_name="bench", username="petition_bench_bot")
TARGET_RATE = 1000.0  # updates per second
TARGET_P99_MS = 50.0
SEED = 20140309  # fixed, so two runs send the same answers and stay comparable
ADMIN_ID = 424242  # the organiser sending /stats, in ADMIN_IDS
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_signing"
# Telegram ids: the echo bot's people, the petition's, and those preloaded, kept apart.
ECHO_FIRST_ID, SIGNER_FIRST_ID, PRELOAD_FIRST_ID = 1_000_000, 5_000_000, 10_000_000
PRELOAD_CHUNK = 5_000  # rows per bulk insert
STATS_TIMEOUT = 60.0  # seconds a /stats may take to send its chart before it counts as lost

NAMES = (
    "សុខ សុភា", "ចាន់ ដារ៉ា", "ហេង សំណាង", "លី វណ្ណៈ",
    "Sok Sophea", "Chan Dara", "Keo Bopha", "Marie-Claire Chea",
)  # fmt: skip
# Country → (a region as people type it, a local phone number valid there).
COUNTRIES = {
    "US": ("California", "213 373 4253"),
    "FR": ("Île-de-France", "06 12 34 56 78"),
    "AU": ("Victoria", "0412 345 678"),
    "CA": ("Ontario", "416 555 0123"),
}

Step = tuple[str, str]  # ("text", what is typed) or ("button", the callback payload)


def signer_script(index: int) -> list[Step]:
    """The eleven updates one signer sends, from /start to the confirmation."""
    rng = random.Random(SEED + index)
    language = "km" if index % 2 == 0 else "en"
    country = rng.choice(tuple(COUNTRIES))
    region, phone = COUNTRIES[country]
    contact: Step = rng.choice(
        (("text", phone), ("text", f"signer{index}@example.org"), ("button", "ct:skip"))
    )
    return [
        ("text", "/start"),
        ("button", f"l:{language}"),
        ("button", "go:sign"),
        ("button", "c:y"),
        ("text", rng.choice(NAMES)),
        ("button", f"co:{country}"),
        ("text", region),
        ("button", f"b:{rng.randint(1, 25):02d}"),
        contact,
        ("button", "u:y"),
        ("button", "rv:ok"),
    ]


class BenchSession(BaseSession):
    """A Bot API that answers at once from memory, counting calls and keeping each chat's
    last message (the check at the end reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.last_text: dict[int, str] = {}
        self._message_ids = itertools.count(1)
        self._photo_waiters: dict[int, asyncio.Future[None]] = {}

    def next_photo(self, chat_id: int) -> asyncio.Future[None]:
        """Done when the next photo goes to `chat_id` (the /stats chart, which may come after
        the update's own answer)."""
        waiter = asyncio.get_running_loop().create_future()
        self._photo_waiters[chat_id] = waiter
        return waiter

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.calls[type(method).__name__] += 1
        if isinstance(method, SendMessage):
            chat_id = int(method.chat_id)
            self.last_text[chat_id] = method.text
            return Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private"),
                from_user=BOT_USER,
                text=method.text,
            )
        if isinstance(method, SendPhoto):  # the /stats chart
            waiter = self._photo_waiters.pop(int(method.chat_id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=BOT_USER,
                caption=method.caption,
                photo=[PhotoSize(file_id="chart", file_unique_id="chart", width=1200, height=900)],
            )
        if isinstance(method, AnswerCallbackQuery | EditMessageReplyMarkup | SetMyCommands):
            return True
        if isinstance(method, GetMe):
            return BOT_USER
        # Fail loudly: a call the bench does not model would make the figures meaningless.
        raise RuntimeError(f"unexpected Bot API call: {type(method).__name__}")

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise RuntimeError("no downloads expected")
        yield b""  # never reached; the yield makes this an async generator like the base

    async def close(self) -> None:
        return None


class UpdateFactory:
    """Telegram updates as a private chat delivers them; ids increase across the whole run."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def make(self, user: User, step: Step) -> Update:
        """The update for one step of one signer."""
        update_id = next(self._ids)
        chat = Chat(id=user.id, type="private")
        now = datetime.now(UTC)
        kind, value = step
        if kind == "text":
            message = Message(message_id=update_id, date=now, chat=chat, from_user=user, text=value)
            return Update(update_id=update_id, message=message)
        # A press on a button under one of the bot's earlier messages.
        earlier = Message(message_id=update_id, date=now, chat=chat, from_user=BOT_USER, text="…")
        query = CallbackQuery(
            id=str(update_id), from_user=user, chat_instance=str(user.id), data=value,
            message=earlier,
        )  # fmt: skip
        return Update(update_id=update_id, callback_query=query)


@dataclass(slots=True)
class Phase:
    """What one dispatcher did with all signers."""

    name: str
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # when each update was fed

    def record(self, started: float, ended: float) -> None:
        """One update, fed at `started`, answered at `ended` (perf_counter seconds)."""
        self.starts.append(started)
        self.latencies.append(ended - started)

    def split(self, windows: list[tuple[float, float]]) -> tuple[Phase, Phase]:
        """(the updates in hand while one of the windows was open, the others)."""
        inside, outside = Phase(f"{self.name}, inside"), Phase(f"{self.name}, outside")
        for started, latency in zip(self.starts, self.latencies, strict=True):
            ended = started + latency
            overlaps = any(started < close and ended > open_ for open_, close in windows)
            (inside if overlaps else outside).record(started, ended)
        return inside, outside

    @property
    def updates(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.updates / self.wall if self.wall else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the per-update latency, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1] * 1000

    def summary(self) -> dict[str, float]:
        """The figures the comparison across configurations reads (bench/signing_scale.py)."""
        return {
            "updates": self.updates, "wall": self.wall, "rate": self.rate,
            "p50": self.percentile_ms(0.50), "p95": self.percentile_ms(0.95),
            "p99": self.percentile_ms(0.99), "max": self.percentile_ms(1.0),
        }  # fmt: skip


@dataclass(slots=True)
class Probe:
    """An organiser sending /stats every `every` seconds while signers sign, each timed from
    the update to its chart (the figures may come after the update's own answer)."""

    user: User
    every: float
    session: BenchSession
    phase: Phase
    unanswered: int = 0  # no chart within STATS_TIMEOUT
    windows: list[tuple[float, float]] = field(default_factory=list)  # from /stats to chart

    async def ask(self, dispatcher: Dispatcher, bot: Bot, factory: UpdateFactory) -> float | None:
        """One /stats; the seconds until its chart, or None when none came."""
        chart = self.session.next_photo(self.user.id)
        started = time.perf_counter()
        await dispatcher.feed_update(bot, factory.make(self.user, ("text", "/stats")))
        try:
            await asyncio.wait_for(chart, STATS_TIMEOUT)
        except TimeoutError:
            self.unanswered += 1
            return None
        finally:
            self.windows.append((started, time.perf_counter()))
        return self.windows[-1][1] - started

    async def run(
        self, dispatcher: Dispatcher, bot: Bot, factory: UpdateFactory, stop: asyncio.Event
    ) -> None:
        """Send /stats, timed, until `stop` is set (the one in hand is finished)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
                return
            seconds = await self.ask(dispatcher, bot, factory)
            if seconds is not None:
                self.phase.record(self.windows[-1][0], self.windows[-1][1])


async def run_phase(
    name: str,
    dispatcher: Dispatcher,
    bot: Bot,
    factory: UpdateFactory,
    *,
    signers: int,
    concurrency: int,
    first_user_id: int,
    think: float = 0.0,
    probe: Probe | None = None,
) -> Phase:
    """Every signer's updates in order, `concurrency` signers at a time, pausing `think` s;
    `probe` sends its updates meanwhile."""
    phase = Phase(name)
    pauses = random.Random(SEED)
    pending: Iterator[int] = iter(range(signers))
    clock = time.perf_counter

    async def worker() -> None:
        # Workers share one iterator: a free worker takes the next signer, like a new
        # person arriving the moment another one is done.
        for index in pending:
            user = User(id=first_user_id + index, is_bot=False, first_name="Signer")
            for step in signer_script(index):
                if think:
                    await asyncio.sleep(pauses.expovariate(1 / think))
                update = factory.make(user, step)
                started = clock()
                await dispatcher.feed_update(bot, update)
                phase.record(started, clock())

    stop = asyncio.Event()
    probing = None
    if probe is not None:
        probing = asyncio.create_task(probe.run(dispatcher, bot, factory, stop))
    started = clock()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, signers)):
            group.create_task(worker())
    phase.wall = clock() - started
    if probe is not None and probing is not None:
        stop.set()
        await probing
        probe.phase.wall = phase.wall
    return phase


def build_echo_dispatcher() -> Dispatcher:
    """The ceiling: a dispatcher whose handlers only send one message back."""
    dispatcher = Dispatcher()

    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    async def pressed(callback: CallbackQuery, bot: Bot) -> None:
        await callback.answer()
        await bot.send_message(callback.from_user.id, callback.data or "…")

    dispatcher.message.register(echo)
    dispatcher.callback_query.register(pressed)
    return dispatcher


# ---------------------------------------------------------------- the database, a campaign in it

_USERS: Table = UserRow.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_COUNTERS: Table = CounterRow.__table__  # type: ignore[assignment]
_MILESTONES: Table = Milestone.__table__  # type: ignore[assignment]
Rows = list[dict[str, Any]]
_COUNT_COUNTED = select(func.count()).where(_SIGNATURES.c.invalidated_at.is_(None))
COUNTED = "counted"  # the `counters` row of the signatures counted, where there is one


def campaign_days(today: date) -> dict[date, float]:
    """A year of days: more signatures toward today, a peak around Khmer New Year."""
    weights = {}
    for age in range(365):
        day = today - timedelta(days=age)
        weight = 1.0 + 3.0 * (365 - age) / 365
        if abs((day - date(day.year, 4, 14)).days) <= 5:
            weight *= 4.0
        weights[day] = weight
    return weights


T = TypeVar("T")


class Weighted(Generic[T]):
    """Picks from a {value: weight} table (cumulative weights made once: 100,000 picks)."""

    def __init__(self, weights: Mapping[T, float]) -> None:
        self.values = tuple(weights)
        self.cumulative = list(itertools.accumulate(weights.values()))

    def pick(self, rng: random.Random) -> T:
        """One value, as often as its weight says."""
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


def campaign_rows(count: int, cipher: ContactCipher, now: datetime) -> Iterator[tuple[Rows, Rows]]:
    """(people, signatures) in chunks: `count` signatures numbered 1 to `count` as the
    counter would have given them, spread as bench/admin.py spreads them, with their
    people's rows; then a quarter as many people who started and did not sign."""
    rng = random.Random(SEED)
    days = Weighted(campaign_days(now.date()))
    # Early signers who share a lot: their codes brought many of the others.
    sharers = Weighted({f"s{rank:09d}": 1.0 / (rank + 1) for rank in range(min(300, count))})
    countries, provinces = Weighted(campaign.COUNTRIES), Weighted(campaign.PROVINCES)
    regions_in = {country: Weighted(regions) for country, regions in campaign.REGIONS.items()}
    people: Rows = []
    signatures: Rows = []
    for index in range(count + count // 4):
        signs = index < count
        paper = signs and rng.random() < 0.05
        channel = "paper" if paper else rng.choices(("telegram", "messenger"), (80, 20))[0]
        at = datetime.combine(days.pick(rng), datetime.min.time(), tzinfo=UTC)
        at = min(now, at + timedelta(seconds=rng.randrange(86_400)))
        language = "km" if rng.random() < 0.65 else "en"
        referrer = sharers.pick(rng) if rng.random() < 0.4 else None
        news = signs and rng.random() < 0.55
        user_id = None
        if not paper:
            user_id = index + 1
            people.append({
                "id": user_id, "channel": channel, "external_id": str(PRELOAD_FIRST_ID + index),
                "language": language,
                "step": "idle" if signs else rng.choice(campaign.STOPPED_AT),
                "draft": {}, "referred_by": referrer if signs else None,
                "share_code": f"s{index:09d}" if signs else None, "updates_opt_in": news,
                "recent_updates": [], "blocked": False, "created_at": at, "last_seen_at": at,
                "agreed_at": at if signs or rng.random() < 0.6 else None,
                "signed": signs,
            })  # fmt: skip
        if signs:
            country = countries.pick(rng)
            regions = regions_in.get(country)
            region = regions.pick(rng) if regions and rng.random() < 0.8 else None
            if rng.random() < 0.6:
                name = f"{rng.choice(campaign.FAMILY)} {rng.choice(campaign.GIVEN)}"
            else:
                name = f"{rng.choice(campaign.FAMILY_LATIN)} {rng.choice(campaign.GIVEN_LATIN)}"
            phone = email = None
            if rng.random() < 0.5:
                if rng.random() < 0.8:
                    phone = f"+855{rng.randrange(10_000_000, 99_999_999)}"
                else:
                    email = f"signer{index}@example.org"
            contact = phone or email
            signatures.append({
                "user_id": user_id, "full_name": name, "country": country, "region": region,
                "birth_province": provinces.pick(rng),
                "phone": cipher.seal(phone) if phone else None,
                "email": cipher.seal(email) if email else None,
                "contact_hash": cipher.fingerprint(contact) if contact else None,
                "updates_opt_in": news, "language": language, "channel": channel,
                "source": "import" if paper else "chat",
                "referrer_code": None if paper else referrer, "created_at": at,
                "updated_at": at, "invalidated_at": now if rng.random() < 0.005 else None,
                "number": index + 1,
            })  # fmt: skip
        if len(people) >= PRELOAD_CHUNK or len(signatures) >= PRELOAD_CHUNK:
            yield people, signatures
            people, signatures = [], []
    yield people, signatures


async def preload(url: str, count: int, *, cipher: ContactCipher, goal: int) -> float:
    """Bring the schema up and put `count` signatures in, consistent with what signing
    would have left (the counter, the milestones passed); the seconds the filling took."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        started = time.perf_counter()
        async with engine.begin() as connection:
            for people, signatures in campaign_rows(count, cipher, datetime.now(UTC)):
                if people:
                    await connection.execute(insert(_USERS), people)
                if signatures:
                    await connection.execute(insert(_SIGNATURES), signatures)
            await connection.execute(
                update(_COUNTERS).where(_COUNTERS.c.name == SIGNERS).values(value=count)
            )
            counted = await connection.scalar(_COUNT_COUNTED) or 0
            # The signatures counted, where the schema keeps them (migration 0014 on).
            await connection.execute(
                update(_COUNTERS).where(_COUNTERS.c.name == COUNTED).values(value=counted)
            )
            passed = [value for value in thresholds(goal) if value <= counted]
            if passed:
                now = datetime.now(UTC)
                await connection.execute(
                    insert(_MILESTONES),
                    [{"value": value, "reached_at": now, "announced_at": now} for value in passed],
                )
            if engine.dialect.name == "postgresql":
                # The people's ids were given, not drawn from their sequence: move it on.
                await connection.execute(
                    text("SELECT setval(pg_get_serial_sequence('users', 'id'), "
                         "(SELECT COALESCE(MAX(id), 0) + 1 FROM users), false)")
                )  # fmt: skip
        # The checkpoint of /stats's figures, as the watch would have taken it by now.
        async with create_sessionmaker(engine)() as session:
            checkpoint = await stats.new_checkpoint(session, now=datetime.now(UTC))
        if checkpoint is not None:
            async with create_sessionmaker(engine)() as session, session.begin():
                await stats.keep(session, checkpoint)
        async with engine.connect() as connection:
            # Outside a transaction, where neither can run.
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql":
                # As autovacuum would have by now (and would otherwise do during the run).
                await autocommit.exec_driver_sql("VACUUM ANALYZE")
            else:
                # The rows into the file, out of the write-ahead log, as a checkpoint would.
                await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def fresh_postgres(url: str) -> None:
    """Drop and make again the bench's own database (parse_args accepts no other name)."""
    target = make_url(url)
    name = target.database or ""
    server = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await server.dispose()


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace) -> AsyncIterator[tuple[str, str]]:
    """(its URL, its name for the output): the bench's PostgreSQL database made again, or a
    new SQLite file (a temporary one, removed after, unless --db names one)."""
    if args.engine == "postgresql":
        await fresh_postgres(args.pg_url)
        yield args.pg_url, f"PostgreSQL database {make_url(args.pg_url).database}"
    elif args.db is not None:
        path = args.db.resolve()
        yield f"sqlite+aiosqlite:///{path}", f"SQLite file {path}"
    else:
        with tempfile.TemporaryDirectory(prefix="petitionbot-bench-") as tmpdir:
            path = Path(tmpdir) / "bench.sqlite3"
            yield f"sqlite+aiosqlite:///{path}", f"SQLite file {path}"


# ---------------------------------------------------------------- figures and checks


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(phases: list[Phase]) -> None:
    """One aligned row per phase."""
    header = ("", "updates", "wall s", "upd/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (
            phase.name,
            f"{phase.updates}",
            f"{phase.wall:.2f}",
            f"{phase.rate:.0f}",
            f"{phase.percentile_ms(0.50):.1f}",
            f"{phase.percentile_ms(0.95):.1f}",
            f"{phase.percentile_ms(0.99):.1f}",
            f"{phase.percentile_ms(1.0):.1f}",
        )
        for phase in phases
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


def package_of(filename: str) -> str:
    """Which project directory or installed package a profiled function belongs to."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(ROOT)):
        return Path(filename).relative_to(ROOT).parts[0] + "/ (ours)"
    if "/asyncio/" in filename:
        return "asyncio"
    return "stdlib"


def own_time_by_package(stats: pstats.Stats) -> Counter[str]:
    """Own time summed per package; a builtin's time goes to the packages that called it."""
    totals: Counter[str] = Counter()
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, own, _cum, callers) in table.items():
        if "select.epoll" in name:
            # The loop sleeping: waiting for the database thread, not CPU spent.
            totals["(idle: event loop waiting)"] += own
        elif filename != "~":
            totals[package_of(filename)] += own
        else:
            for (caller_file, _l, _n), caller_stats in callers.items():
                totals[package_of(caller_file) if caller_file != "~" else "builtins"] += (
                    caller_stats[2]
                )
    return totals


def print_profile(profiler: cProfile.Profile) -> None:
    """The hot spots of the petition phase, to stderr."""
    print("\n=== petition phase, top 25 by cumulative time ===", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(25)
    # Cumulative time of coroutines counts every resumption; own time shows where the CPU goes.
    print("=== petition phase, top 25 by own time ===", file=sys.stderr)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
    # The outer aiogram/asyncio frames above show cumulative times beyond the wall time
    # (cProfile and suspended coroutines); inside our own code the figures add up.
    print("=== petition phase, our code by cumulative time ===", file=sys.stderr)
    ours = f"{re.escape(str(ROOT))}/(bot|handlers|db)/"
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(ours, 25)
    totals = own_time_by_package(stats)
    grand = sum(totals.values()) or 1.0
    print("=== petition phase, own time by package (main thread only) ===", file=sys.stderr)
    for package, seconds in totals.most_common():
        print(f"{seconds:9.2f} s  {100 * seconds / grand:5.1f} %  {package}", file=sys.stderr)


def check_petition(expected: int, total: int, session: BenchSession, user_ids: range) -> list[str]:
    """What is wrong with the run, if anything: every signer signed once and was thanked."""
    problems = []
    if total != expected:
        problems.append(f"{total} signatures in the database, expected {expected}")
    unthanked = [uid for uid in user_ids if "?start=" not in session.last_text.get(uid, "")]
    if unthanked:
        sample = session.last_text.get(unthanked[0], "(nothing)")
        problems.append(
            f"{len(unthanked)} signers' last message is not the thank-you; "
            f"user {unthanked[0]} last saw: {sample[:200]!r}"
        )
    return problems


def check_echo(phase: Phase, session: BenchSession, buttons: int) -> list[str]:
    """The echo bot answered every update once and every button press."""
    problems = []
    if session.calls["SendMessage"] != phase.updates:
        problems.append(f"echo sent {session.calls['SendMessage']} messages for {phase.updates}")
    if session.calls["AnswerCallbackQuery"] != buttons:
        problems.append(
            f"echo answered {session.calls['AnswerCallbackQuery']} of {buttons} presses"
        )
    return problems


@dataclass(slots=True)
class Outcome:
    """What one configuration (an engine, a number preloaded) measured."""

    where: str
    preload_seconds: float
    echo: Phase
    petition: Phase
    paced: Phase
    probed: Phase | None  # paced again, with /stats meanwhile
    stats: Phase | None  # the /stats updates themselves
    # The probed run's updates in hand while a /stats was (from the update to its chart),
    # and the others: the same run, so the machine's drift is the same for both.
    inside: Phase | None
    outside: Phase | None
    calls: Counter[str]
    total: int
    rss_after_echo: float
    problems: list[str]

    def summary(self, args: argparse.Namespace) -> dict[str, Any]:
        """As JSON, for bench/signing_scale.py."""
        phases = {"echo": self.echo, "saturated": self.petition, "paced": self.paced,
                  "probed": self.probed, "stats": self.stats, "inside": self.inside,
                  "outside": self.outside}  # fmt: skip
        return {
            "engine": args.engine, "preload": args.preload, "signers": args.signers,
            "concurrency": args.concurrency, "paced_concurrency": args.paced_concurrency,
            "think_ms": args.think_ms,
            "stats_every": args.stats_every, "preload_seconds": self.preload_seconds,
            "total": self.total, "problems": self.problems,
            **{name: phase.summary() if phase else None for name, phase in phases.items()},
        }  # fmt: skip


async def bench(args: argparse.Namespace) -> Outcome:
    """The database made (and filled), then every phase and the checks."""
    async with database(args) as (url, where):
        # With contact keys, as a campaign should run: the contact step and its encryption
        # count. The organiser in ADMIN_IDS is the one who sends /stats.
        settings = Settings(
            telegram_bot_token=TOKEN,
            database_url=url,
            data_key=new_key(),
            hash_key="bench-" * 8,
            admin_ids=[ADMIN_ID],
        )
        cipher = settings.contact_cipher()
        assert cipher is not None
        preload_seconds = await preload(
            url, args.preload, cipher=cipher, goal=settings.petition_goal
        )
        return await measure(args, settings, where, preload_seconds)


async def measure(
    args: argparse.Namespace, settings: Settings, where: str, preload_seconds: float
) -> Outcome:
    """The echo bot, then the petition flow saturated, paced, and paced with /stats."""
    factory = UpdateFactory()
    problems: list[str] = []
    signers, concurrency = args.signers, args.concurrency
    buttons = sum(kind == "button" for i in range(signers) for kind, _ in signer_script(i))

    echo_session = BenchSession()
    echo_bot = build_bot(settings, session=echo_session)
    echo = await run_phase(
        "echo bot (ceiling)", build_echo_dispatcher(), echo_bot, factory,
        signers=signers, concurrency=concurrency, first_user_id=ECHO_FIRST_ID,
    )  # fmt: skip
    problems += check_echo(echo, echo_session, buttons)
    await echo_bot.session.close()
    rss_after_echo = peak_rss_mib()

    app = await build_app(settings)
    session = BenchSession()
    bot = build_bot(settings, session=session)
    profiler = cProfile.Profile() if args.profile else None
    first_user_id = SIGNER_FIRST_ID
    probed = stats = inside = outside = None
    try:
        dispatcher = build_dispatcher(app)
        # Polling start-up asks getMe once; do it here so no signer pays for it.
        await bot.me()
        if profiler is not None:
            profiler.enable()
        petition = await run_phase(
            "petition flow", dispatcher, bot, factory,
            signers=signers, concurrency=concurrency, first_user_id=first_user_id,
        )  # fmt: skip
        if profiler is not None:
            profiler.disable()
        first_user_id += signers
        paced = await run_phase(
            f"petition flow, paced ({args.think_ms:g} ms)", dispatcher, bot, factory,
            signers=signers, concurrency=args.paced_concurrency, first_user_id=first_user_id,
            think=args.think_ms / 1000,
        )  # fmt: skip
        first_user_id += signers
        if args.stats_every:
            probe = await organiser(dispatcher, bot, factory, session, args.stats_every)
            charts = session.calls["SendPhoto"]
            probed = await run_phase(
                f"petition flow, paced, /stats every {args.stats_every:g} s", dispatcher, bot,
                factory, signers=signers, concurrency=args.paced_concurrency,
                first_user_id=first_user_id, think=args.think_ms / 1000, probe=probe,
            )  # fmt: skip
            first_user_id += signers
            stats = probe.phase
            inside, outside = probed.split(probe.windows)
            problems += check_stats(probe, session.calls["SendPhoto"] - charts)
        async with app.conversation.sessions() as db:
            total = await db.scalar(select(func.count()).select_from(Signature)) or 0
            counter = await db.scalar(select(CounterRow.value).where(CounterRow.name == SIGNERS))
            kept = await db.scalar(select(CounterRow.value).where(CounterRow.name == COUNTED))
            counted = await db.scalar(_COUNT_COUNTED)
            if kept is not None and kept != counted:
                problems.append(f"the counter of signatures counted says {kept}, not {counted}")
    finally:
        await bot.session.close()
        await app.close()
    signed = first_user_id - SIGNER_FIRST_ID
    problems += check_petition(
        args.preload + signed, total, session, range(SIGNER_FIRST_ID, first_user_id)
    )
    if counter != args.preload + signed:
        problems.append(f"the signer counter is at {counter}, expected {args.preload + signed}")
    if profiler is not None:
        print_profile(profiler)
    return Outcome(
        where, preload_seconds, echo, petition, paced, probed, stats, inside, outside,
        session.calls, total, rss_after_echo, problems,
    )  # fmt: skip


async def organiser(
    dispatcher: Dispatcher, bot: Bot, factory: UpdateFactory, session: BenchSession, every: float
) -> Probe:
    """The organiser, in English, with one /stats already sent (the first one loads the
    chart's fonts, once per process): ready to probe."""
    user = User(id=ADMIN_ID, is_bot=False, first_name="Organiser")
    for step in (("text", "/start"), ("button", "l:en")):
        await dispatcher.feed_update(bot, factory.make(user, step))
    probe = Probe(user, every, session, Phase(f"/stats (organiser, every {every:g} s)"))
    await probe.ask(dispatcher, bot, factory)
    probe.windows.clear()
    return probe


def check_stats(probe: Probe, charts: int) -> list[str]:
    """Every /stats got its chart (the organiser is taken for an admin)."""
    asked = probe.phase.updates + probe.unanswered
    if not asked:
        return ["no /stats was sent during the paced run (shorter than --stats-every?)"]
    if probe.unanswered or charts != asked:
        return [
            f"{charts} charts sent for {asked} /stats ({probe.unanswered} not within "
            f"{STATS_TIMEOUT:g} s): is the organiser an admin?"
        ]
    return []


def report(args: argparse.Namespace, outcome: Outcome) -> None:
    """The table and the targets, to stdout."""
    preloaded = f"{args.preload:,} signatures preloaded" if args.preload else "empty"
    print(f"{args.signers} signers, {args.concurrency} at once, {outcome.where} ({preloaded})")
    if args.preload:
        rate = args.preload / outcome.preload_seconds if outcome.preload_seconds else 0
        print(f"preload: {outcome.preload_seconds:.1f} s ({rate:,.0f} signatures/s)")
    if args.profile:
        print("(profiled: cProfile slows the saturated petition phase down)")
    print()
    phases = [outcome.echo, outcome.petition, outcome.paced]
    phases += [phase for phase in (outcome.probed, outcome.stats) if phase is not None]
    print_table(phases)
    print()
    calls = ", ".join(f"{name} {count}" for name, count in sorted(outcome.calls.items()))
    print(f"Bot API calls in the petition flow: {calls}")
    print(f"signatures in the database: {outcome.total}")
    print(
        f"peak RSS: {peak_rss_mib():.1f} MiB "
        f"(after the echo phase: {outcome.rss_after_echo:.1f} MiB)"
    )
    petition, paced = outcome.petition, outcome.paced
    p99 = paced.percentile_ms(0.99)
    print(
        f"throughput target (>= {TARGET_RATE:.0f} upd/s, 200 signers with no pauses): "
        f"{'PASS' if petition.rate >= TARGET_RATE else 'FAIL'} ({petition.rate:.0f} upd/s)"
    )
    print(
        f"latency target (p99 < {TARGET_P99_MS:.0f} ms, 200 signers pausing "
        f"{args.think_ms:g} ms on average): {'PASS' if p99 < TARGET_P99_MS else 'FAIL'} "
        f"(p99 {p99:.1f} ms at {paced.rate:.0f} upd/s)"
    )
    if outcome.probed is not None and outcome.stats is not None:
        moved = outcome.probed.percentile_ms(0.99) - p99
        print(
            f"/stats every {args.stats_every:g} s ({outcome.stats.updates} sent, p50 "
            f"{outcome.stats.percentile_ms(0.5):.0f} ms, max {outcome.stats.percentile_ms(1):.0f}"
            f" ms) moves the signers' p99 by {moved:+.1f} ms "
            f"({p99:.1f} -> {outcome.probed.percentile_ms(0.99):.1f} ms)"
        )
    if outcome.inside is not None and outcome.outside is not None:
        print(
            f"in that run, the signers' p99 while a /stats was in hand: "
            f"{outcome.inside.percentile_ms(0.99):.1f} ms ({outcome.inside.updates} updates); "
            f"otherwise {outcome.outside.percentile_ms(0.99):.1f} ms "
            f"({outcome.outside.updates} updates)"
        )
    for problem in outcome.problems:
        print(f"FAILED: {problem}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.signing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--signers", type=int, default=2000, help="simulated signers (2000)")
    parser.add_argument(
        "--concurrency", type=int, default=200, help="signers at once, saturated (200)"
    )
    parser.add_argument(
        "--paced-concurrency", type=int, default=None,
        help="signers at once in the paced runs (default: --concurrency); below what the "
        "machine handles, so that their p99 is latency, not queueing",
    )  # fmt: skip
    parser.add_argument(
        "--engine", choices=("sqlite", "postgresql"), default="sqlite",
        help="the database engine (sqlite)",
    )  # fmt: skip
    parser.add_argument(
        "--db", type=Path, help="SQLite file to create (default: a temporary one, removed after)"
    )
    parser.add_argument(
        "--pg-url", default=PG_URL,
        help=f"PostgreSQL database, dropped and made again; its name must start with "
        f"'bench' ({PG_URL})",
    )  # fmt: skip
    parser.add_argument(
        "--preload", type=int, default=0, help="signatures in the database before the run (0)"
    )
    parser.add_argument(
        "--stats-every", type=float, default=0.0,
        help="seconds between an organiser's /stats in a second paced run (0: no such run)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the saturated petition phase (stderr)"
    )
    parser.add_argument(
        "--think-ms", type=float, default=500.0,
        help="mean pause before each step in the paced run (default 500 ms)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the figures there, as JSON")
    args = parser.parse_args(argv)
    if args.paced_concurrency is None:
        args.paced_concurrency = args.concurrency
    if args.signers < 1 or args.concurrency < 1 or args.paced_concurrency < 1:
        parser.error("--signers and the concurrencies must be at least 1")
    if args.preload < 0 or args.stats_every < 0:
        parser.error("--preload and --stats-every cannot be negative")
    if args.engine == "postgresql":
        name = make_url(args.pg_url).database or ""
        # It is dropped first: never someone else's database.
        if not re.fullmatch(r"bench\w*", name):
            parser.error(f"--pg-url names the database {name!r}; its name must start with 'bench'")
        if args.db is not None:
            parser.error("--db is for SQLite")
    if args.db is not None and args.db.exists():
        # Signers of an earlier run would see "already signed" and fail the checks.
        parser.error(f"--db {args.db} exists; give a new file")
    return args


async def main(argv: list[str] | None = None) -> int:
    """One configuration: the database made, filled, measured; the figures printed."""
    args = parse_args(argv)
    # Log records would be timed as part of every update.
    logging.basicConfig(level=logging.WARNING)
    outcome = await bench(args)
    report(args, outcome)
    if args.json is not None:
        args.json.write_text(json.dumps(outcome.summary(args), indent=1))
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
