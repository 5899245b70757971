"""What the bot says and does, once for every channel.

`route` is the single place that decides which feature answers an input.
"""

from __future__ import annotations

import logging

from handlers import admin, common, faq, privacy, signing

# Admin features: each registers its commands with `admin.command` when imported.
from handlers import broadcasts, codes, exports, stats  # noqa: F401  isort: skip
from handlers.base import Context, Incoming, Kind, Reply

logger = logging.getLogger(__name__)


async def route(ctx: Context, incoming: Incoming) -> list[Reply]:
    """Hand the input to the first feature that takes it; the catch-all comes last."""
    if incoming.kind is Kind.COMMAND and incoming.command in admin.COMMANDS:
        # Admin commands are reached only by admins; others get the unknown-command answer.
        if ctx.is_admin:
            replies = await admin.handle(ctx, incoming)
            if replies is not None:
                return replies
        else:
            logger.warning("a non-admin on %s tried /%s", ctx.channel, incoming.command)
            return await common.fallback(ctx, incoming)
    # Order matters: language and help first; then the person's rights (which work at any
    # step); then questions (their buttons, and typed text while no step is pending); then
    # the signing flow, which takes the rest.
    # Composing a broadcast takes any input (photos, forwarded and long texts) at its own
    # steps, which the signing flow would refuse: it is asked first. Admins only.
    composing = await broadcasts.handle_step(ctx, incoming)
    if composing is not None:
        return composing
    for feature in (common, privacy, faq, signing):
        replies = await feature.handle(ctx, incoming)
        if replies is not None:
            return replies
    # Catch-all, always last: whatever no feature took gets a gentle pointer.
    return await common.fallback(ctx, incoming)
