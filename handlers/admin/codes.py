"""Volunteer share codes and QR posters (`/code`, `/codes`, `/qr`), for admins.

Every signer has a personal link already; organisers make named codes for volunteers and
events (`/code new Long Beach New Year 2027`), see how many signed through each (`/codes`),
and get any code's QR poster (`/code qr CODE`, `/qr CODE`; `/qr` alone for the bot itself).

A poster comes as two documents: a PNG at 300 dpi, sent as a file rather than a photo because
Telegram shrinks and re-compresses photos (blurring the modules' edges) while a file reaches
the printer exactly as made; and an SVG, which prints sharp at any size (banners, T-shirts).
"""

from __future__ import annotations

import asyncio
import html
import logging
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from db import codes, queries
from drawings.poster import make_poster
from handlers.admin.registry import Commands
from handlers.base import Attachment, Context, Incoming, Reply
from words.text import format_day, format_number, normalise

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

MAX_NAME = 100  # the column's size
SHOWN = 30  # codes listed in one message (Telegram allows 4,096 characters)
_QUOTES = "\"'“”„‘’«»「」"


commands = Commands()


@commands("code")
async def _code(ctx: Context, incoming: Incoming) -> list[Reply]:
    """`/code` lists, `/code new NAME` creates, `/code qr CODE` makes a poster."""
    action, _sep, rest = incoming.text.strip().partition(" ")
    action = action.lower()
    if action in ("", "list"):
        return [await _list(ctx)]
    if action == "new":
        return await _new(ctx, rest)
    if action == "qr":
        return await _poster_for(ctx, rest)
    return [Reply(_usage(ctx))]


@commands("codes")
async def _codes(ctx: Context, _incoming: Incoming) -> list[Reply]:
    return [await _list(ctx)]


@commands("qr")
async def _qr(ctx: Context, incoming: Incoming) -> list[Reply]:
    """`/qr CODE` for a share code's poster, `/qr` alone for the bot's own link."""
    return await _poster_for(ctx, incoming.text)


def _usage(ctx: Context) -> str:
    _ = ctx.gettext
    return _(
        "Share codes:\n"
        "/code new NAME – a new code for a volunteer or an event, with its QR poster\n"
        "/codes – every code, with the signatures that came through it\n"
        "/code qr CODE – the QR poster of a code (a volunteer's or a signer's)\n"
        "/qr – the QR poster of the bot's own link"
    )


def clean_name(text: str) -> str:
    """A code's name as typed: quotes around it dropped, spaces tidied, Khmer normalised."""
    name = normalise(text)
    while len(name) >= 2 and name[0] in _QUOTES and name[-1] in _QUOTES:
        name = normalise(name[1:-1])
    return "".join(char for char in name if char.isprintable())


async def _new(ctx: Context, argument: str) -> list[Reply]:
    _ = ctx.gettext
    name = clean_name(argument)
    if not name:
        return [Reply(_("Give the code a name, e.g. /code new Long Beach New Year 2027"))]
    if len(name) > MAX_NAME:
        return [
            Reply(
                _("That name is too long: {count} characters at most, please.").format(
                    count=format_number(MAX_NAME, ctx.language)
                )
            )
        ]
    existing = await codes.code_named(ctx.session, name=name)
    if existing is not None:
        text = _(
            "There is already a code with that name: <b>{code}</b>. Its poster: /qr {code}"
        ).format(code=existing)
        return [Reply(text)]
    code = await codes.create_code(ctx.session, name=name, created_by=ctx.actor)
    await queries.audit(ctx.session, actor=ctx.actor, action="code_create", code=code)
    logger.info("an admin created a share code")
    created = _("New share code <b>{code}</b> for “{name}”.").format(
        code=code, name=html.escape(name)
    )
    counted = _("Everyone who signs through it is counted under it: see the counts with /codes.")
    return await _poster(ctx, codes.FoundCode(code, "volunteer", name), f"{created}\n{counted}")


