"""Commands for organisers. The route lets only admins reach this module."""

from __future__ import annotations

import html

from bot.text import format_day, format_number
from db import queries
from handlers.base import Context, Incoming, Kind, Reply

COMMANDS = frozenset({"questions"})
SHOWN = 20


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admin commands; None for anything else."""
    if incoming.kind is Kind.COMMAND and incoming.command == "questions":
        return [await _questions(ctx)]
    return None


async def _questions(ctx: Context) -> Reply:
    _ = ctx.gettext
    total = await queries.count_unanswered(ctx.session)
    if total == 0:
        return Reply(_("No unanswered questions so far."))
    latest = await queries.latest_unanswered(ctx.session, limit=SHOWN)
    lines = [
        _("{count} questions the bot could not answer; the latest:").format(
            count=format_number(total, ctx.language)
        ),
        "",
    ]
    lines += [
        f"• {format_day(question.asked_at.date(), ctx.language)} [{question.language}] "
        f"{html.escape(question.text)}"
        for question in latest
    ]
    return Reply("\n".join(lines))
