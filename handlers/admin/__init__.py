"""The organisers' side: commands that only admins reach, one module per feature.

The access rule sits here, on the entry point: `handle` answers an admin command only for an
admin; anyone else gets the unknown-command answer, as for a command that does not exist.
Every command an admin runs leaves a row in the audit log. Owners (ADMIN_IDS) alone add or
remove admins and take contacts out, with a second owner's approval (`approvals.py`).
`FEATURES` is the one list of admin features; each has a `commands` table (`registry.py`)
and may own conversation steps (`STEPS`).
"""

from __future__ import annotations

import logging

from db import queries
from handlers import common
from handlers.admin import (
    approvals,
    broadcasts,
    codes,
    exports,
    people,
    questions,
    signatures,
    stats,
)
from handlers.admin.registry import AdminCommand
from handlers.base import Context, Incoming, Kind, Reply, Step

logger = logging.getLogger(__name__)

FEATURES = (people, questions, signatures, stats, exports, codes, broadcasts)


def _collect() -> dict[str, AdminCommand]:
    found: dict[str, AdminCommand] = {}
    for feature in FEATURES:
        for name, handler in feature.commands.items():
            if name in found:
                raise ValueError(f"/{name} is claimed twice ({feature.__name__})")
            found[name] = handler
    return found


# Every admin command, by name.
COMMANDS = _collect()
# The steps admin features own in the conversation (registered in handlers/__init__.py).
STEPS: tuple[Step, ...] = (*signatures.STEPS, *exports.STEPS, *broadcasts.STEPS)


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """An admin command, for admins only; None for any other input."""
    if incoming.kind is not Kind.COMMAND or incoming.command not in COMMANDS:
        return None
    if not ctx.is_admin:
        logger.warning("a non-admin on %s tried /%s", ctx.channel, incoming.command)
        return await common.fallback(ctx, incoming)
    before = queries.audits_so_far(ctx.session)
    replies = await COMMANDS[incoming.command](ctx, incoming)
    if queries.audits_so_far(ctx.session) == before:
        # Every admin action leaves a row, even one whose feature recorded nothing more
        # precise (a listing, a usage message): the command's name, never its argument.
        await queries.audit(ctx.session, actor=ctx.actor, action=f"/{incoming.command}")
    return replies


async def handle_step(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admins' answers outside the signing flow's steps: owners' approvals, and the steps
    that take any input (photos, forwarded and long texts), which the signing flow would
    refuse: composing a broadcast. None for anything else."""
    replies = await approvals.handle_button(ctx, incoming)
    if replies is not None:
        return replies
    return await broadcasts.handle_step(ctx, incoming)
