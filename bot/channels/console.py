"""The same conversation in a terminal: options are numbered, typing the number presses one."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from typing import TextIO

from bot.app import App
from bot.text import ascii_digits
from handlers.base import Button, Incoming, Reply

CHANNEL = "console"
_TAG = re.compile(r"</?(b|i|u|s|code|pre|a)( [^>]*)?>")


def render(replies: list[Reply]) -> tuple[str, list[Button]]:
    """Text for the terminal, and the options numbered in it (counted across the replies)."""
    lines: list[str] = []
    options: list[Button] = []
    for reply in replies:
        lines.append(html.unescape(_TAG.sub("", reply.text)))
        for row in reply.buttons:
            labels = []
            for button in row:
                options.append(button)
                labels.append(f"[{len(options)}] {button.label}")
            lines.append("   ".join(labels))
        lines.append("")
    return "\n".join(lines), options


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
        replies = await app.conversation.process(
            channel=CHANNEL,
            user_id=str(user_id),
            update_key=None,
            incoming=pending,
            share_link=share_link,
        )
        pending = None
        text, new_options = render(replies)
        # Numbers keep pointing at the last options shown until new ones appear.
        options = new_options or options
        stdout.write(text + "\n")
        stdout.flush()
