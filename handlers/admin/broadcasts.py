"""`/broadcast` and `/broadcasts`: news to opted-in people, for admins.

Composing is a short conversation kept on the admin's row (step and draft), so a restart
resumes it: the Khmer version, the English version (text, or a photo or document with its
caption, formatting kept), the audience (buttons, or a typed filter), then the exact count,
a preview of each version exactly as recipients will see it, and a confirmation: a button,
or above 1,000 recipients the number typed out; or a date, time and time zone to send it
later. The worker in `bot/workers/broadcast.py` does the sending.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from db import broadcasts as store
from db import queries
from db.models import Broadcast, utcnow
from handlers import signing
from handlers.admin.audience import (
    DEFAULT_ZONE,
    LANGUAGE_NAMES,
    describe,
    parse_audience,
    parse_when,
    shown_time,
)
from handlers.admin.registry import Commands
from handlers.base import Button, Context, Incoming, Kind, Reply, Step
from handlers.news import by_version, recipient_reply
from words.i18n import N_
from words.text import ascii_digits, format_number, khmer_digits

logger = logging.getLogger(__name__)

TYPE_THE_NUMBER_ABOVE = 1000  # above this many recipients, the admin types the number
DEFAULT_RATE = 25.0  # messages a second: under Telegram's free limit of about 30
TEXT_LIMIT = 4096  # Telegram's limit for a message
CAPTION_LIMIT = 1024  # and for a photo's or a document's caption
LISTED = 10
FAR_AHEAD = timedelta(days=366)


# ---------------------------------------------------------------- what Telegram accepts


# Tags Telegram's HTML knows, and the attributes they may carry.
_TELEGRAM_TAGS = {
    "b": set(), "strong": set(), "i": set(), "em": set(), "u": set(), "ins": set(),
    "s": set(), "strike": set(), "del": set(), "tg-spoiler": set(), "span": {"class"},
    "a": {"href"}, "code": {"class"}, "pre": set(), "blockquote": {"expandable"},
    "tg-emoji": {"emoji-id"},
}  # fmt: skip
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);)")


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problem: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = _TELEGRAM_TAGS.get(tag)
        if allowed is None:
            self.problem = self.problem or f"<{tag}> is not a tag Telegram knows"
            return
        if any(name not in allowed for name, _value in attrs):
            self.problem = self.problem or f"<{tag}> has an attribute Telegram does not allow"
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problem = self.problem or f"</{tag}> closes a tag that is not open"
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(text: str, *, limit: int) -> str | None:
    """What Telegram would refuse in a text written as its HTML, or None: unknown or
    unbalanced tags, a bare & or <, more than `limit` characters once the tags are gone."""
    if _BARE_AMPERSAND.search(text):
        return "write & as &amp; (the text is read as Telegram HTML)"
    checker = _TagCheck()
    checker.feed(text)
    checker.close()
    if checker.problem is None and "<" in "".join(checker.text):
        checker.problem = "write < as &lt; (the text is read as Telegram HTML)"
    if checker.problem is None and checker.open:
        checker.problem = f"<{checker.open[-1]}> is never closed"
    if checker.problem is not None:
        return checker.problem
    length = len("".join(checker.text))
    if length > limit:
        return f"{length} characters; Telegram allows {limit}"
    return None


# ---------------------------------------------------------------- figures, for admins


def duration(seconds: float, gettext: Callable[[str], str], language: str) -> str:
    """A duration as a person says it: "1 h 5 min", "3 min 20 s", "45 s"."""
    _ = gettext
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    elif minutes:
        text = _("{minutes} min {seconds} s").format(minutes=minutes, seconds=secs)
    else:
        text = _("{seconds} s").format(seconds=secs)
    return khmer_digits(text) if language == "km" else text


def figures_lines(
    figures: store.Figures, gettext: Callable[[str], str], language: str
) -> list[str]:
    """Sent, blocked, failed, skipped and unknown, as lines for an admin."""
    _ = gettext

    def number(value: int) -> str:
        return format_number(value, language)

    lines = [
        _("Sent: {sent} of {total}").format(sent=number(figures.sent), total=number(figures.total)),
        _("Blocked the bot: {blocked} · Failed: {failed} · Skipped: {skipped}").format(
            blocked=number(figures.blocked),
            failed=number(figures.failed),
            skipped=number(figures.skipped),
        ),
    ]
    if figures.unknown:
        lines.append(
            _(
                "Unknown: {count} (being sent when the sender stopped: they may have "
                "arrived, and were not sent again)"
            ).format(count=number(figures.unknown))
        )
    return lines


def progress_text(
    gettext: Callable[[str], str],
    language: str,
    *,
    broadcast_id: int,
    figures: store.Figures,
    state: str,
    rate: float = 0.0,
    elapsed: float = 0.0,
) -> str:
    """The admin's status message: while sending (`sending`), and at the end (`done`,
    `cancelled`)."""
    _ = gettext
    number = format_number(broadcast_id, language)
    if state == "done":
        head = _("📣 <b>Broadcast #{number}</b> has gone out, in {time}.").format(
            number=number, time=duration(elapsed, gettext, language)
        )
    elif state == "cancelled":
        head = _("📣 <b>Broadcast #{number}</b> was cancelled.").format(number=number)
    else:
        head = _("📣 <b>Broadcast #{number}</b> is going out…").format(number=number)
    lines = [head, *figures_lines(figures, gettext, language)]
    if state == "sending":
        lines.append(
            _("Remaining: {remaining}").format(remaining=format_number(figures.remaining, language))
        )
        if rate > 0:
            left = duration(figures.remaining / rate, gettext, language)
            lines.append(
                _("{rate} a second; about {time} left").format(
                    rate=format_number(round(rate), language), time=left
                )
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- the draft


def _draft(ctx: Context) -> dict[str, Any]:
    found = ctx.user.draft.get("broadcast")
    return found if isinstance(found, dict) else {}


def audience_of(ctx: Context) -> store.Audience:
    """The audience in the admin's draft."""
    return store.Audience.from_json(_draft(ctx).get("audience"))


