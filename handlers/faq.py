"""Questions about voting from abroad: the topic menu, typed questions, unanswered ones."""

from __future__ import annotations

import html

from db import queries
from handlers import signing
from handlers.base import Button, Context, Incoming, Kind, Reply
from handlers.reading import validation
from handlers.reading.faq_content import Topic
from words.text import fold

# Shorter texts ("hi", "ok", "thanks") are not questions worth an organiser's time.
WORTH_RECORDING = 10


def menu(ctx: Context, intro: str | None = None) -> Reply:
    """Every topic as a button, in the reader's language."""
    _ = ctx.gettext
    buttons = [
        [Button(topic.text(ctx.language).question, f"f:{topic.id}")]
        for topic in ctx.content.faq.topics
    ]
    buttons.append([Button(_("✍️ Sign the petition"), "go:sign")])
    return Reply(intro or _("Questions people ask. Choose one:"), buttons)


def answer(ctx: Context, topic: Topic, *, typed: bool = False) -> Reply:
    """A topic's answer, with the way back to the questions and on to signing."""
    _ = ctx.gettext
    text = topic.text(ctx.language)
    heading = f"<b>{html.escape(text.question)}</b>"
    if typed:
        # Say which question is answered, so a wrong guess is plain to see.
        heading = _("You asked about: {question}").format(question=heading)
    buttons = [[Button(_("← All questions"), "go:faq")]]
    if ctx.user.signature_id is None:
        buttons.append([Button(_("✍️ Sign the petition"), "go:sign")])
    return Reply(f"{heading}\n\n{text.answer}", buttons)


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """/faq, the questions button, a topic button, and typed questions outside the flow."""
    if incoming.kind is Kind.COMMAND and incoming.command == "faq":
        return [menu(ctx), *signing.reminder(ctx)]
    if incoming.kind is Kind.BUTTON and incoming.text == "go:faq":
        return [menu(ctx), *signing.reminder(ctx)]
    if incoming.kind is Kind.BUTTON and incoming.text.startswith("f:"):
        topic = ctx.content.faq.by_id.get(incoming.text.removeprefix("f:"))
        if topic is None:  # a button from before the FAQ file changed
            return [menu(ctx, ctx.gettext("That question is no longer in the list.")),
                    *signing.reminder(ctx)]  # fmt: skip
        return [answer(ctx, topic), *signing.reminder(ctx)]
    if incoming.kind is Kind.TEXT and ctx.user.step not in signing.FLOW_STEPS:
        return await _typed_question(ctx, incoming.text)
    return None


async def _typed_question(ctx: Context, text: str) -> list[Reply]:
    _ = ctx.gettext
    faq = ctx.content.faq
    sure, close = faq.matcher.answer(text)
    if sure is not None:
        return [answer(ctx, faq.by_id[sure.topic], typed=True)]
    if close:
        buttons = [
            [Button(faq.by_id[match.topic].text(ctx.language).question, f"f:{match.topic}")]
            for match in close
        ]
        buttons.append([Button(_("← All questions"), "go:faq")])
        return [Reply(_("Is your question one of these?"), buttons)]
    if len(fold(text)) >= WORTH_RECORDING:
        await queries.record_unanswered(
            ctx.session,
            user_id=ctx.user.id,
            text=validation.mask_contacts(text),
            language=ctx.language,
        )
        intro = _("I don't have an answer to that yet; I have passed your question on to the "
                  "organisers. Here are the questions I can answer:")  # fmt: skip
        return [menu(ctx, intro)]
    intro = _("Thank you for your message. I can help you sign the petition or answer these "
              "questions:")  # fmt: skip
    return [menu(ctx, intro)]
