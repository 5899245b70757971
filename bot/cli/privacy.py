"""`petitionbot new-key`, `rotate-key` and `anonymise`: the keys that seal contacts, and
what is kept of older signatures."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bot.cli.common import in_transaction
from bot.config import Settings


def add_commands(commands: Any) -> None:
    """Add `new-key`, `rotate-key` and `anonymise`."""
    commands.add_parser("new-key", help="print a fresh random key for DATA_KEY or HASH_KEY")
    commands.add_parser(
        "rotate-key", help="seal every stored contact again with the first key of DATA_KEY"
    )
    anonymise = commands.add_parser(
        "anonymise", help="replace names and contacts of older signatures (counts stay)"
    )
    anonymise.add_argument("--before", required=True, help="signatures made before this day")
    anonymise.add_argument("--apply", action="store_true", help="do it (default: only count)")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of these; None otherwise."""
    if args.command == "new-key":
        from db.protect import new_key

        print(new_key())
        return 0
    if args.command == "rotate-key":
        return asyncio.run(_rotate_key(settings))
    if args.command == "anonymise":
        return asyncio.run(_anonymise(settings, args.before, args.apply))
    return None


async def _rotate_key(settings: Settings) -> int:
    from db.migrate import upgrade
    from db.rotation import Rotation, rotate_contacts
    from db.session import create_engine, create_sessionmaker

    cipher = settings.contact_cipher()
    if cipher is None:
        print("DATA_KEY and HASH_KEY are not set: there is nothing to rotate.", file=sys.stderr)
        return 1

    def progress(done: Rotation) -> None:
        print(
            f"pass {done.passes}, batch {done.batches}: {done.looked_at} looked at, "
            f"{done.resealed} records sealed again so far",
            file=sys.stderr,
            flush=True,
        )

    # One short transaction per batch, not one for everything: the bot goes on meanwhile.
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        done = await rotate_contacts(create_sessionmaker(engine), cipher=cipher, progress=progress)
    finally:
        await engine.dispose()
    total = f"{done.resealed} records sealed again with the first key of DATA_KEY"
    if done.unreadable:
        print(
            f"{done.unreadable} contact(s) could not be opened with any key of DATA_KEY and "
            "were left as they were: if an older key is missing, add it at the end of "
            "DATA_KEY and run rotate-key again.",
            file=sys.stderr,
        )
    if done.last_pass:
        print(
            f"{done.last_pass} records were sealed with an older key again while rotating: "
            "a process still seals with it. Restart every process with the new DATA_KEY, "
            "then run rotate-key again.",
            file=sys.stderr,
        )
    if done.unreadable or done.last_pass:
        print(f"{total}; keep the other keys for now.")
        return 1
    print(f"{total}; the others can go.")
    return 0


async def _anonymise(settings: Settings, before: str, apply: bool) -> int:
    from datetime import UTC, datetime

    from db import queries
    from words.text import ascii_digits

    try:
        day = datetime.strptime(ascii_digits(before), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        print("--before: a day such as 2027-04-14", file=sys.stderr)
        return 2
    count = await in_transaction(
        settings, lambda session: queries.anonymise(session, before=day, apply=apply)
    )
    if apply:
        print(f"{count} signatures made before {before} anonymised; the counts stay.")
    else:
        print(f"{count} signatures made before {before} would be anonymised (add --apply).")
    return 0
