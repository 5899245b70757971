"""`petitionbot qr`: a QR poster for a share code (or the bot itself), as a file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings

if TYPE_CHECKING:
    from db.codes import FoundCode

FORMATS = (".png", ".svg")


def add_commands(commands: Any) -> None:
    """Add this module's subcommands to the `petitionbot` parser."""
    poster = commands.add_parser(
        "qr", help="a share code's QR poster (A4, 300 dpi) as a PNG or SVG file"
    )
    poster.add_argument(
        "code", nargs="?", help="a volunteer's or a signer's share code (none: the bot's link)"
    )
    poster.add_argument("--link", action="store_true", help="the bot's own link, without a code")
    poster.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.svg")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the subcommand if it is one of this module's; None otherwise."""
    if args.command != "qr":
        return None
    from bot import qr

    out: Path = args.out
    kind = out.suffix.lower()
    if args.link and args.code:
        print("qr: give a share code or --link, not both", file=sys.stderr)
        return 2
    if kind not in FORMATS:
        print(f"--out: the file must end in .png or .svg, not {out.name}", file=sys.stderr)
        return 2
    username = settings.telegram_bot_username
    if not username:
        print(
            "Configuration error: TELEGRAM_BOT_USERNAME: not set (the bot's username, "
            "which QR links point to)",
            file=sys.stderr,
        )
        return 2
    found = asyncio.run(_find(settings, args.code)) if args.code else None
    if args.code and found is None:
        print(
            f"There is no share code {args.code}: /codes in the chat lists them.", file=sys.stderr
        )
        return 1
    link = f"https://t.me/{username}" + (f"?start={found.code}" if found else "")
    poster = qr.make_poster(link, found.name if found else None)
    try:
        out.write_bytes(poster.png if kind == ".png" else poster.svg)
    except OSError as error:
        print(f"--out: cannot write {out}: {error.strerror}", file=sys.stderr)
        return 1
    asyncio.run(_record(settings, found, kind[1:]))
    print(f"{out}: the QR code of {link} ({poster.version}), for A4 at 300 dpi")
    if found and found.name and kind == ".png" and not poster.titled:
        print("The name is not on the PNG (no font for it here); the SVG shows it.")
    return 0


async def _find(settings: Settings, code: str) -> FoundCode | None:
    from bot.cli import _in_transaction
    from db import codes

    found: list[FoundCode] = []

    async def look_up(session: Any) -> int:
        each = await codes.find_code(session, code=code)
        if each is None and code.lower() != code:
            each = await codes.find_code(session, code=code.lower())  # typed in capitals
        found.extend([each] if each else [])
        return 0

    await _in_transaction(settings, look_up)
    return found[0] if found else None


async def _record(settings: Settings, found: FoundCode | None, file_kind: str) -> None:
    from bot.cli import _in_transaction
    from db import queries

    async def record(session: Any) -> int:
        detail = {"code": found.code, "kind": found.kind} if found else {"kind": "bot"}
        await queries.audit(session, actor="shell", action="qr", file=file_kind, **detail)
        return 0

    await _in_transaction(settings, record)
