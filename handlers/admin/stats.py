"""`/stats`: the figures and a chart, for admins.

Three messages, each short enough for a phone: the headline figures under the chart, then
where signers live and were born, then how they signed (language, channel, source), the
funnel and the top share codes. Numbers are written in the admin's language.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from db import queries
from db.models import utcnow
from db.stats import Figures, figures
from drawings import chart
from handlers.admin.registry import Commands
from handlers.base import Attachment, Context, Incoming, Reply, split_message
from handlers.reading import places
from words.i18n import N_
from words.text import format_day, format_number, format_percent_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

TOP_COUNTRIES = 10
TOP_PROVINCES = 10
REGION_COUNTRIES = 3  # regions are shown for this many of the top countries
TOP_REGIONS = 5
LONGEST_PLACE = 40  # a typed region is cut to this many characters

LANGUAGE_NAMES = {"km": N_("Khmer"), "en": N_("English")}
CHANNEL_NAMES = {
    "telegram": "Telegram",
    "messenger": "Messenger",
    "console": N_("Console"),
    "paper": N_("On paper"),  # imported with `petitionbot import`
}
SOURCE_NAMES = {"chat": N_("In the chat"), "import": N_("Imported from paper")}
# Where people who have not signed are, in the order of the flow.
STOPS = {
    "language": N_("Have not chosen a language"),
    "idle": N_("Saw the petition, did not start signing"),
    "consent": N_("Reading the petition text, not agreed yet"),
    "name": N_("At their name"),
    "country": N_("At their country"),
    "region": N_("At their state, province or city"),
    "birthplace": N_("At their province of birth"),
    "contact": N_("At their phone or e-mail"),
    "updates": N_("At the question about news"),
    "review": N_("Checking their answers, not confirmed"),
    "edit_pick": N_("Changing an answer"),
    "agreed_idle": N_("Agreed, then stopped before the end"),
    "other": N_("Doing something else"),
}

Key = TypeVar("Key")


commands = Commands()


@commands("stats")
async def stats(ctx: Context, _incoming: Incoming) -> list[Reply]:
    """The figures in three messages, the first carrying the chart: counted and drawn after
    the update, beside the conversation (the chart alone takes some 25 ms, which nobody
    else should wait for; the counting is mostly a checkpoint read, see db/stats.py)."""
    await queries.audit(ctx.session, actor=ctx.actor, action="stats")
    return [Reply("", later=partial(_figures_later, ctx))]


async def _figures_later(ctx: Context, sessions: async_sessionmaker[AsyncSession]) -> list[Reply]:
    now = utcnow()
    async with (ctx.readers or sessions)() as session:
        found = await figures(session, now=now)
    sections = [_headline(ctx, found, now.date()), _places(ctx, found), _how(ctx, found)]
    replies = [Reply(text) for section in sections for text in split_message(section)]
    try:
        # Drawn in a worker thread (some 25 ms): the bot goes on answering people meanwhile.
        png = await asyncio.to_thread(_chart, ctx, found, now.date())
    except (OSError, ValueError):  # a broken font file, an image library without PNG...
        logger.exception("the /stats chart could not be drawn; the figures go without it")
    else:
        replies[0].attachment = Attachment("photo", "stats.png", data=png)
    return replies


def _colon(ctx: Context) -> str:
    return "៖" if ctx.language == "km" else ":"  # Khmer writes its own colon


def _line(ctx: Context, label: str, count: int, whole: int) -> str:
    """`• label: 1,234 (12%)`, numbers in the admin's language; `label` is already escaped."""
    number = format_number(count, ctx.language)
    return f"• {label}{_colon(ctx)} {number} ({format_percent_of(count, whole, ctx.language)})"


def _cut(text: str) -> str:
    return text if len(text) <= LONGEST_PLACE else text[: LONGEST_PLACE - 1] + "…"


def _ranked_lines(
    ctx: Context,
    rows: Sequence[tuple[Key, int]],
    name: Callable[[Key], str],
    whole: int,
    *,
    top: int,
    others: str,
) -> list[str]:
    """The first `top` rows one a line, then the rest summed on one line."""
    lines = [_line(ctx, name(key), count, whole) for key, count in rows[:top]]
    rest = rows[top:]
    if rest:
        label = others.format(count=format_number(len(rest), ctx.language))
        lines.append(_line(ctx, label, sum(count for _, count in rest), whole))
    return lines


def _headline(ctx: Context, found: Figures, today: date) -> list[str]:
    _ = ctx.gettext
    language = ctx.language

    def number(value: int) -> str:
        return format_number(value, language)

    lines = [
        "<b>" + _("📊 Petition figures, {day}").format(day=format_day(today, language)) + "</b>",
        _("Counted signatures: <b>{total}</b> of the goal of {goal} ({percent})").format(
            total=number(found.total),
            goal=number(ctx.goal),
            percent=format_percent_of(found.total, ctx.goal, language),
        ),
        _("Today: <b>{today}</b> · last 7 days: <b>{week}</b> · last 30 days: <b>{month}</b>")
        .format(today=number(found.today), week=number(found.week), month=number(found.month)),
        _("Want news from the campaign: {count} ({percent})").format(
            count=number(found.opted_in),
            percent=format_percent_of(found.opted_in, found.total, language),
        ),
    ]  # fmt: skip
    if found.set_aside:
        lines.append(_("Set aside by an admin, not counted: {count}").format(
            count=number(found.set_aside)
        ))  # fmt: skip
    lines.append("<i>" + _("Days are counted in UTC.") + "</i>")
    return lines