async def _list(ctx: Context) -> Reply:
    _ = ctx.gettext
    found = await codes.code_counts(ctx.session)
    personal = await codes.personal_link_signatures(ctx.session)
    language = ctx.language
    lines: list[str] = []
    if not found:
        lines.append(_("No volunteer codes yet. Make one with /code new Long Beach New Year 2027"))
    else:
        lines += [_("Volunteer codes and the signatures that came through each:"), ""]
        for each in found[:SHOWN]:
            lines.append(
                _("• <b>{code}</b> {name}: {count} (since {day})").format(
                    code=each.code,
                    name=html.escape(each.name),
                    count=format_number(each.signatures, language),
                    day=format_day(each.created_at.date(), language),
                )
            )
        if len(found) > SHOWN:
            more = format_number(len(found) - SHOWN, language)
            lines.append(_("… and {count} more with fewer signatures.").format(count=more))
    lines += [
        "",
        _("Through signers' own links: {count}").format(count=format_number(personal, language)),
        "",
        _("A code's poster: /code qr CODE. A new code: /code new NAME."),
    ]
    return Reply("\n".join(lines))


async def _poster_for(ctx: Context, argument: str) -> list[Reply]:
    _ = ctx.gettext
    code = argument.strip().strip(_QUOTES).strip()
    if not code:
        return await _poster(ctx, None, "")
    if not codes.SHARE_CODE.fullmatch(code):
        return [Reply(_("A share code has only Latin letters and digits, e.g. /qr k7m2qx"))]
    found = await codes.find_code(ctx.session, code=code)
    if found is None:
        text = _("There is no share code {code}. See the volunteer codes with /codes.")
        return [Reply(text.format(code=html.escape(code)))]
    return await _poster(ctx, found, "")


def bot_link(ctx: Context) -> str | None:
    """The bot's own link, without a share code (None when the bot's name is unknown)."""
    # The channel knows its bot's address only as share links: take one, drop its code.
    link = ctx.share_link("x")
    if link is None:
        return None
    parts = urlsplit(link)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def _poster(ctx: Context, found: codes.FoundCode | None, intro: str) -> list[Reply]:
    """The PNG and SVG posters of a code (None: the bot's own link), with `intro` first."""
    _ = ctx.gettext
    link = ctx.share_link(found.code) if found else bot_link(ctx)
    if link is None:
        missing = _(
            "I do not know the bot's username here, so I cannot make its link or QR code. "
            "Set TELEGRAM_BOT_USERNAME, or ask me on Telegram."
        )
        return [Reply(f"{intro}\n\n{missing}" if intro else missing)]
    which = {"code": found.code, "kind": found.kind} if found else {"kind": "bot"}
    await queries.audit(ctx.session, actor=ctx.actor, action="qr", **which)
    # Drawn after the update (some 400 ms), beside the conversation: nobody else waits.
    # What was done (`intro`) is said at once; the poster follows.
    return [Reply(intro, later=partial(_drawn, ctx, found, link))]


async def _drawn(
    ctx: Context,
    found: codes.FoundCode | None,
    link: str,
    _sessions: async_sessionmaker[AsyncSession],
) -> list[Reply]:
    _ = ctx.gettext
    title = found.name if found else None
    poster = await asyncio.to_thread(make_poster, link, title)
    lines = []
    if found is None:
        lines.append(_("The QR code of the bot's own link:"))
    elif found.kind == "volunteer":
        lines.append(_("QR poster of <b>{code}</b>: {name}").format(
            code=found.code, name=html.escape(found.name or "")))  # fmt: skip
    else:
        lines.append(_("QR poster of <b>{code}</b>, a signer's own link.").format(code=found.code))
    lines.append(link)
    if title and not poster.titled:
        lines.append(
            _("The name is not on the image (no font for it here): the SVG file shows it.")
        )
    lines.append(
        _(
            "Print the PNG file on A4 at its full size (300 dpi): the code is about 17 cm "
            "wide and phones read it from two metres."
        )
    )
    name = f"qr-{found.code}" if found else "qr-bot"
    svg_text = _("The same poster as SVG: it stays sharp at any size (banners, T-shirts).")
    return [
        Reply("\n".join(lines), attachment=Attachment("document", f"{name}.png", poster.png)),
        Reply(svg_text, attachment=Attachment("document", f"{name}.svg", poster.svg)),
    ]