def _update(ctx: Context, **changes: Any) -> None:
    # JSON columns notice a new value, not an in-place change: assign a fresh dict.
    ctx.user.draft = {"broadcast": {**_draft(ctx), **changes}}


def _versions(ctx: Context) -> dict[str, Any]:
    found = _draft(ctx).get("versions")
    return found if isinstance(found, dict) else {}


async def _recount(ctx: Context) -> dict[str, int]:
    by_language = await store.count_audience(ctx.session, audience=audience_of(ctx))
    _update(ctx, count=sum(by_language.values()), by_language=by_language)
    return by_language


def _count(ctx: Context) -> int:
    return int(_draft(ctx).get("count") or 0)


# ---------------------------------------------------------------- the steps' questions


def _ask_version(ctx: Context, language: str) -> Reply:
    _ = ctx.gettext
    prefix = "bk" if language == "km" else "be"
    if language == "km":
        text = _(
            "📣 <b>A new broadcast</b>\n"
            "Send the message in Khmer: a text, or a photo or a document with its caption. "
            "Bold, italics and links are kept.\n"
            "No Khmer version? Press Skip: Khmer readers will get the English one."
        )
    elif "km" in _versions(ctx):
        text = _(
            "Now send the same message in English (a text, or a photo or a document with "
            "its caption).\nNo English version? Press Skip: English readers will get the "
            "Khmer one."
        )
    else:
        text = _("Send the message in English: a text, or a photo or a document with its caption.")
    row = [Button(_("Skip"), f"{prefix}:skip")] if language == "km" or _versions(ctx) else []
    return Reply(text, [[*row, Button(_("Cancel"), f"{prefix}:x")]])


def _ask_km(ctx: Context) -> Reply:
    return _ask_version(ctx, "km")


def _ask_en(ctx: Context) -> Reply:
    return _ask_version(ctx, "en")


