"""Who may do what: `/admins` (the list, and adding or removing one), `/block` and `/unblock`
(a person who abuses the bot), `/audit` (the latest admin actions)."""

from __future__ import annotations

import html
import logging
from datetime import UTC

from db import queries
from handlers.admin.registry import Commands
from handlers.base import Context, Incoming, Reply
from words.text import ascii_digits, format_day

logger = logging.getLogger(__name__)

SHOWN = 20
CHANNELS = ("telegram", "messenger", "console")

commands = Commands()


@commands("block")
async def _block_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _block(ctx, incoming.text, blocked=True)]


@commands("unblock")
async def _unblock_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _block(ctx, incoming.text, blocked=False)]


@commands("admins")
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


@commands("audit")
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
