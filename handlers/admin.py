"""Commands for organisers. The route lets only admins reach this module."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime, timedelta

from bot.text import ascii_digits, format_day, format_number
from db import queries
from handlers import places, signing
from handlers.base import Button, Context, Incoming, Kind, Reply

logger = logging.getLogger(__name__)

COMMANDS = frozenset({"questions", "block", "unblock", "invalidate"})
SHOWN = 20
CHANNELS = ("telegram", "messenger", "console")


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admin commands; None for anything else."""
    if incoming.kind is not Kind.COMMAND:
        return None
    if incoming.command == "questions":
        return [await _questions(ctx)]
    if incoming.command in ("block", "unblock"):
        return [await _block(ctx, incoming.text, blocked=incoming.command == "block")]
    if incoming.command == "invalidate":
        return [await _invalidate(ctx, incoming.text)]
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


async def _block(ctx: Context, argument: str, *, blocked: bool) -> Reply:
    _ = ctx.gettext
    words = ascii_digits(argument).split()
    channel = words[0] if len(words) == 2 and words[0] in CHANNELS else ctx.channel
    target = words[-1] if words else ""
    if not target.isdigit() or len(words) > 2:
        return Reply(_("Write the user id: /block 123456789 (or /block messenger 123456789)."))
    if target == ctx.user.external_id and channel == ctx.channel:
        return Reply(_("You cannot block yourself."))
    await queries.set_blocked(ctx.session, channel=channel, external_id=target, blocked=blocked)
    logger.warning("an admin %s a user on %s", "blocked" if blocked else "unblocked", channel)
    done = _("Blocked: they get no answers and cannot sign.") if blocked else _("Unblocked.")
    return Reply(done)


def parse_filter(argument: str) -> queries.SignatureFilter | None:
    """`country=KH code=abc since=2026-04-01 until=2026-04-14` → a filter; None if malformed."""
    values: dict[str, str] = {}
    for word in ascii_digits(argument).split():
        name, sep, value = word.partition("=")
        if not sep or name not in {"country", "code", "since", "until"} or not value:
            return None
        values[name] = value
    country = None
    if "country" in values:
        country, _close = places.match_country(values["country"])
        if country is None:
            return None
    try:
        since = _day(values.get("since"))
        until = _day(values.get("until"))
    except ValueError:
        return None
    found = queries.SignatureFilter(
        country=country,
        code=values.get("code"),
        since=since,
        until=until + timedelta(days=1) if until else None,  # the whole last day
    )
    return found if values else None


def _day(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC) if text else None


async def _invalidate(ctx: Context, argument: str) -> Reply:
    _ = ctx.gettext
    found = parse_filter(argument)
    if found is None:
        return Reply(
            _(
                "Say which signatures, with one or more of: country=KH code=SHARECODE "
                "since=2026-04-01 until=2026-04-14. I will count them first."
            )
        )
    matching = await queries.count_matching(ctx.session, where=found)
    if matching == 0:
        return Reply(_("No counted signature matches that."))
    ctx.user.draft = {
        "invalidate": {
            "country": found.country,
            "code": found.code,
            "since": found.since.isoformat() if found.since else None,
            "until": found.until.isoformat() if found.until else None,
            "count": matching,
        }
    }
    ctx.user.step = "invalidate_confirm"
    return _ask_invalidate(ctx)


def _ask_invalidate(ctx: Context) -> Reply:
    _ = ctx.gettext
    count = format_number(int(ctx.user.draft.get("invalidate", {}).get("count", 0)), ctx.language)
    text = _(
        "{count} signatures match. Set them aside? They will no longer be counted, and stay "
        "in the database for review."
    ).format(count=count)
    buttons = [[Button(_("Set them aside"), "iv:y"), Button(_("Cancel"), "iv:n")]]
    return Reply(text, buttons)


async def _invalidate_answer(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.gettext
    saved = ctx.user.draft.get("invalidate", {})
    ctx.user.step, ctx.user.draft = "idle", {}
    if value != "y" or not ctx.is_admin:
        return [Reply(_("Nothing was changed."))]
    found = queries.SignatureFilter(
        country=saved.get("country"),
        code=saved.get("code"),
        since=datetime.fromisoformat(saved["since"]) if saved.get("since") else None,
        until=datetime.fromisoformat(saved["until"]) if saved.get("until") else None,
    )
    changed = await queries.invalidate(ctx.session, where=found)
    logger.warning("an admin set %d signatures aside", changed)
    text = _("{count} signatures set aside.").format(count=format_number(changed, ctx.language))
    return [Reply(text)]


signing.register_step("invalidate_confirm", "iv", _ask_invalidate, _invalidate_answer)
