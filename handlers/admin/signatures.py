"""`/invalidate`: setting signatures aside (a flood from one code, a test run), counted
first and confirmed; and the signature filter that `/invalidate` and `/export` share."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from db import queries
from handlers.admin.registry import Commands
from handlers.base import Button, Context, Incoming, Reply, Step
from handlers.reading import places
from words.text import ascii_digits, format_number

logger = logging.getLogger(__name__)

commands = Commands()


@commands("invalidate")
async def _invalidate_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    return [await _invalidate(ctx, incoming.text)]


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
    await queries.audit(
        ctx.session, actor=ctx.actor, action="invalidate", count=changed, **found.to_draft()
    )
    logger.warning("an admin set %d signatures aside", changed)
    text = _("{count} signatures set aside.").format(count=format_number(changed, ctx.language))
    return [Reply(text)]


STEPS = (Step("invalidate_confirm", "iv", _ask_invalidate, _invalidate_answer),)
