"""What the bot says and does, once for every channel.

`route` is the single place that decides which feature answers an input. The signers'
features sit at this level (`common`, `privacy`, `faq`, `signing`, `news`), the organisers'
in `admin/` behind its access rule, and what both use to read people's words in `reading/`.
"""

from __future__ import annotations

from handlers import admin, common, faq, privacy, signing
from handlers.base import Context, Incoming, Reply

# Signer features in the order they are consulted: language and help first; then the
# person's rights (which work at any step); then questions (their buttons, and typed text
# while no step is pending); then the signing flow, which takes the rest.
SIGNER_FEATURES = (common, privacy, faq, signing)

# The signing flow is the conversation's one state machine (handlers/signing.mmd); the
# confirmation and composing steps of other features join it here, once.
for _step in (*privacy.STEPS, *admin.STEPS):
    signing.register_step(_step)


async def route(ctx: Context, incoming: Incoming) -> list[Reply]:
    """Hand the input to the first feature that takes it; the catch-all comes last."""
    # Admin commands first: only admins reach them, others get the unknown-command answer.
    replies = await admin.handle(ctx, incoming)
    if replies is not None:
        return replies
    # Composing a broadcast takes any input (photos, forwarded and long texts) at its own
    # steps, which the signing flow would refuse: it is asked next. Admins only.
    replies = await admin.handle_step(ctx, incoming)
    if replies is not None:
        return replies
    for feature in SIGNER_FEATURES:
        replies = await feature.handle(ctx, incoming)
        if replies is not None:
            return replies
    # Catch-all, always last: whatever no feature took gets a gentle pointer.
    return await common.fallback(ctx, incoming)
