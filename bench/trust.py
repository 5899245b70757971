"""Figures for trust: hostile input, crashes, a flood, erasure.

    python -m bench.trust [--updates 12000] [--kills 50] [--signers 30]

- hostile: random updates (Khmer, emoji, right-to-left, control and zero-width characters,
  4,096+ character texts, other people's contacts, old and forged buttons, stickers) through
  the real dispatcher; an unhandled error is a failed update or the bot's "sorry" answer.
- kills: the real bot process (`python -m bot run`, long polling against a fake Bot API on
  loopback) is killed with SIGKILL at random moments while signers sign, then restarted;
  afterwards every signature is there once.
- flood: one person sends 1,000 updates a second while 50 others sign; their latency.
- erasure: how long /delete takes for a signer.
- leaks: a scripted session in which people type their phone and e-mail in every free-text
  place (a question, the place where they live, the contact step), then half of them /delete
  and the rest are anonymised; then the database file, its write-ahead log, the log output
  (at DEBUG) and the files folder are searched byte by byte for every name, phone, e-mail,
  platform id and share code used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiogram.methods import SendMessage

from bot.app import build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from bot.flood import FloodGuard
from db.protect import new_key
from tests.botapi_server import FakeBotAPI
from tests.telegram_fakes import FakeUser, RecordingSession
from tests.test_crash import all_confirmed, queue_flows, start_bot
from tests.test_telegram_http import Person

TOKEN = "123456:" + "A" * 35
AWKWARD = ["\u200b", "\u200d", "\u202e", "\u0000", "\u0007", "\n", "\ufeff", "😀", "👍🏽",
           "ש", "ع", "០", "៩", "/", "@", "<b>", "</i>", "&amp;", "https://t.me/x", "សុខ",
           "ភ្នំពេញ"]  # fmt: skip
PAYLOADS = ["l:km", "l:en", "go:sign", "go:faq", "go:lang", "go:mine", "c:y", "c:n", "co:US",
            "co:other", "co:ZZ", "cc:FR", "cc:retry", "r:skip", "b:17", "b:99", "b:abroad",
            "ct:skip", "u:y", "u:n", "rv:ok", "rv:edit", "rv:cancel", "e:name", "e:back",
            "s:edit", "s:withdraw", "w:y", "w:n", "d:y", "d:n", "n:on", "f:withdraw", "f:nope",
            "iv:y", "zz", ""]  # fmt: skip
COMMANDS = ["/start", "/sign", "/mysignature", "/language", "/help", "/cancel", "/faq",
            "/mydata", "/delete", "/stop", "/privacy", "/questions", "/block 1",
            "/nonsense"]  # fmt: skip


def settings(folder: Path, name: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=TOKEN,
        database_url=f"sqlite+aiosqlite:///{folder / name}",
        data_key=new_key(),
        hash_key="trust-" * 8,
    )


def random_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return "".join(rng.choice(AWKWARD) for _ in range(rng.randint(700, 1500)))
    if roll < 0.25:
        return rng.choice(COMMANDS) + " " + "".join(rng.choice(AWKWARD) for _ in range(3))
    pieces = [rng.choice(AWKWARD) if rng.random() < 0.5 else chr(rng.randint(32, 0x2FFF))
              for _ in range(rng.randint(0, 40))]  # fmt: skip
    return "".join(pieces)


async def hostile(folder: Path, updates: int) -> tuple[int, int]:
    """(updates sent, unhandled errors)."""
    app = await build_app(settings(folder, "hostile.sqlite3"))
    app.conversation.flood = FloodGuard(limit=10**9)  # measure handling, not the limit
    session = RecordingSession()
    bot = build_bot(app.settings, session=session)
    dispatcher = build_dispatcher(app)
    apology = "Sorry, something went wrong on our side. Please try again."
    sorry = {app.translations.get(language).gettext(apology) for language in ("km", "en")}
    rng = random.Random(20140309)
    errors = sent = 0
    people = [FakeUser(dispatcher, bot, session, 900_000 + n) for n in range(200)]
    try:
        while sent < updates:
            someone = rng.choice(people)
            roll = rng.random()
            try:
                if roll < 0.45:
                    seen = await someone.send(random_text(rng) or ".")
                elif roll < 0.85:
                    payload = rng.choice(PAYLOADS) if rng.random() < 0.8 else random_text(rng)[:64]
                    seen = await someone.press(payload)
                elif roll < 0.95:
                    seen = await someone.share_contact(
                        rng.choice(["85512345678", "+12065550100", "1"]), own=rng.random() < 0.5
                    )
                else:
                    seen = await someone.sticker()
            except Exception:
                errors += 1
                seen = []
            errors += sum(1 for message in seen if message.text in sorry)
            sent += 1
    finally:
        await bot.session.close()
        await app.close()
    return sent, errors


async def kills(folder: Path, times: int, signers: int) -> tuple[int, int, int]:
    """(kills survived, signatures lost, signatures doubled)."""
    rng = random.Random(9032014)
    survived = lost = doubled = 0
    async with FakeBotAPI(long_poll_cap=0.2) as server:
        people = [Person(server, 7000 + number) for number in range(signers)]
        last_id = queue_flows(server, people)
        while survived < times:
            process = await start_bot(server, folder)
            await asyncio.sleep(rng.uniform(2.0, 4.5))
            if process.returncode is None:
                process.kill()
                await process.wait()
                survived += 1
        process = await start_bot(server, folder)
        for _ in range(600):
            if all_confirmed(server, last_id):
                break
            await asyncio.sleep(0.1)
        process.terminate()
        await process.wait()
    with sqlite3.connect(folder / "crash.sqlite3") as connection:
        rows = connection.execute("SELECT user_id, count(*) FROM signatures GROUP BY user_id")
        counts = dict(rows.fetchall())
    lost = signers - len(counts)
    doubled = sum(count - 1 for count in counts.values())
    return survived, lost, doubled


async def flood(folder: Path) -> tuple[int, int, float, float]:
    """(flood updates sent, flood updates answered, others' p50 ms, others' p99 ms)."""
    app = await build_app(settings(folder, "flood.sqlite3"))  # the production limit
    session = RecordingSession()
    bot = build_bot(app.settings, session=session)
    dispatcher = build_dispatcher(app)
    flooder = FakeUser(dispatcher, bot, session, 1)
    latencies: list[float] = []
    flood_sent = 0

    async def flooding() -> None:
        nonlocal flood_sent
        started = time.perf_counter()
        while time.perf_counter() - started < 3.0:
            await asyncio.gather(*(flooder.send("/help") for _ in range(10)))
            flood_sent += 10
            await asyncio.sleep(0.01)  # about 1,000 updates a second

    async def signer(user_id: int) -> None:
        someone = FakeUser(dispatcher, bot, session, user_id)
        steps = [("text", "/start"), ("button", "l:en"), ("button", "go:sign"),
                 ("button", "c:y"), ("text", "Sok Dara"), ("button", "co:US"),
                 ("button", "r:skip"), ("button", "b:12"), ("button", "ct:skip"),
                 ("button", "u:n"), ("button", "rv:ok")]  # fmt: skip
        for kind, value in steps:
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            if kind == "text":
                await someone.send(value)
            else:
                await someone.press(value)
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(flooding(), *(signer(10 + n) for n in range(50)))
    finally:
        await bot.session.close()
        await app.close()
    answered = sum(
        1 for call in session.calls if isinstance(call, SendMessage) and int(call.chat_id) == 1
    )
    ordered = sorted(latencies)
    return (flood_sent, answered, statistics.median(ordered) * 1000,
            ordered[int(len(ordered) * 0.99)] * 1000)  # fmt: skip


async def erasure(folder: Path) -> float:
    """Milliseconds for a signer's /delete confirmation."""
    app = await build_app(settings(folder, "erase.sqlite3"))
    session = RecordingSession()
    bot = build_bot(app.settings, session=session)
    someone = FakeUser(build_dispatcher(app), bot, session, 5)
    try:
        steps = [("text", "/start"), ("button", "l:en"), ("button", "go:sign"),
                 ("button", "c:y"), ("text", "Sok Dara"), ("button", "co:US"),
                 ("button", "r:skip"), ("button", "b:12"), ("text", "a@b.org"),
                 ("button", "u:n"), ("button", "rv:ok"), ("text", "/delete")]  # fmt: skip
        for kind, value in steps:
            await (someone.send(value) if kind == "text" else someone.press(value))
        started = time.perf_counter()
        await someone.press("d:y")
        return (time.perf_counter() - started) * 1000
    finally:
        await bot.session.close()
        await app.close()


