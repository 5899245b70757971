"""Simulated signers through the Telegram adapter and the real dispatcher, timed.

Every signer walks the whole flow (language, consent, name, country, region, birthplace,
contact, news, review) as Telegram updates fed to the production dispatcher, on a SQLite
file. The same updates also go through an echo bot on a bare dispatcher, so the figures
can be read against what aiogram itself costs.

Two runs of the petition flow:
- saturated: each signer sends the next update the moment the answer arrives. This gives
  the most updates per second the bot can handle; latency there is only queueing
  (200 signers always waiting, so mean latency = 200 / throughput).
- paced: each signer pauses before every step (exponentially distributed, mean --think-ms,
  500 ms by default: quicker than people tap, so the load is still heavy). This is the run
  the latency target is read from. `--think-ms 185` makes 200 signers offer about 1,000
  updates a second, a stress test of latency near the bot's limit.

    python -m bench.signing --signers 2000 --concurrency 200 [--think-ms 500] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
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
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    GetMe,
    SendMessage,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from sqlalchemy import func, select

from bot.app import build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from db.models import Signature
from db.protect import new_key

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:" + "A" * 35
BOT_USER = User(id=123456, is_bot=True, first_name="bench", username="petition_bench_bot")
TARGET_RATE = 1000.0  # updates per second
TARGET_P99_MS = 50.0
SEED = 20140309  # fixed, so two runs send the same answers and stay comparable

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
) -> Phase:
    """Every signer's updates in order, `concurrency` signers at a time, pausing `think` s."""
    phase = Phase(name)
    pauses = random.Random(SEED)
    pending: Iterator[int] = iter(range(signers))
    latencies = phase.latencies
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
                latencies.append(clock() - started)

    started = clock()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, signers)):
            group.create_task(worker())
    phase.wall = clock() - started
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


async def bench(args: argparse.Namespace, db_path: Path) -> int:
    """Both phases, the table, the checks; the exit code."""
    # With contact keys, as a campaign should run: the contact step and its encryption count.
    settings = Settings(
        telegram_bot_token=TOKEN,
        database_url=f"sqlite+aiosqlite:///{db_path}",
        data_key=new_key(),
        hash_key="bench-" * 8,
    )
    factory = UpdateFactory()
    problems: list[str] = []
    signers, concurrency = args.signers, args.concurrency
    buttons = sum(kind == "button" for i in range(signers) for kind, _ in signer_script(i))

    echo_session = BenchSession()
    echo_bot = build_bot(settings, session=echo_session)
    echo = await run_phase(
        "echo bot (ceiling)", build_echo_dispatcher(), echo_bot, factory,
        signers=signers, concurrency=concurrency, first_user_id=1_000_000,
    )  # fmt: skip
    problems += check_echo(echo, echo_session, buttons)
    await echo_bot.session.close()
    rss_after_echo = peak_rss_mib()

    app = await build_app(settings)
    session = BenchSession()
    bot = build_bot(settings, session=session)
    profiler = cProfile.Profile() if args.profile else None
    first_user_id = 5_000_000
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
        paced = await run_phase(
            f"petition flow, paced ({args.think_ms:g} ms)", dispatcher, bot, factory,
            signers=signers, concurrency=concurrency, first_user_id=first_user_id + signers,
            think=args.think_ms / 1000,
        )  # fmt: skip
        async with app.conversation.sessions() as db:
            total = await db.scalar(select(func.count()).select_from(Signature)) or 0
    finally:
        await bot.session.close()
        await app.close()
    problems += check_petition(
        2 * signers, total, session, range(first_user_id, first_user_id + 2 * signers)
    )

    print(f"{signers} signers, {concurrency} at once, SQLite file {db_path}")
    if profiler is not None:
        print("(profiled: cProfile slows the petition phase down)")
    print()
    print_table([echo, petition, paced])
    print()
    calls = ", ".join(f"{name} {count}" for name, count in sorted(session.calls.items()))
    print(f"Bot API calls in the petition flow: {calls}")
    print(f"signatures in the database: {total}")
    print(f"peak RSS: {peak_rss_mib():.1f} MiB (after the echo phase: {rss_after_echo:.1f} MiB)")
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
    if profiler is not None:
        print_profile(profiler)
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.signing", description=__doc__)
    parser.add_argument("--signers", type=int, default=2000, help="simulated signers (2000)")
    parser.add_argument("--concurrency", type=int, default=200, help="signers at once (200)")
    parser.add_argument(
        "--db", type=Path, help="SQLite file to create (default: a temporary one, removed after)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the petition phase; top 25 to stderr"
    )
    parser.add_argument(
        "--think-ms", type=float, default=500.0,
        help="mean pause before each step in the paced run (default 500 ms)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.signers < 1 or args.concurrency < 1:
        parser.error("--signers and --concurrency must be at least 1")
    if args.db is not None and args.db.exists():
        # Signers of an earlier run would see "already signed" and fail the checks.
        parser.error(f"--db {args.db} exists; give a new file")
    return args


async def main(argv: list[str] | None = None) -> int:
    """Run the benchmark in a temporary directory unless --db names a file."""
    args = parse_args(argv)
    # Log records would be timed as part of every update.
    logging.basicConfig(level=logging.WARNING)
    if args.db is not None:
        return await bench(args, args.db.resolve())
    with tempfile.TemporaryDirectory(prefix="petitionbot-bench-") as tmpdir:
        return await bench(args, Path(tmpdir) / "bench.sqlite3")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
