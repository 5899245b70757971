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
    from db import queries

    cipher = settings.contact_cipher()
    if cipher is None:
        print("DATA_KEY and HASH_KEY are not set: there is nothing to rotate.", file=sys.stderr)
        return 1
    changed = await in_transaction(
        settings, lambda session: queries.rotate_contacts(session, cipher=cipher)
    )
    print(f"{changed} records sealed again with the first key of DATA_KEY; the others can go.")
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
