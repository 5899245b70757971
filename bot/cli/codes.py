"""`petitionbot qr`: a QR poster for a share code (or the bot itself), as a file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.cli.common import in_transaction
from bot.config import Settings

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
    return asyncio.run(_poster(settings, code=args.code, username=username, out=out))


async def _poster(settings: Settings, *, code: str | None, username: str, out: Path) -> int:
    """Look the code up, write its poster and record that in the audit log, at once."""
    from db import codes, queries
    from drawings.poster import make_poster

    async def task(session: Any) -> int:
        found = None
        if code is not None:
            found = await codes.find_code(session, code=code)
            if found is None:
                print(f"There is no share code {code}: /codes in the chat lists them.",
                      file=sys.stderr)  # fmt: skip
                return 1
        link = f"https://t.me/{username}" + (f"?start={found.code}" if found else "")
        poster = await asyncio.to_thread(make_poster, link, found.name if found else None)
        kind = out.suffix.lower()[1:]
        try:
            await asyncio.to_thread(out.write_bytes, poster.png if kind == "png" else poster.svg)
        except OSError as error:
            print(f"--out: cannot write {out}: {error.strerror}", file=sys.stderr)
            return 1
        detail = {"code": found.code, "kind": found.kind} if found else {"kind": "bot"}
        await queries.audit(session, actor="shell", action="qr", file=kind, **detail)
        print(f"{out}: the QR code of {link} ({poster.version}), for A4 at 300 dpi")
        if found and found.name and kind == "png" and not poster.titled:
            print("The name is not on the PNG (no font for it here); the SVG shows it.")
        return 0

    return await in_transaction(settings, task)
