"""The same conversation in a terminal: options are numbered, typing the number presses one."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.app import App
from handlers.base import Attachment, Button, Incoming, Reply
from words.text import ascii_digits

CHANNEL = "console"
_TAG = re.compile(r"</?(b|i|u|s|code|pre|a)( [^>]*)?>")


def render(replies: list[Reply], files_dir: Path | None = None) -> tuple[str, list[Button]]:
    """Text for the terminal, and the options numbered in it (counted across the replies).

    A file sent with a reply (a chart, an export, a QR code) is saved in `files_dir`, and
    its path shown.
    """
    lines: list[str] = []
    options: list[Button] = []
    for reply in replies:
        if reply.to is not None:
            # Meant for another person (an owner): the terminal can only say it went.
            lines += [f"(→ {reply.to}) " + html.unescape(_TAG.sub("", reply.text)), ""]
            continue
        if reply.attachment is not None:
            lines.append(f"[{_save(reply.attachment, files_dir)}]")
        lines.append(html.unescape(_TAG.sub("", reply.text)))
        for row in reply.buttons:
            labels = []
            for button in row:
                options.append(button)
                labels.append(f"[{len(options)}] {button.label}")
            lines.append("   ".join(labels))
        lines.append("")
    return "\n".join(lines), options


def _save(attachment: Attachment, files_dir: Path | None) -> str:
    if attachment.data is None:
        return f"{attachment.kind}: {attachment.filename}"
    folder = files_dir or Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(attachment.filename).name
    # Only the person running the console may read it: an export can hold contacts.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(attachment.data)
    return f"file saved: {path}"


def read_input(line: str, options: list[Button]) -> Incoming:
    """A number picks an option (Khmer digits too); anything else is typed text or a /command."""
    stripped = ascii_digits(line.strip())
    if stripped.isdigit() and 1 <= int(stripped) <= len(options):
        return Incoming.button(options[int(stripped) - 1].payload)
    return Incoming.message(line.rstrip("\r\n"))


async def chat(
    app: App,
    *,
    user_id: int = 1,
    stdin: TextIO,
    stdout: TextIO,
    share_link: Callable[[str], str | None],
) -> None:
    """Talk until end of input; the conversation opens with /start."""
    options: list[Button] = []
    pending: Incoming | None = Incoming.message("/start")

    async def show(replies: list[Reply]) -> None:
        # Also called later, for what slow work (a large export) sends when it is done.
        nonlocal options
        text, new_options = render(replies, app.settings.files_dir)
        # Numbers keep pointing at the last options shown until new ones appear.
        options = new_options or options
        stdout.write(text + "\n")
        stdout.flush()

    while True:
        if pending is None:
            stdout.write("> ")
            stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                stdout.write("\n")
                stdout.flush()
                return
            if not line.strip():
                continue
            pending = read_input(line, options)
            if not stdin.isatty():
                stdout.write(line if line.endswith("\n") else line + "\n")
        await app.conversation.process(
            channel=CHANNEL,
            user_id=str(user_id),
            update_key=None,
            incoming=pending,
            share_link=share_link,
            deliver=show,
        )
        # One person at this keyboard: what is finished after the update (/stats, a file)
        # is shown before the next prompt.
        await app.conversation.settle()
        pending = None