def _ask_audience(ctx: Context) -> Reply:
    _ = ctx.gettext
    audience = audience_of(ctx)
    text = "\n".join(
        [
            _("<b>Who should receive it?</b>"),
            describe(audience, ctx.gettext, ctx.language),
            _("{count} people match now.").format(count=format_number(_count(ctx), ctx.language)),
            "",
            _(
                "Choose with the buttons, or type a filter, for example:\n"
                "<code>country=US region=California,Washington,Massachusetts</code>\n"
                "<code>country=FR,AU language=km</code>\n"
                "<code>province=Battambang,Siem Reap signers</code>"
            ),
        ]
    )
    signers = (
        Button(_("Also those who have not signed"), "ba:everyone")
        if audience.signers_only
        else Button(_("Signers only"), "ba:signers")
    )
    buttons = [
        [Button(_("Khmer readers"), "ba:km"), Button(_("English readers"), "ba:en"),
         Button(_("Both languages"), "ba:both")],
        [signers, Button(_("Clear the filters"), "ba:clear")],
        [Button(_("✅ Continue"), "ba:go"), Button(_("Cancel"), "ba:x")],
    ]  # fmt: skip
    return Reply(text, buttons)


def _ask_when(ctx: Context) -> Reply:
    _ = ctx.gettext
    text = _(
        "When should it go out? Type the date and the time, then the time zone if it is not "
        "Cambodia's, for example:\n"
        "<code>2027-04-14 08:00</code> (Phnom Penh)\n"
        "<code>2027-04-13 17:00 America/Los_Angeles</code>"
    )
    return Reply(text, [[Button(_("← Back"), "bw:back"), Button(_("Cancel"), "bw:x")]])


def _ask_confirm(ctx: Context) -> Reply:
    _ = ctx.gettext
    count = _count(ctx)
    shown = format_number(count, ctx.language)
    when = _draft(ctx).get("when")
    if when:
        moment = datetime.fromisoformat(when)
        at = shown_time(moment, str(_draft(ctx).get("zone") or DEFAULT_ZONE), ctx.language)
        question = _("Send it on {time} to {count} people?").format(time=at, count=shown)
    else:
        question = _("Send it now to {count} people?").format(count=shown)
    first: list[Button] = []
    if count > TYPE_THE_NUMBER_ABOVE:
        question += "\n" + _("To confirm, type the number of recipients: {count}").format(
            count=shown
        )
    else:
        first = [Button(_("📣 Schedule it") if when else _("📣 Send now"), "bc:send")]
    later = _("🕗 Change the time") if when else _("🕗 Send later")
    buttons = [
        [*first, Button(later, "bc:later")],
        [Button(_("Change the audience"), "bc:audience"), Button(_("Cancel"), "bc:x")],
    ]
    return Reply(question, [row for row in buttons if row])


# ---------------------------------------------------------------- entry points


commands = Commands()


@commands("broadcast")
async def _broadcast(ctx: Context, _incoming: Incoming) -> list[Reply]:
    """Start composing."""
    ctx.user.draft = {"broadcast": {"versions": {}, "audience": {}}}
    ctx.user.step = "bc_km"
    return [_ask_km(ctx)]


@commands("broadcasts")
async def _broadcasts(ctx: Context, incoming: Incoming) -> list[Reply]:
    """The latest broadcasts with their figures; `/broadcasts cancel 12` cancels one."""
    words = ascii_digits(incoming.text).lower().split()
    if len(words) == 2 and words[0] == "cancel" and _number(words[1]) is not None:
        return [*await _cancel(ctx, int(words[1])), *signing.reminder(ctx)]
    return [await listing(ctx), *signing.reminder(ctx)]


async def listing(ctx: Context) -> Reply:
    """Scheduled, running and past broadcasts, newest first, with cancel buttons."""
    _ = ctx.gettext
    found = await store.latest_broadcasts(ctx.session, limit=LISTED)
    if not found:
        return Reply(_("No broadcast yet. /broadcast starts one."))
    numbers = await store.figures(ctx.session, ids=[b.id for b in found])
    lines = [_("<b>Broadcasts</b>, newest first:"), ""]
    buttons: list[list[Button]] = []
    for broadcast in found:
        lines.append(_line(ctx, broadcast, numbers[broadcast.id]))
        if broadcast.status in ("scheduled", "running"):
            label = _("Cancel #{number}").format(number=broadcast.id)
            buttons.append([Button(label, f"bx:{broadcast.id}")])
    return Reply("\n".join(lines), buttons)