def _places(ctx: Context, found: Figures) -> list[str]:
    _ = ctx.gettext
    language = ctx.language
    if not found.total:
        return ["<b>" + _("🌍 Where signers live") + "</b>", _("No signatures yet.")]

    def country(code: str) -> str:
        return html.escape(places.country_name(code, language))

    lines = ["<b>" + _("🌍 Where signers live") + "</b>"]
    lines += _ranked_lines(
        ctx, found.by_country, country, found.total,
        top=TOP_COUNTRIES, others=_("Other countries ({count})"),
    )  # fmt: skip
    regions = []
    for code, _count in found.by_country[:REGION_COUNTRIES]:
        within = found.by_region.get(code, [])
        parts = []
        for region, region_count in within[:TOP_REGIONS]:
            shown = html.escape(_cut(region)) if region else _("not given")
            parts.append(f"{shown} {format_number(region_count, language)}")
        rest = sum(region_count for _region, region_count in within[TOP_REGIONS:])
        if rest:
            parts.append(_("elsewhere") + " " + format_number(rest, language))
        regions.append(f"• <i>{country(code)}</i>{_colon(ctx)} " + " · ".join(parts))
    lines += ["", "<b>" + _("📍 Regions in the top countries") + "</b>", *regions]

    def province(code: str) -> str:
        if code == places.ABROAD:
            return _("Born outside Cambodia")
        return html.escape(places.province_name(code, language))

    lines += ["", "<b>" + _("🏠 Province of birth") + "</b>"]
    lines += _ranked_lines(
        ctx, found.by_province, province, found.total,
        top=TOP_PROVINCES, others=_("Other provinces ({count})"),
    )  # fmt: skip
    return lines


def _how(ctx: Context, found: Figures) -> list[str]:
    _ = ctx.gettext
    language = ctx.language

    def named(names: dict[str, str]) -> Callable[[str], str]:
        return lambda key: _(names[key]) if key in names else html.escape(key)

    lines: list[str] = []
    for title, rows, names in (
        (_("🗣 Language"), found.by_language, LANGUAGE_NAMES),
        (_("📱 Channel"), found.by_channel, CHANNEL_NAMES),
        (_("✍️ Source"), found.by_source, SOURCE_NAMES),
    ):
        if rows:  # none before the first signature
            lines += ["<b>" + title + "</b>"]
            lines += [_line(ctx, named(names)(key), count, found.total) for key, count in rows]
            lines.append("")

    funnel = found.funnel
    wrote = _("Wrote to the bot")  # not inside the f-string: Babel would not find it there
    lines += [
        "<b>" + _("🚦 From the first message to the signature") + "</b>",
        f"• {wrote}{_colon(ctx)} {format_number(funnel.started, language)}",
        _line(ctx, _("Agreed to the petition text"), funnel.agreed, funnel.started),
        _line(ctx, _("Signed"), funnel.signed, funnel.started),
    ]
    waiting = sum(count for _step, _agreed, count in funnel.stops)
    if waiting:
        groups: dict[str, int] = dict.fromkeys(STOPS, 0)
        for step, agreed, count in funnel.stops:
            groups[_stop_group(step, agreed)] += count
        lines += [
            "",
            "<b>" + _("Not signed yet ({count}): where they stopped").format(
                count=format_number(waiting, language)
            ) + "</b>",
        ]  # fmt: skip
        lines += [
            _line(ctx, _(STOPS[group]), count, waiting) for group, count in groups.items() if count
        ]

    lines += ["", "<b>" + _("🔗 Top share codes") + "</b>"]
    if not found.top_codes:
        lines.append(_("No signature came through a share code yet."))
    for code, name, count in found.top_codes:
        label = f"<code>{html.escape(code)}</code>"
        if name:
            label += f" ({html.escape(name)})"
        lines.append(f"• {label}{_colon(ctx)} {format_number(count, language)}")
    return lines


def _stop_group(step: str, agreed: bool) -> str:
    """The readable group of a step where someone who has not signed is now."""
    if step in ("new", "language"):
        return "language"
    if step == "idle":
        return "agreed_idle" if agreed else "idle"
    if step in ("country_other", "country_confirm"):
        return "country"
    return step if step in STOPS else "other"


def chart_words(gettext: Callable[[str], str]) -> chart.ChartText:
    """The words on the chart, in one language."""
    _ = gettext
    return chart.ChartText(
        title=_("Petition signatures"),
        per_day=_("Signatures per day"),
        total=_("Total so far"),
        goal=_("Goal: {goal}"),
        progress=_("{total} of {goal} signatures ({percent})"),
        countries=_("Top countries"),
        empty=_("No signatures yet."),
        updated=_("As of {day} (UTC)"),
    )


def _chart(ctx: Context, found: Figures, today: date) -> bytes:
    """The chart in the admin's language; in English when Khmer cannot be drawn correctly."""
    language = ctx.language if ctx.language != "km" or chart.khmer_ready() else "en"
    data = chart.ChartData(
        per_day=found.per_day,
        goal=ctx.goal,
        total=found.total,
        countries=[
            (places.country_name(code, language), count)
            for code, count in found.by_country[: chart.TOP_COUNTRIES]
        ],
        today=today,
    )
    return chart.render(data, chart_words(ctx.translator_for(language)), language=language)
