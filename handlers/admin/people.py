"""Who may do what: `/admins` (the list, and adding or removing one), `/block` and `/unblock`
(a person who abuses the bot), `/audit` (the latest admin actions)."""

from __future__ import annotations

import html
import logging
from datetime import UTC

from db import queries
from handlers.admin.owners import tell_owners
from handlers.admin.registry import Commands
from handlers.base import Context, Incoming, Reply, split_message
from words.i18n import N_
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


ONLY_OWNERS = N_("Only the owners (those set in ADMIN_IDS on the server) can add or remove admins.")
ADDED = N_("🔐 Admin {actor} made {id} an organiser: they can now use the admin commands.")
REMOVED = N_("🔐 Admin {actor} removed the organiser {id}.")


@commands("admins")
async def _admins(ctx: Context, incoming: Incoming) -> list[Reply]:
    """`/admins` lists them; `/admins add 123` and `/admins remove 123` change the list
    (owners only), and every other owner is told."""
    _ = ctx.gettext
    words = ascii_digits(incoming.text).split()
    if not words:
        await queries.audit(ctx.session, actor=ctx.actor, action="admins_view")
        return [await _list_admins(ctx)]
    usage = _("Write /admins to see them, /admins add 123456789 or /admins remove 123456789.")
    if len(words) != 2 or words[0] not in ("add", "remove") or not words[1].isdigit():
        return [Reply(usage)]
    action, target = words
    if not ctx.is_owner:
        await queries.audit(
            ctx.session, actor=ctx.actor, action="admin_refused", asked=action, target=target
        )
        logger.warning("an organiser tried to change the admins")
        return [Reply(_(ONLY_OWNERS))]
    bootstrap = ctx.admin_ids
    if action == "add":
        added = target not in bootstrap and await queries.add_admin(
            ctx.session, external_id=target, added_by=ctx.actor
        )
        await queries.audit(ctx.session, actor=ctx.actor, action="admin_add", target=target)
        logger.warning("an owner added an admin")
        if not added:
            return [Reply(_("{id} is already an admin.").format(id=target))]
        text = _("{id} is now an organiser. They can use the admin commands (/help).")
        told = await tell_owners(ctx, ADDED, actor=ctx.user.external_id, id=target)
        return [Reply(text.format(id=target)), *told]
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
    logger.warning("an owner removed an admin")
    if not removed:
        return [Reply(_("{id} was not an admin.").format(id=target))]
    told = await tell_owners(ctx, REMOVED, actor=ctx.user.external_id, id=target)
    return [Reply(_("{id} is no longer an admin.").format(id=target)), *told]


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
            + _("{id}, organiser, added on {day}").format(
                id=admin.external_id, day=format_day(admin.added_at.date(), ctx.language)
            )
        )
    if ctx.is_owner:
        lines += ["", _("Add one with /admins add 123456789 (their Telegram user id).")]
    return Reply("\n".join(lines))


@commands("audit")
async def _audit(ctx: Context, _incoming: Incoming) -> list[Reply]:
    """The latest admin actions."""
    _ = ctx.gettext
    entries = await queries.latest_audit(ctx.session, limit=SHOWN)
    await queries.audit(ctx.session, actor=ctx.actor, action="audit_view")
    if not entries:
        return [Reply(_("No admin action recorded yet."))]
    lines = [_("The latest admin actions:"), ""]
    for entry in entries:
        detail = " ".join(f"{key}={value}" for key, value in sorted(entry.detail.items()))
        when = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(html.escape(f"• {when} UTC {entry.actor} {entry.action} {detail}".rstrip()))
    return [Reply(text) for text in split_message(lines)]


async def _block(ctx: Context, argument: str, *, blocked: bool) -> Reply:
    _ = ctx.gettext
    words = ascii_digits(argument).split()
    channel = words[0] if len(words) == 2 and words[0] in CHANNELS else ctx.channel
    target = words[-1] if words else ""
    if not target.isdigit() or len(words) > 2:
        return Reply(_("Write the user id: /block 123456789 (or /block messenger 123456789)."))
    if target == ctx.user.external_id and channel == ctx.channel:
        return Reply(_("You cannot block yourself."))
    action = "block" if blocked else "unblock"
    if (
        blocked
        and channel in queries.ADMIN_CHANNELS
        and (
            target in ctx.admin_ids or await queries.is_added_admin(ctx.session, external_id=target)
        )
    ):
        # A stolen organiser account must not silence the others: admins are never blocked.
        await queries.audit(ctx.session, actor=ctx.actor, action="block_refused", target=target)
        return Reply(
            _(
                "Admins cannot be blocked. An owner can first remove an organiser with "
                "/admins remove {id}."
            ).format(id=target)
        )
    await queries.set_blocked(ctx.session, channel=channel, external_id=target, blocked=blocked)
    await queries.audit(ctx.session, actor=ctx.actor, action=action, channel=channel, target=target)
    logger.warning("an admin %s a user on %s", "blocked" if blocked else "unblocked", channel)
    done = _("Blocked: they get no answers and cannot sign.") if blocked else _("Unblocked.")
    return Reply(done)