STATES = {
    "draft": N_("draft"),
    "scheduled": N_("scheduled"),
    "running": N_("going out"),
    "done": N_("sent"),
    "cancelled": N_("cancelled"),
}


def _line(ctx: Context, broadcast: Broadcast, figures: store.Figures) -> str:
    _ = ctx.gettext
    language = ctx.language
    state = _(STATES.get(broadcast.status, broadcast.status))
    kinds = sorted({str(v.get("kind")) for v in broadcast.versions.values()} - {"text"})
    versions = "+".join(code for code in store.LANGUAGES if code in broadcast.versions)
    what = versions + (f", {', '.join(kinds)}" if kinds else "")
    if broadcast.status == "scheduled" and broadcast.scheduled_for is not None:
        when = shown_time(broadcast.scheduled_for, "UTC", language)
        head = f"<b>#{broadcast.id}</b> · {state} · {when} · {what}"
        count = _("about {count} people").format(count=format_number(broadcast.total, language))
        return f"{head}\n   {count}"
    started = broadcast.started_at or broadcast.created_at
    head = f"<b>#{broadcast.id}</b> · {state} · {shown_time(started, 'UTC', language)} · {what}"
    body = " · ".join(figures_lines(figures, ctx.gettext, language))
    return f"{head}\n   {body}"


async def _cancel(ctx: Context, broadcast_id: int) -> list[Reply]:
    _ = ctx.gettext
    cancelled = await store.cancel_broadcast(ctx.session, broadcast_id=broadcast_id, now=utcnow())
    number = format_number(broadcast_id, ctx.language)
    if not cancelled:
        found = await store.get_broadcast(ctx.session, broadcast_id=broadcast_id)
        if found is None:
            return [Reply(_("There is no broadcast #{number}.").format(number=number))]
        return [
            Reply(_("Broadcast #{number} is not scheduled or going out.").format(number=number))
        ]
    await queries.audit(
        ctx.session, actor=ctx.actor, action="broadcast_cancel", broadcast=broadcast_id
    )
    logger.warning("an admin cancelled broadcast %d", broadcast_id)
    figures = (await store.figures(ctx.session, ids=[broadcast_id]))[broadcast_id]
    text = "\n".join(
        [
            _("Broadcast #{number} is cancelled; nothing more will go out.").format(number=number),
            *figures_lines(figures, ctx.gettext, ctx.language),
        ]
    )
    return [Reply(text)]


# ---------------------------------------------------------------- answers at each step


COMPOSING = ("bc_km", "bc_en", "bc_audience", "bc_when", "bc_confirm")


def _number(text: str) -> int | None:
    """A broadcast's number as typed or carried by a button (ASCII digits, not absurd)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


async def handle_step(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Admins' answers while composing, and the cancel buttons of `/broadcasts`; None for
    anything else (other commands keep working, and repeat the pending question)."""
    step = ctx.user.step
    if incoming.kind is Kind.BUTTON and incoming.text.startswith("bx:"):
        number = _number(incoming.text[3:])
        if not ctx.is_admin or number is None:
            return None  # answered as a stale button
        return [*await _cancel(ctx, number), *signing.reminder(ctx)]
    if step not in COMPOSING:
        return None
    if not ctx.is_admin:  # no longer an admin: the draft goes
        ctx.user.step, ctx.user.draft = "idle", {}
        return None
    if incoming.kind is Kind.COMMAND:
        if incoming.command == "cancel":
            return _discard(ctx)
        return None
    if incoming.kind is Kind.BUTTON:
        prefix, _sep, value = incoming.text.partition(":")
        if signing.PREFIX_STEP.get(prefix) != step:
            return None  # another feature's button, or a stale one
        return await _button(ctx, step, value)
    if step in ("bc_km", "bc_en"):
        return await _version(ctx, "km" if step == "bc_km" else "en", incoming)
    if incoming.kind is not Kind.TEXT:
        return [Reply(ctx.gettext("Please type it, or use the buttons.")), signing.prompt(ctx)]
    if step == "bc_audience":
        return await _typed_audience(ctx, incoming.text)
    if step == "bc_when":
        return _typed_when(ctx, incoming.text)
    return await _typed_number(ctx, incoming.text)


