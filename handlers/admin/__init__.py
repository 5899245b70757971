"""The organisers' side: commands that only admins reach, one module per feature.

The access rule sits here, on the entry point: `handle` answers an admin command only for an
admin; anyone else gets the unknown-command answer, as for a command that does not exist.
`FEATURES` is the one list of admin features; each has a `commands` table (`registry.py`)
and may own conversation steps (`STEPS`).
"""

from __future__ import annotations

import logging

from handlers import common
from handlers.admin import (
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
    return await COMMANDS[incoming.command](ctx, incoming)


async def handle_step(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admins' answers at the steps that take any input (photos, forwarded and long texts),
    which the signing flow would refuse: composing a broadcast. None for anything else."""
    return await broadcasts.handle_step(ctx, incoming)
