"""The signer's rights, one command away: see their data, erase it, stop news, read the notice."""

from __future__ import annotations

import html

from db import broadcasts as broadcast_store
from db import queries
from handlers import news, signing
from handlers.base import Button, Context, Incoming, Kind, Reply, Step
from words.text import format_day, format_number

COMMANDS = frozenset({"mydata", "delete", "stop", "privacy"})


def notice(ctx: Context) -> Reply:
    """Who keeps what, why, for how long, who sees it, and how to erase it."""
    _ = ctx.gettext
    text = _(
        "<b>Your data and your rights</b>\n"
        "This petition is run by the Commission for Election Rights of Overseas Cambodians "
        "(CEROC), a volunteer group.\n\n"
        "<b>What we keep:</b> your answers when you sign (name, country and place where you "
        "live, province of birth, and a phone number or e-mail only if you gave one), whether "
        "you want news, your language, and your personal share code. A question the bot "
        "cannot answer is kept for the organisers for {days} days, with any phone number or "
        "e-mail in it removed.\n"
        "<b>Why:</b> to show officials how many Cambodians ask for the right to vote, and, if "
        "you agreed, to send you campaign news.\n"
        "<b>Who sees it:</b> only the campaign's organisers. We never sell it, and we never "
        "publish your name without asking you.\n"
        "<b>How long:</b> for as long as the campaign lasts, or until you erase it.\n\n"
        "/mydata shows everything we keep about you. /delete erases all of it. "
        "/stop ends the news."
    ).format(days=format_number(ctx.question_days, ctx.language))
    return Reply(text)


def _ask_delete(ctx: Context) -> Reply:
    _ = ctx.gettext
    text = _(
        "Do you want to erase everything we keep about you? Your signature, your answers and "
        "your place in this conversation will be deleted, and cannot be brought back."
    )
    buttons = [[Button(_("Yes, erase everything"), "d:y"), Button(_("No, keep it"), "d:n")]]
    return Reply(text, buttons)


async def _delete_answer(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.gettext
    if value != "y":
        ctx.user.step, ctx.user.draft = "idle", {}
        return [Reply(_("Nothing was erased."), signing.menu_buttons(ctx))]
    await queries.erase_person(ctx.session, user_id=ctx.user.id)
    ctx.user.signature_id = None
    text = _(
        "Everything we kept about you has been erased. Thank you for your support; you are "
        "welcome back at any time."
    )
    return [Reply(text)]


# Steps this feature owns in the conversation (registered in handlers/__init__.py).
STEPS = (Step("delete_confirm", "d", _ask_delete, _delete_answer),)


async def my_data(ctx: Context) -> Reply:
    """Everything stored about the person, with when it was recorded."""
    _ = ctx.gettext
    user, language = ctx.user, ctx.language
    yes, no = _("yes"), _("no")
    lines = [_("<b>Everything we keep about you</b>"), ""]
    lines.append(_("Language: {language}").format(
        language="ភាសាខ្មែរ" if language == "km" else "English"))  # fmt: skip
    lines.append(
        _("First message: {date}").format(date=format_day(user.created_at.date(), language))
    )
    lines.append(_("News from the campaign: {answer}").format(
        answer=yes if user.updates_opt_in else no))  # fmt: skip
    if user.share_code:
        lines.append(_("Your share code: {code}").format(code=user.share_code))
    if user.referred_by:
        lines.append(_("You came through the share code: {code}").format(
            code=html.escape(user.referred_by)))  # fmt: skip
    signature = await queries.find_signature(ctx.session, user_id=user.id)
    lines.append("")
    if signature is None:
        lines.append(_("You have not signed the petition."))
    else:
        lines.append(_("You signed on {date}; last changed on {changed}.").format(
            date=format_day(signature.created_at.date(), language),
            changed=format_day(signature.updated_at.date(), language)))  # fmt: skip
        lines.append(signing.summary(ctx, signing.answers_of(signature)))
    if user.step in signing.FLOW_STEPS and user.draft:
        lines += ["", _("Answers you have given so far, not yet signed:")]
        lines.append(signing.summary(ctx, user.draft))
    asked = await queries.questions_of(ctx.session, user_id=user.id)
    if asked:
        lines += ["", _("Questions you asked that we kept for the organisers:")]
        lines += [
            f"• {format_day(question.asked_at.date(), language)}: {html.escape(question.text)}"
            for question in asked
        ]
    lines += ["", _("/delete erases all of it.")]
    return Reply("\n".join(lines))


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """/mydata, /delete, /stop, /privacy, the news buttons, and news offered again on /start."""
    _ = ctx.gettext
    if incoming.kind is Kind.BUTTON and incoming.text == "n:on":
        await _news(ctx, on=True)
        return [Reply(_("You will receive news from the campaign again. /stop ends them."))]
    if incoming.kind is Kind.BUTTON and incoming.text == news.STOP_PAYLOAD:
        return [await _stop(ctx), *signing.reminder(ctx)]
    if incoming.kind is Kind.COMMAND and incoming.command == "start":
        return await _start_again(ctx, incoming)
    if incoming.kind is not Kind.COMMAND or incoming.command not in COMMANDS:
        return None
    if incoming.command == "privacy":
        return [notice(ctx), *signing.reminder(ctx)]
    if incoming.command == "mydata":
        return [await my_data(ctx), *signing.reminder(ctx)]
    if incoming.command == "stop":
        return [await _stop(ctx)]
    ctx.user.draft = {}
    ctx.user.step = "delete_confirm"
    return [_ask_delete(ctx)]


async def _stop(ctx: Context) -> Reply:
    _ = ctx.gettext
    await _news(ctx, on=False)
    text = _("You will not receive news from the campaign any more.")
    return Reply(text, [[Button(_("🔔 Receive news again"), "n:on")]])


async def _start_again(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """/start from someone who gets no news and has not signed: the welcome, then an offer
    to receive news (signers see the same button under their signature)."""
    if ctx.user.updates_opt_in or ctx.user.signature_id is not None:
        return None
    if ctx.user.step in signing.FLOW_STEPS:
        return None
    replies = await signing.handle(ctx, incoming) or []
    _ = ctx.gettext
    offer = _(
        "Would you like news from the campaign now and then? You can stop them at any time "
        "with /stop."
    )
    return [*replies, Reply(offer, [[Button(_("🔔 Receive news"), "n:on")]])]


async def _news(ctx: Context, *, on: bool) -> None:
    ctx.user.updates_opt_in = on
    await queries.set_signature_news(ctx.session, user_id=ctx.user.id, on=on)
    if on:
        # They asked for news: whatever the platform said about them before, try again.
        await broadcast_store.set_reachable(ctx.session, user_id=ctx.user.id)
