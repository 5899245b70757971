"""Commands every person can use anywhere: language, help; and the catch-all answers."""

from __future__ import annotations

from handlers import signing
from handlers.base import Button, Context, Incoming, Kind, Reply
from words.i18n import N_
from words.text import fold

LANGUAGE_BUTTONS = [[Button("ភាសាខ្មែរ", "l:km"), Button("English", "l:en")]]
_LANGUAGE_NAMES = {"ភាសាខ្មែរ": "km", "ខ្មែរ": "km", "khmer": "km", "km": "km",
                   "english": "en", "en": "en", "អង់គ្លេស": "en", "ភាសាអង់គ្លេស": "en"}  # fmt: skip
MAX_TEXT = 1000  # no answer in the flow is longer; a longer message is refused politely


ADMIN_HELP = (
    N_("/stats – the figures, with a chart"),
    N_("/export – the signatures as a spreadsheet"),
    N_("/code – share codes for volunteers, and QR posters"),
    N_("/broadcast – send news to those who asked for it; /broadcasts – the list"),
    N_("/questions – questions the bot could not answer"),
    N_("/admins – who the admins are; /audit – what admins did"),
    N_("/block, /unblock – stop or allow a user id; /invalidate – set fake signatures aside"),
)


def language_picker(ctx: Context) -> Reply:
    """The language question, in both languages since we do not know which one yet."""
    khmer, english = ctx.translator_for("km"), ctx.translator_for("en")
    question = N_("Please choose your language.")
    return Reply(f"{khmer(question)}\n{english(question)}", buttons=LANGUAGE_BUTTONS)


def help_text(ctx: Context) -> Reply:
    """What the bot can do, command by command."""
    _ = ctx.gettext
    lines = [
        _("I gather signatures for the petition for every Cambodian's right to vote."),
        "",
        _("/sign – sign the petition"),
        _("/mysignature – see, change or withdraw your signature"),
        _("/faq – questions about voting from abroad"),
        _("/mydata – everything we keep about you"),
        _("/delete – erase all your data"),
        _("/stop – no more news from the campaign"),
        _("/privacy – how your data is protected"),
        _("/language – ភាសាខ្មែរ or English"),
        _("/cancel – stop what you are doing; nothing is saved"),
        _("/help – this list"),
    ]
    if ctx.is_admin:
        lines += ["", _("For organisers:"), *(_(line) for line in ADMIN_HELP)]
    return Reply("\n".join(lines), buttons=signing.menu_buttons(ctx))


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Language and help, wherever the person is in the conversation."""
    if incoming.kind is Kind.BUTTON and incoming.text.startswith("l:"):
        return await _choose_language(ctx, incoming.text.removeprefix("l:"))
    typed = _LANGUAGE_NAMES.get(fold(incoming.text)) if incoming.kind is Kind.TEXT else None
    if typed and (ctx.user.language is None or ctx.user.step == "language"):
        return await _choose_language(ctx, typed)
    if ctx.user.language is None:
        # Nothing can be said before we know the language; a /start link is kept for later.
        if incoming.kind is Kind.COMMAND and incoming.command == "start":
            signing.remember_referral(ctx, incoming.text)
        ctx.user.step = "language"
        return [language_picker(ctx)]
    if (incoming.kind is Kind.COMMAND and incoming.command == "language") or (
        incoming.kind is Kind.BUTTON and incoming.text == "go:lang"
    ):
        if ctx.user.step not in signing.FLOW_STEPS:
            ctx.user.step = "language"
        return [language_picker(ctx)]
    if incoming.kind is Kind.COMMAND and incoming.command == "help":
        return [help_text(ctx), *signing.reminder(ctx)]
    return None


async def _choose_language(ctx: Context, language: str) -> list[Reply]:
    if language not in ("km", "en"):
        language = ctx.language
    first_time = ctx.user.language is None
    ctx.switch_language(language)
    _ = ctx.gettext
    if first_time or ctx.user.step == "new":
        ctx.user.step = "idle"
        return await signing.welcome(ctx)
    said = _("From now on I will write in English.")
    if ctx.user.step not in signing.FLOW_STEPS:
        ctx.user.step = "idle"
        return [Reply(said, buttons=signing.menu_buttons(ctx))]
    return [Reply(said), *signing.reminder(ctx)]


async def fallback(ctx: Context, incoming: Incoming) -> list[Reply]:
    """Whatever no feature took: an unknown command, stray text or media outside the flow."""
    _ = ctx.gettext
    if incoming.kind is Kind.COMMAND:
        text = _("I don't know that command. Here is what I can do:")
        return [Reply(text), help_text(ctx)]
    if incoming.kind is Kind.BUTTON:
        return [Reply(_("That button is no longer active.")), *await signing.welcome(ctx)]
    if incoming.kind is Kind.OTHER:
        text = _("I can only read text. Please use the buttons or type a message.")
        return [Reply(text, buttons=signing.menu_buttons(ctx))]
    text = _("Thank you for your message. I can help you sign the petition or answer questions.")
    return [Reply(text, buttons=signing.menu_buttons(ctx))]
