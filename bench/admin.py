"""Organiser tools on a large campaign: /stats, CSV and XLSX exports of 100,000 signatures.

    python -m bench.admin [--signatures 100000] [--db PATH]

A fresh SQLite file is seeded (bulk inserts) with signatures spread as a diaspora campaign
would be over a year: countries, states and provinces weighted, growth toward a New Year
peak, half with a sealed phone number or e-mail, some from paper, a few set aside, plus
people who started and stopped. Then each phase runs in a process of its own, so each has
its own peak memory (the RSS high-water mark, `getrusage`):

- /stats through the conversation, as an admin on the console channel (with its chart);
- `petitionbot export` to CSV, to XLSX and to CSV with decrypted contacts (the CLI's own
  code path: settings, schema check, streamed rows, audit, rename), to a temporary file;
- /export xlsx in the chat: the answer comes at once and the file once made, in the
  background; meanwhile another person's /help is timed, to show the bot keeps answering.

Targets on the 2-core machine: /stats under 1 s, the CSV export under 3 s, memory under
300 MB in every phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from db.protect import ContactCipher, new_key

ADMIN = 424242
HASH_KEY = "bench-admin-hash-key-" * 2
SEED = 20270414
TARGETS = {"stats": 1.0, "csv": 3.0}
MEMORY_TARGET_MB = 300.0

COUNTRIES = {"US": 30, "KH": 20, "FR": 10, "AU": 9, "CA": 6, "KR": 6, "TH": 6, "NZ": 3,
             "JP": 3, "MY": 3, "GB": 2, "DE": 2}  # fmt: skip
REGIONS = {
    "US": {"California": 40, "Massachusetts": 12, "Washington": 10, "Texas": 8,
           "Minnesota": 6, "Pennsylvania": 6, "Rhode Island": 4, "Oregon": 4,
           "New York": 4, "Georgia": 3, "Virginia": 3},
    "KH": {"Phnom Penh": 40, "Siem Reap": 15, "Battambang": 15, "Kandal": 15,
           "Kampong Cham": 15},
    "FR": {"Île-de-France": 70, "Auvergne-Rhône-Alpes": 15, "Occitanie": 15},
    "AU": {"Victoria": 45, "New South Wales": 35, "Queensland": 10, "South Australia": 10},
    "CA": {"Ontario": 40, "Québec": 35, "British Columbia": 15, "Alberta": 10},
    "NZ": {"Auckland": 60, "Wellington": 40},
    "KR": {"Seoul": 40, "Gyeonggi-do": 60},
}  # fmt: skip
PROVINCES = {"12": 18, "02": 9, "03": 9, "21": 8, "08": 8, "14": 7, "17": 7, "05": 5,
             "06": 5, "20": 4, "04": 4, "07": 4, "15": 3, "01": 3, "25": 2, "18": 2,
             "10": 1, "09": 1, "13": 1, "19": 1, "22": 1, "23": 1, "24": 1, "11": 1,
             "16": 1, "abroad": 10}  # fmt: skip
FAMILY = ["សុខ", "ចាន់", "ហេង", "លី", "កែវ", "ម៉ម", "ស៊ុន", "ពៅ", "យឹម", "ខៀវ", "ឈឹម", "ទេព"]
GIVEN = ["សុភា", "ដារ៉ា", "សំណាង", "វណ្ណៈ", "បុប្ផា", "សុខា", "ស្រីនាង", "វិចិត្រ", "រតនា", "ចន្ទា"]
FAMILY_LATIN = ["Sok", "Chan", "Heng", "Ly", "Keo", "Mom", "Sun", "Pov", "Yim", "Khieu", "Chhim"]
GIVEN_LATIN = ["Sophea", "Dara", "Samnang", "Vannak", "Bopha", "Sokha", "Sreyneang",
               "Vichet", "Ratana", "Chanthou", "Marie-Claire", "Kevin"]  # fmt: skip
STOPPED_AT = ["consent", "name", "country", "region", "birthplace", "contact", "updates"]


def _pick(weights: dict[str, int], rng: random.Random) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _day_weights(today: date) -> tuple[list[date], list[float]]:
    """A year of days: slow start, growth, a peak around Khmer New Year, a push at the end."""
    days = [today - timedelta(days=offset) for offset in range(365)]
    weights = []
    for day in days:
        age = (today - day).days
        weight = 1.0 + 3.0 * (365 - age) / 365  # growth toward today
        new_year = abs((day - date(day.year, 4, 14)).days)
        if new_year <= 5:
            weight *= 4.0  # the New Year gatherings
        weights.append(weight)
    return days, weights


def seed(url: str, signatures: int) -> dict[str, Any]:
    """Fill an empty database; returns what was made."""
    return asyncio.run(_seed(url, signatures))


async def _seed(url: str, total: int) -> dict[str, Any]:
    from sqlalchemy import Table, insert

    from db.migrate import upgrade
    from db.models import Signature, User, VolunteerCode
    from db.session import create_engine

    rng = random.Random(SEED)
    cipher = ContactCipher([os.environ["DATA_KEY"]], HASH_KEY)
    engine = create_engine(url)
    await upgrade(engine)
    users: Table = User.__table__  # type: ignore[assignment]
    table: Table = Signature.__table__  # type: ignore[assignment]
    codes_table: Table = VolunteerCode.__table__  # type: ignore[assignment]
    now = datetime.now(UTC)
    days, weights = _day_weights(now.date())
    volunteer_codes = [f"vol{index:03d}" for index in range(20)]
    personal_codes = [f"p{index:09d}" for index in range(300)]  # signers who share a lot
    referrers = volunteer_codes + personal_codes
    referrer_weights = [1.0 / (rank + 1) for rank in range(len(referrers))]
    sealed = 0
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            insert(codes_table),
            [{"code": code, "name": f"Event {code}", "created_by": "bench", "created_at": now}
             for code in volunteer_codes],
        )  # fmt: skip
        batch_users: list[dict[str, Any]] = []
        batch_signatures: list[dict[str, Any]] = []
        stopped = total // 4  # people who started and did not sign
        for index in range(total + stopped):
            signs = index < total
            paper = signs and rng.random() < 0.05
            channel = "paper" if paper else rng.choices(["telegram", "messenger"], [80, 20])[0]
            at = datetime.combine(
                rng.choices(days, weights)[0], datetime.min.time(), tzinfo=UTC
            ) + timedelta(seconds=rng.randrange(86_400))
            language = "km" if rng.random() < 0.65 else "en"
            user_id = None
            if not paper:
                user_id = index + 1
                batch_users.append({
                    "id": user_id, "channel": channel, "external_id": str(10_000_000 + index),
                    "language": language, "step": "idle" if signs else rng.choice(STOPPED_AT),
                    "draft": {}, "referred_by": None, "share_code": f"s{index:09d}",
                    "updates_opt_in": False, "recent_updates": [], "blocked": False,
                    "created_at": at, "last_seen_at": at,
                    "agreed_at": at if signs or rng.random() < 0.6 else None,
                    "signed": signs,
                })  # fmt: skip
            if signs:
                country = _pick(COUNTRIES, rng)
                regions = REGIONS.get(country)
                region = _pick(regions, rng) if regions and rng.random() < 0.8 else None
                if rng.random() < 0.6:
                    name = f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}"
                else:
                    name = f"{rng.choice(FAMILY_LATIN)} {rng.choice(GIVEN_LATIN)}"
                phone = email = None
                if rng.random() < 0.5:
                    sealed += 1
                    if rng.random() < 0.8:
                        phone = f"+855{rng.randrange(10_000_000, 99_999_999)}"
                    else:
                        email = f"signer{index}@example.org"
                referrer = (
                    rng.choices(referrers, referrer_weights)[0] if rng.random() < 0.4 else None
                )
                batch_signatures.append({
                    "user_id": user_id, "full_name": name, "country": country,
                    "region": region, "birth_province": _pick(PROVINCES, rng),
                    "phone": cipher.seal(phone) if phone else None,
                    "email": cipher.seal(email) if email else None,
                    "contact_hash": cipher.fingerprint(phone or email or "")
                    if (phone or email) else None,
                    "updates_opt_in": rng.random() < 0.55, "language": language,
                    "channel": channel, "source": "import" if paper else "chat",
                    "referrer_code": referrer, "created_at": at, "updated_at": at,
                    "invalidated_at": now if rng.random() < 0.005 else None,
                })  # fmt: skip
            if len(batch_users) >= 5_000 or len(batch_signatures) >= 5_000:
                await _flush(connection, users, table, batch_users, batch_signatures)
        await _flush(connection, users, table, batch_users, batch_signatures)
    await engine.dispose()
    return {"seconds": time.perf_counter() - started, "sealed": sealed}


async def _flush(
    connection: Any,
    users: Any,
    table: Any,
    batch_users: list[dict[str, Any]],
    batch_signatures: list[dict[str, Any]],
) -> None:
    from sqlalchemy import insert

    if batch_users:
        await connection.execute(insert(users), batch_users)
        batch_users.clear()
    if batch_signatures:
        await connection.execute(insert(table), batch_signatures)
        batch_signatures.clear()


# ---------------------------------------------------------------- phases (one per process)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _settings(url: str) -> Any:
    from bot.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        admin_ids=str(ADMIN),
        data_key=os.environ["DATA_KEY"],
        hash_key=HASH_KEY,
        log_level="WARNING",
    )


async def _as_admin(url: str, texts: list[str], timed: str, runs: int) -> dict[str, Any]:
    """Say `texts` as the admin on the console (untimed), then time `timed` `runs` times."""
    from bot.app import build_app
    from bot.flood import FloodGuard
    from handlers.base import Incoming

    app = await build_app(_settings(url))
    app.conversation.flood = FloodGuard(limit=1_000_000)

    async def say(text: str) -> list[Any]:
        return await app.conversation.process(
            channel="console", user_id=str(ADMIN), update_key=None,
            incoming=Incoming.message(text), share_link=lambda code: None,
        )  # fmt: skip

    try:
        for text in texts:
            await say(text)
        times, attachment = [], None
        for _ in range(runs):
            started = time.perf_counter()
            replies = await say(timed)
            times.append(time.perf_counter() - started)
            attachment = next((r.attachment for r in replies if r.attachment), attachment)
    finally:
        await app.close()
    return {
        "seconds": times[0],
        "best": min(times),
        "file": f"{attachment.filename} {len(attachment.data or b''):,} bytes"
        if attachment else "no file",
    }  # fmt: skip


def phase_stats(url: str) -> dict[str, Any]:
    """/stats as an admin, three times (the first is the one reported)."""
    from handlers import admin

    if "stats" not in admin.COMMANDS:
        return {"available": False}
    return asyncio.run(_as_admin(url, ["/start", "English"], "/stats", runs=3))


def phase_chat_export(url: str) -> dict[str, Any]:
    """/export xlsx in the chat: the answer, the file that follows, and meanwhile how fast
    the bot answers someone else (a /help every 50 ms from another person)."""
    return asyncio.run(_chat_export(url))


async def _chat_export(url: str) -> dict[str, Any]:
    from bot.app import build_app
    from bot.flood import FloodGuard
    from handlers.base import Incoming, Reply

    app = await build_app(_settings(url))
    app.conversation.flood = FloodGuard(limit=1_000_000)
    arrived = asyncio.Event()
    files: list[Any] = []

    async def deliver(replies: list[Reply]) -> None:
        files.extend(reply.attachment for reply in replies if reply.attachment)
        if files:
            arrived.set()

    async def say(user: str, text: str, **kwargs: Any) -> list[Any]:
        return await app.conversation.process(
            channel="console", user_id=user, update_key=None,
            incoming=Incoming.message(text), share_link=lambda code: None, **kwargs,
        )  # fmt: skip

    try:
        for user in (str(ADMIN), "4242"):
            await say(user, "/start")
            await say(user, "English")
        started = time.perf_counter()
        await say(str(ADMIN), "/export xlsx", deliver=deliver)
        answered = time.perf_counter() - started
        others: list[float] = []
        while not arrived.is_set():
            asked = time.perf_counter()
            await say("4242", "/help")
            others.append((time.perf_counter() - asked) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 0.05)
        seconds = time.perf_counter() - started
    finally:
        await app.close()
    others.sort()
    return {
        "seconds": seconds,
        "answered": answered,
        "file": f"{files[0].filename} {len(files[0].data or b''):,} bytes" if files else "no file",
        "others": f"someone else's /help meanwhile: p50 {others[len(others) // 2]:.1f} ms, "
        f"max {others[-1]:.1f} ms over {len(others)}"
        if others
        else "",
    }


def phase_cli_export(url: str, kind: str, contacts: bool, folder: Path) -> dict[str, Any]:
    """`petitionbot export` as from a shell, timing the whole command and its row writing."""
    from bot.cli import main
    from handlers.admin import exports

    writing: list[float] = []
    real = exports.write_export

    async def timed(*args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        count = await real(*args, **kwargs)
        writing.append(time.perf_counter() - started)
        return count

    exports.write_export = timed  # type: ignore[assignment]
    out = folder / f"export.{kind}"
    os.environ.update(DATABASE_URL=url, HASH_KEY=HASH_KEY, LOG_LEVEL="WARNING")
    argv = ["export", "--format", kind, "--out", str(out)]
    started = time.perf_counter()
    code = main([*argv, "--with-contacts"] if contacts else argv)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"export failed with {code}")
    size = out.stat().st_size
    out.unlink()
    return {"seconds": seconds, "writing": writing[0], "file": f"{size:,} bytes"}


def run_phase(name: str, url: str, folder: Path) -> dict[str, Any]:
    """One phase in this process; its result with this process's peak memory."""
    if name == "seed":
        result = seed(url, int(os.environ["BENCH_SIGNATURES"]))
    elif name == "stats":
        result = phase_stats(url)
    elif name == "chat-xlsx":
        result = phase_chat_export(url)
    else:
        kind, _, contacts = name.partition("+")
        result = phase_cli_export(url, kind, contacts == "contacts", folder)
    return {**result, "peak_mb": _peak_mb()}