async def leaks(folder: Path, people: int = 20) -> tuple[int, int, int]:
    """(identifiers searched for, places searched, hits): the target is 0 hits."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from db import dialect, queries
    from db.models import User

    log_file = folder / "leaks.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level, others = root.level, list(root.handlers)
    for other in others:  # everything goes to the file searched, nothing to the terminal
        root.removeHandler(other)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    files = folder / "leak-files"
    app = await build_app(settings(folder, "leaks.sqlite3").model_copy(update={"files_dir": files}))
    session = RecordingSession()
    bot = build_bot(app.settings, session=session)
    dispatcher = build_dispatcher(app)
    secrets: list[str] = []
    try:
        for number in range(people):
            user_id = 731_000_000 + number
            name = f"Sreymom Leakcheck{chr(97 + number // 26)}{chr(97 + number % 26)}"
            phone = f"+1 562 555 {1000 + number}"
            email = f"sreymom.leak{number:02d}@example.org"
            someone = FakeUser(dispatcher, bot, session, user_id)
            await someone.send("/start")
            await someone.press("l:en")
            await someone.send(f"Please call me about the temple drive on {phone} or {email}")
            await someone.press("go:sign")
            await someone.press("c:y")
            await someone.send(name)
            await someone.press("co:US")
            await someone.send(f"Long Beach, call {phone}")
            await someone.press("b:12")
            await someone.send(email if number % 2 else phone)
            await someone.press("u:y")
            await someone.press("rv:ok")
            secrets += [name, "Leakcheck", email, phone, phone.replace(" ", ""), str(user_id)]
        async with app.conversation.sessions() as db:
            codes = await db.execute(select(User.share_code).where(User.share_code.is_not(None)))
            secrets += [code for code in codes.scalars() if code]
        for number in range(0, people, 2):
            someone = FakeUser(dispatcher, bot, session, 731_000_000 + number)
            await someone.send("/delete")
            await someone.press("d:y")
        async with app.conversation.sessions() as db, db.begin():
            tomorrow = datetime.now(UTC) + timedelta(days=1)
            await queries.anonymise(db, before=tomorrow, apply=True)
        await dialect.forget_deleted(app.conversation.sessions)
    finally:
        await bot.session.close()
        await app.close()
        root.removeHandler(handler)
        handler.close()
        for other in others:
            root.addHandler(other)
        root.setLevel(level)
    places, raw = await asyncio.to_thread(_everything_on_disk, folder, log_file, files)
    hits = sum(raw.count(secret.encode()) for secret in set(secrets))
    return len(set(secrets)), places, hits


def _everything_on_disk(folder: Path, log_file: Path, files: Path) -> tuple[int, bytes]:
    """What a thief of the server's disk reads: the database and its log, the logs, files."""
    places = [*folder.glob("leaks.sqlite3*"), log_file, *files.rglob("*")]
    found = [path.read_bytes() for path in places if path.is_file()]
    return len(found), b"".join(found)


async def main(argv: list[str] | None = None) -> int:
    """Run the five measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m bench.trust", description=__doc__)
    parser.add_argument("--updates", type=int, default=12_000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--signers", type=int, default=30)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        sent, errors = await hostile(folder, args.updates)
        print(f"hostile updates tried: {sent}, unhandled errors: {errors} (target 10,000+ and 0)")
        flood_sent, answered, p50, p99 = await flood(folder)
        print(
            f"flood: {flood_sent} updates from one person in 3 s, {answered} answered; "
            f"50 others signing meanwhile: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target < 100)"
        )
        print(f"/delete for a signer: {await erasure(folder):.1f} ms")
        searched, places, hits = await leaks(folder)
        print(
            f"leak scan: {searched} names, phones, e-mails, platform ids and share codes "
            f"searched in {places} files (database, WAL, log, files): {hits} hits (target 0)"
        )
        survived, lost, doubled = await kills(folder, args.kills, args.signers)
        print(
            f"kills survived: {survived} with {args.signers} signers; signatures lost "
            f"{lost}, doubled {doubled} (target 50+, 0 / 0)"
        )
    return 1 if errors or lost or doubled or hits else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
