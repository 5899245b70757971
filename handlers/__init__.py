"""What the bot says and does, once for every channel.

`route` is the single place that decides which feature answers an input.
"""

from __future__ import annotations

from handlers import common, signing
from handlers.base import Context, Incoming, Reply


async def route(ctx: Context, incoming: Incoming) -> list[Reply]:
    """Hand the input to the first feature that takes it; the catch-all comes last."""
    for feature in (common, signing):
        replies = await feature.handle(ctx, incoming)
        if replies is not None:
            return replies
    # Catch-all, always last: whatever no feature took gets a gentle pointer.
    return await common.fallback(ctx, incoming)