def _in_child(name: str, url: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603  our own interpreter and module
        [sys.executable, "-m", "bench.admin", "--phase", name, "--db", url,
         "--folder", str(folder)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Seed, run every phase in its own process, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__)
    parser.add_argument("--signatures", type=int, default=100_000)
    parser.add_argument("--db", help="a SQLite file to create (default: a temporary one)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.db, Path(args.folder))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        folder = Path(tmp)
        path = Path(args.db) if args.db else folder / "admin.sqlite3"
        if path.exists():
            raise SystemExit(f"{path} exists; the benchmark wants a fresh file")
        url = f"sqlite+aiosqlite:///{path}"
        env = {**os.environ, "DATA_KEY": new_key(), "HASH_KEY": HASH_KEY,
               "BENCH_SIGNATURES": str(args.signatures), "TELEGRAM_BOT_TOKEN": "",
               "ADMIN_IDS": str(ADMIN), "LOG_LEVEL": "WARNING"}  # fmt: skip
        print(f"Seeding {args.signatures:,} signatures into {path} ...", flush=True)
        seeded = _in_child("seed", url, folder, env)
        print(
            f"  seeded in {seeded['seconds']:.1f} s ({seeded['sealed']:,} with a sealed "
            f"contact), {path.stat().st_size / 1e6:.0f} MB on disk"
        )
        rows = [
            ("/stats (console, admin, with chart)", "stats"),
            ("export CSV (petitionbot export)", "csv"),
            ("export XLSX (petitionbot export)", "xlsx"),
            ("export CSV with contacts (decrypted)", "csv+contacts"),
            ("/export xlsx in the chat, until the file", "chat-xlsx"),
        ]
        print()
        print(f"{'phase':<40} {'time':>9} {'rows part':>10} {'peak RSS':>10}  notes")
        failures = []
        for label, name in rows:
            result = _in_child(name, url, folder, env)
            if result.get("available") is False:
                print(f"{label:<40} {'not available':>9}")
                continue
            seconds, peak = result["seconds"], result["peak_mb"]
            part = f"{result['writing']:.2f} s" if "writing" in result else ""
            notes = result.get("file", "")
            if "best" in result:
                notes = f"best of 3 {result['best']:.2f} s; {notes}"
            if "answered" in result:
                notes = f"answered in {result['answered']:.2f} s, file after; {notes}; "
                notes += result["others"]
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                verdict = "ok" if seconds < target else f"over {target:.0f} s"
                if seconds >= target:
                    failures.append(label)
            if peak >= MEMORY_TARGET_MB:
                failures.append(f"{label} memory")
            print(f"{label:<40} {seconds:>7.2f} s {part:>10} {peak:>7.0f} MB  {verdict} {notes}")
        print()
        print(
            f"Targets: /stats < {TARGETS['stats']:.0f} s, CSV of {args.signatures:,} < "
            f"{TARGETS['csv']:.0f} s, memory < {MEMORY_TARGET_MB:.0f} MB per phase. "
            + ("All met." if not failures else f"Missed: {', '.join(failures)}.")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