def _discard(ctx: Context) -> list[Reply]:
    ctx.user.step, ctx.user.draft = "idle", {}
    return [Reply(ctx.gettext("The broadcast was discarded; nothing was sent."))]


async def _button(ctx: Context, step: str, value: str) -> list[Reply]:
    if value == "x":
        return _discard(ctx)
    if step in ("bc_km", "bc_en"):
        if value != "skip" or (step == "bc_en" and not _versions(ctx)):
            return [signing.prompt(ctx)]
        return await _after_version(ctx, "km" if step == "bc_km" else "en")
    if step == "bc_audience":
        return await _audience_button(ctx, value)
    if step == "bc_when":
        ctx.user.step = "bc_confirm"
        return [_ask_confirm(ctx)]
    if value == "later":
        ctx.user.step = "bc_when"
        return [_ask_when(ctx)]
    if value == "audience":
        ctx.user.step = "bc_audience"
        await _recount(ctx)
        return [_ask_audience(ctx)]
    if value == "send" and _count(ctx) <= TYPE_THE_NUMBER_ABOVE:
        return await _create(ctx)
    return [signing.prompt(ctx)]


async def _version(ctx: Context, language: str, incoming: Incoming) -> list[Reply]:
    _ = ctx.gettext
    version: dict[str, Any]
    if incoming.kind is Kind.TEXT:
        text = incoming.html or html.escape(incoming.text)
        if not incoming.text.strip():
            return [signing.prompt(ctx)]
        if len(incoming.text) > TEXT_LIMIT:
            return [Reply(_("That is too long for one message (4,096 characters at most).")),
                    signing.prompt(ctx)]  # fmt: skip
        version = {"kind": "text", "text": text}
    elif incoming.kind is Kind.OTHER and incoming.media is not None:
        media = incoming.media
        version = {"kind": media.kind, "file_id": media.file_id, "filename": media.filename,
                   "text": incoming.html or ""}  # fmt: skip
    else:
        return [Reply(_("Please send a text, a photo or a document.")), signing.prompt(ctx)]
    _update(ctx, versions={**_versions(ctx), language: version})
    return await _after_version(ctx, language)


async def _after_version(ctx: Context, language: str) -> list[Reply]:
    if language == "km":
        ctx.user.step = "bc_en"
        return [_ask_en(ctx)]
    ctx.user.step = "bc_audience"
    await _recount(ctx)
    return [_ask_audience(ctx)]


async def _audience_button(ctx: Context, value: str) -> list[Reply]:
    audience = audience_of(ctx)
    if value == "go":
        return await _preview(ctx)
    if value in ("km", "en", "both"):
        audience = replace(audience, languages=() if value == "both" else (value,))
    elif value == "signers":
        audience = replace(audience, signers_only=True)
    elif value == "everyone":
        # Places and provinces are only known for signers: those filters go too.
        audience = store.Audience(audience.languages)
    elif value == "clear":
        audience = store.Audience()
    _update(ctx, audience=audience.to_json())
    await _recount(ctx)
    return [_ask_audience(ctx)]


async def _typed_audience(ctx: Context, text: str) -> list[Reply]:
    _ = ctx.gettext
    found = parse_audience(text, audience_of(ctx))
    if isinstance(found, tuple):
        problem, part = found
        return [Reply(_(problem).format(part=html.escape(part))), _ask_audience(ctx)]
    _update(ctx, audience=found.to_json())
    await _recount(ctx)
    return [_ask_audience(ctx)]


