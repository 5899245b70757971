"""Telling the owners (those in ADMIN_IDS) what admins did: a change of role, an export with
contacts, a request that needs a second owner. A stolen organiser account cannot act quietly.
"""

from __future__ import annotations

from db import queries
from handlers.base import Button, Context, Reply
from words.i18n import LANGUAGES


async def tell_owners(
    ctx: Context,
    message: str,
    *,
    buttons: list[list[Button]] | None = None,
    including_me: bool = False,
    **values: str,
) -> list[Reply]:
    """`message` (an `N_()` text with `{placeholders}`) for every owner in their language, as
    replies addressed to them; the acting owner is left out unless `including_me`."""
    owners = sorted(ctx.admin_ids - (set() if including_me else {ctx.user.external_id}))
    if not owners:
        return []
    languages = await queries.admin_languages(ctx.session, channel="telegram", ids=owners)
    replies = []
    for owner in owners:
        language = languages.get(owner, "km")
        _ = ctx.translator_for(language if language in LANGUAGES else "km")
        text = _(message).format(**values)
        rows = [
            [Button(_(button.label), button.payload) for button in row] for row in buttons or []
        ]
        replies.append(Reply(text, rows, to=owner))
    return replies
