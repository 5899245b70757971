"""`/questions`: what people asked that the FAQ could not answer, latest first."""

from __future__ import annotations

import html

from db import queries
from handlers.admin.registry import Commands
from handlers.base import Context, Incoming, Reply, split_message
from words.text import format_day, format_number

SHOWN = 20

commands = Commands()


@commands("questions")
async def _questions_command(ctx: Context, _incoming: Incoming) -> list[Reply]:
    await queries.audit(ctx.session, actor=ctx.actor, action="questions_view")
    return await _questions(ctx)


async def _questions(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    total = await queries.count_unanswered(ctx.session)
    if total == 0:
        return [Reply(_("No unanswered questions so far."))]
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
    return [Reply(text) for text in split_message(lines)]