async def _preview(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    by_language = await _recount(ctx)
    count = _count(ctx)
    if count == 0:
        return [Reply(_("Nobody matches this audience. Change the filters.")), _ask_audience(ctx)]
    versions = _versions(ctx)
    getting = by_version(versions, by_language)
    lines = [_("This broadcast will go to {count} people:").format(
        count=format_number(count, ctx.language))]  # fmt: skip
    for code in store.LANGUAGES:
        if code in getting:
            lines.append(
                _("• {language} version: {count}").format(
                    language=LANGUAGE_NAMES[code], count=format_number(getting[code], ctx.language)
                )
            )
    replies = [Reply("\n".join(lines))]
    for code in store.LANGUAGES:
        if code in versions:
            intro = _("Preview of the {language} version, exactly as they will see it:")
            replies.append(Reply(intro.format(language=LANGUAGE_NAMES[code])))
            replies.append(recipient_reply(versions[code], ctx.translator_for(code)))
    ctx.user.step = "bc_confirm"
    replies.append(_ask_confirm(ctx))
    return replies


def _typed_when(ctx: Context, text: str) -> list[Reply]:
    _ = ctx.gettext
    found = parse_when(text)
    if found is None:
        return [Reply(_("I could not read that date, time and time zone.")), _ask_when(ctx)]
    moment, zone = found
    now = utcnow()
    if moment <= now:
        return [Reply(_("That time has already passed.")), _ask_when(ctx)]
    if moment > now + FAR_AHEAD:
        return [Reply(_("That is more than a year away.")), _ask_when(ctx)]
    _update(ctx, when=moment.isoformat(), zone=zone)
    ctx.user.step = "bc_confirm"
    return [_ask_confirm(ctx)]


async def _typed_number(ctx: Context, text: str) -> list[Reply]:
    _ = ctx.gettext
    digits = re.sub(r"[\s,.]", "", ascii_digits(text))
    count = _count(ctx)
    if count > TYPE_THE_NUMBER_ABOVE and digits == str(count):
        return await _create(ctx)
    if count > TYPE_THE_NUMBER_ABOVE:
        wrong = _("That is not the number of recipients. Type {count} to confirm.").format(
            count=format_number(count, ctx.language)
        )
        return [Reply(wrong), _ask_confirm(ctx)]
    return [Reply(_("Please use the buttons.")), _ask_confirm(ctx)]


async def _create(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    draft = _draft(ctx)
    versions, audience = _versions(ctx), audience_of(ctx)
    when = datetime.fromisoformat(draft["when"]) if draft.get("when") else None
    if when is not None and when <= utcnow():
        return [Reply(_("That time has already passed.")), _ask_when(ctx)]
    broadcast_id = await store.create_broadcast(
        ctx.session,
        created_by=ctx.actor,
        versions=versions,
        audience=audience,
        scheduled_for=when or utcnow(),
        rate=DEFAULT_RATE,
        paid=False,
        total=_count(ctx),
        report_channel=ctx.channel,
        report_chat=ctx.user.external_id,
    )
    await queries.audit(
        ctx.session,
        actor=ctx.actor,
        action="broadcast",
        broadcast=broadcast_id,
        recipients=_count(ctx),
        audience=audience.to_json(),
        scheduled_for=when.isoformat() if when else None,
    )
    logger.warning("an admin queued broadcast %d for %d people", broadcast_id, _count(ctx))
    number = format_number(broadcast_id, ctx.language)
    ctx.user.step, ctx.user.draft = "idle", {}
    if when is not None:
        at = shown_time(when, str(draft.get("zone") or DEFAULT_ZONE), ctx.language)
        text = _(
            "📣 Broadcast #{number} is scheduled for {time}. /broadcasts lists it, and can "
            "cancel it."
        ).format(number=number, time=at)
    else:
        text = _(
            "📣 Broadcast #{number} starts within a few seconds. A message here will show how "
            "it goes; /broadcasts can cancel it."
        ).format(number=number)
    return [Reply(text)]


def _step(name: str, prefix: str, ask: Callable[[Context], Reply]) -> Step:
    async def on_button(ctx: Context, value: str) -> list[Reply]:
        return await _button(ctx, name, value)

    return Step(name, prefix, ask, on_button)


STEPS = (
    _step("bc_km", "bk", _ask_km),
    _step("bc_en", "be", _ask_en),
    _step("bc_audience", "ba", _ask_audience),
    _step("bc_when", "bw", _ask_when),
    _step("bc_confirm", "bc", _ask_confirm),
)
