"""Commands for organisers. The route lets only admins reach this module."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.text import ascii_digits, format_day, format_number
from db import queries
from handlers import places, signing
from handlers.base import Button, Context, Incoming, Kind, Reply

logger = logging.getLogger(__name__)

SHOWN = 20
CHANNELS = ("telegram", "messenger", "console")

AdminCommand = Callable[[Context, Incoming], Awaitable[list[Reply]]]
# Every admin command, by name: the route lets only admins reach them. Feature modules add
# theirs with `@admin.command("name")`.
COMMANDS: dict[str, AdminCommand] = {}


def command(name: str) -> Callable[[AdminCommand], AdminCommand]:
    """Register an admin command (`/name argument`)."""

    def register(handler: AdminCommand) -> AdminCommand:
        COMMANDS[name] = handler
        return handler

    return register


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admin commands; None for anything else."""
    if incoming.kind is not Kind.COMMAND or incoming.command not in COMMANDS:
        return None
    return await COMMANDS[incoming.command](ctx, incoming)


@command("questions")
async def _questions_command(ctx: Context, _incoming: Incoming) -> list[Reply]:
    return [await _questions(ctx)]


@command("block")
async def _block_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _block(ctx, incoming.text, blocked=True)]


@command("unblock")
async def _unblock_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _block(ctx, incoming.text, blocked=False)]


@command("invalidate")
async def _invalidate_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _invalidate(ctx, incoming.text)]


@command("admins")
async def _admins(ctx: Context, incoming: Incoming) -> list[Reply]:
    """`/admins` lists them; `/admins add 123` and `/admins remove 123` change the list."""
    _ = ctx.gettext
    words = ascii_digits(incoming.text).split()
    if not words:
        return [await _list_admins(ctx)]
    usage = _("Write /admins to see them, /admins add 123456789 or /admins remove 123456789.")
    if len(words) != 2 or words[0] not in ("add", "remove") or not words[1].isdigit():
        return [Reply(usage)]
    action, target = words
    bootstrap = ctx.admin_ids
    if action == "add":
        added = target in bootstrap or await queries.add_admin(
            ctx.session, external_id=target, added_by=ctx.actor
        )
        await queries.audit(ctx.session, actor=ctx.actor, action="admin_add", target=target)
        logger.warning("an admin added an admin")
        if not added:
            return [Reply(_("{id} is already an admin.").format(id=target))]
        return [
            Reply(
                _("{id} is now an admin. They can use the admin commands (/help).").format(
                    id=target
                )
            )
        ]
    if target == ctx.user.external_id:
        return [Reply(_("You cannot remove yourself; ask another admin."))]
    if target in bootstrap:
        return [
            Reply(
                _(
                    "{id} is an admin through the ADMIN_IDS setting: only whoever runs the "
                    "server can remove them there."
                ).format(id=target)
            )
        ]
    removed = await queries.remove_admin(ctx.session, external_id=target)
    await queries.audit(ctx.session, actor=ctx.actor, action="admin_remove", target=target)
    logger.warning("an admin removed an admin")
    if not removed:
        return [Reply(_("{id} was not an admin.").format(id=target))]
    return [Reply(_("{id} is no longer an admin.").format(id=target))]


async def _list_admins(ctx: Context) -> Reply:
    _ = ctx.gettext
    lines = [_("Admins:"), ""]
    lines += [
        "• " + _("{id} (set in ADMIN_IDS)").format(id=admin) for admin in sorted(ctx.admin_ids)
    ]
    for admin in await queries.added_admins(ctx.session):
        if admin.external_id in ctx.admin_ids:
            continue
        lines.append(
            "• "
            + _("{id}, added on {day}").format(
                id=admin.external_id, day=format_day(admin.added_at.date(), ctx.language)
            )
        )
    lines += ["", _("Add one with /admins add 123456789 (their Telegram user id).")]
    return Reply("\n".join(lines))


@command("audit")
async def _audit(ctx: Context, _incoming: Incoming) -> list[Reply]:
    """The latest admin actions."""
    _ = ctx.gettext
    entries = await queries.latest_audit(ctx.session, limit=SHOWN)
    if not entries:
        return [Reply(_("No admin action recorded yet."))]
    lines = [_("The latest admin actions:"), ""]
    for entry in entries:
        detail = " ".join(f"{key}={value}" for key, value in sorted(entry.detail.items()))
        when = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(html.escape(f"• {when} UTC {entry.actor} {entry.action} {detail}".rstrip()))
    return [Reply("\n".join(lines))]


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
    ctx.user.draft = {"invalidate": {**found.to_draft(), "count": matching}}
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
    found = queries.SignatureFilter.from_draft(saved)
    changed = await queries.invalidate(ctx.session, where=found)
    logger.warning("an admin set %d signatures aside", changed)
    text = _("{count} signatures set aside.").format(count=format_number(changed, ctx.language))
    return [Reply(text)]


signing.register_step("invalidate_confirm", "iv", _ask_invalidate, _invalidate_answer)
