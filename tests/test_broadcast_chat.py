"""Broadcasts in the chat, through the production dispatcher: an admin composes one (a
formatted text, a photo with its caption, the audience, the count, the previews, the
confirmation), lists and cancels them; anyone stops the news with /stop or the button under
a broadcast, and gets them back; blocking the bot opts a person out."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiogram.types import (
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberUpdated,
    Message,
    MessageEntity,
    PhotoSize,
    Update,
)
from aiogram.types import User as TelegramUser
from sqlalchemy import select

from bot.app import App
from db import broadcasts as store
from db.models import AuditEntry, Broadcast, Signature, User, utcnow
from handlers.news import STOP_PAYLOAD
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser, RecordingSession
from tests.test_broadcast import add_many, add_person

_ids = itertools.count(900_000)


async def organiser(people: Callable[[int], FakeUser]) -> FakeUser:
    someone = people(ADMIN)
    await someone.send("/start")
    await someone.press("l:en")
    return someone


async def send_photo(someone: FakeUser, file_id: str, caption: str, bold: int) -> None:
    """The admin sends a photo with a caption whose first `bold` characters are bold."""
    message = Message(
        message_id=next(_ids),
        date=datetime.now(UTC),
        chat=someone.chat,
        from_user=someone.user,
        photo=[PhotoSize(file_id=f"{file_id}-small", file_unique_id="s", width=90, height=90),
               PhotoSize(file_id=file_id, file_unique_id="b", width=1280, height=960)],
        caption=caption,
        caption_entities=[MessageEntity(type="bold", offset=0, length=bold)],
    )  # fmt: skip
    await someone.feed(Update(update_id=next(_ids), message=message))


async def seed_recipients(app: App) -> None:
    async with app.conversation.sessions() as session, session.begin():
        await add_person(session, "501", signed=("US", "California", "02"))
        await add_person(session, "502", language="en", signed=("US", "Washington", "12"))
        await add_person(session, "503", signed=("FR", None, "17"))
        await add_person(session, "504", language="en")  # news without signing
        await add_person(session, "505", opted_in=False, signed=("US", "California", "02"))


async def the_broadcast(app: App) -> Broadcast:
    async with app.conversation.sessions() as session:
        return (await session.execute(select(Broadcast))).scalar_one()


async def test_an_admin_composes_a_bilingual_photo_broadcast_to_a_segment(
    admin_app: App, people: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    await seed_recipients(admin_app)
    admin = await organiser(people)

    await admin.send("/broadcast")
    assert "A new broadcast" in admin.text()
    assert set(admin.buttons()) == {"Skip", "Cancel"}
    await admin.send("ព័ត៌មាន ថ្មី", entities=[MessageEntity(type="bold", offset=0, length=7)])
    assert "Now send the same message in English" in admin.text()
    await send_photo(admin, "photo-big", "Happy New Year from CEROC", bold=14)

    assert "Who should receive it?" in admin.text()
    assert "4 people match now." in admin.text()  # everyone who asked for news
    await admin.click("Signers only")
    assert "3 people match now." in admin.text()
    await admin.send("country=US region=California, Washington")
    assert "Living in: California (United States), Washington (United States)" in admin.text()
    assert "2 people match now." in admin.text()
    await admin.send("country=Narnia")
    assert "I do not know the country “Narnia”." in admin.text()

    before = len(session.photos())
    await admin.click("✅ Continue")
    shown = admin.text()
    assert "This broadcast will go to 2 people:" in shown
    assert "• ភាសាខ្មែរ version: 1" in shown
    assert "• English version: 1" in shown
    # The Khmer version, as its readers will see it: formatted, with the stop button.
    [khmer] = [m for m in admin.seen if m.text.startswith("<b>ព័ត៌មាន</b>")]
    assert khmer.text == "<b>ព័ត៌មាន</b> ថ្មី"
    [[stop]] = khmer.reply_markup.inline_keyboard  # type: ignore[union-attr]
    assert stop.callback_data == STOP_PAYLOAD
    [photo] = session.photos()[before:]
    assert photo.photo == "photo-big"  # the largest size, by its id: no upload
    assert photo.caption == "<b>Happy New Year</b> from CEROC"
    assert photo.reply_markup.inline_keyboard[0][0].callback_data == STOP_PAYLOAD  # type: ignore[union-attr]
    assert "Send it now to 2 people?" in shown

    await admin.click("📣 Send now")
    assert "Broadcast #1 starts within a few seconds" in admin.text()
    broadcast = await the_broadcast(admin_app)
    assert broadcast.status == "scheduled"
    assert broadcast.versions["km"] == {"kind": "text", "text": "<b>ព័ត៌មាន</b> ថ្មី"}
    assert broadcast.versions["en"]["file_id"] == "photo-big"
    assert broadcast.audience["regions"] == [["US", "California"], ["US", "Washington"]]
    assert broadcast.audience["signers_only"] is True
    assert (broadcast.report_chat, broadcast.total) == (str(ADMIN), 2)
    async with admin_app.conversation.sessions() as session:
        entry = (await session.execute(select(AuditEntry))).scalars().all()[-1]
    assert (entry.action, entry.detail["recipients"], entry.detail["broadcast"]) == (
        "broadcast", 2, 1)  # fmt: skip
    async with admin_app.conversation.sessions() as session, session.begin():
        assert await store.start_due(session, now=utcnow()) == [1]
    async with admin_app.conversation.sessions() as session:
        rows = await session.execute(select(store._OUTBOX.c.external_id))
        assert sorted(rows.scalars()) == ["501", "502"]


async def test_above_1000_the_number_is_typed_and_a_time_can_be_chosen(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    await add_many(admin_app, 1001)
    admin = await organiser(people)
    await admin.send("/broadcast")
    await admin.click("Skip")  # no Khmer version
    assert "Skip" not in admin.buttons()  # one version is needed
    await admin.send("News & more <soon>")
    assert "1,001 people match now." in admin.text()
    await admin.click("✅ Continue")
    assert "• ភាសាខ្មែរ version" not in admin.text()
    assert "• English version: 1,001" in admin.text()
    assert "News &amp; more &lt;soon&gt;" in admin.text()  # typed text is escaped
    assert "To confirm, type the number of recipients: 1,001" in admin.text()
    assert "📣 Send now" not in admin.buttons()

    await admin.send("1000")
    assert "That is not the number of recipients." in admin.text()
    await admin.click("🕗 Send later")
    await admin.send("tomorrow")
    assert "I could not read that date, time and time zone." in admin.text()
    await admin.send("2020-01-01 08:00")
    assert "That time has already passed." in admin.text()
    local = (datetime.now(UTC) + timedelta(days=30)).astimezone().replace(tzinfo=None)
    day = local.strftime("%Y-%m-%d")
    await admin.send(f"{day} 08:00 America/Los_Angeles")
    assert "to 1,001 people?" in admin.text()
    assert "08:00 (America/Los_Angeles)" in admin.text()
    await admin.send("1,001")
    assert "Broadcast #1 is scheduled for" in admin.text()
    broadcast = await the_broadcast(admin_app)
    assert broadcast.status == "scheduled"
    assert broadcast.scheduled_for is not None
    at = store.as_utc(broadcast.scheduled_for)
    assert (at.hour, at.minute) in ((15, 0), (16, 0))  # 08:00 in Los Angeles, in UTC


async def test_broadcasts_are_listed_and_cancelled_by_admins_only(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    await seed_recipients(admin_app)
    admin = await organiser(people)
    await admin.send("/broadcasts")
    assert "No broadcast yet." in admin.text()
    await admin.send("/broadcast")
    await admin.send("News")
    await admin.click("Skip")
    await admin.click("✅ Continue")
    await admin.click("📣 Send now")

    stranger = people(888)
    await stranger.send("/start")
    await stranger.press("l:en")
    await stranger.send("/broadcast")
    assert "I don't know that command" in stranger.text()
    await stranger.press("bx:1")  # a forged cancel button
    assert "That button is from an earlier message." in stranger.text()
    assert (await the_broadcast(admin_app)).status == "scheduled"

    await admin.send("/broadcasts")
    assert "#1</b> · scheduled" in admin.text()
    assert "about 4 people" in admin.text()
    await admin.click("Cancel #1")
    assert "Broadcast #1 is cancelled; nothing more will go out." in admin.text()
    assert (await the_broadcast(admin_app)).status == "cancelled"
    await admin.send("/broadcasts cancel 1")
    assert "Broadcast #1 is not scheduled or going out." in admin.text()
    await admin.send("/broadcasts")
    assert "#1</b> · cancelled" in admin.text()
    assert "Cancel #1" not in admin.buttons()


async def test_cancel_discards_a_draft_and_other_commands_keep_working(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    admin = await organiser(people)
    await admin.send("/broadcast")
    await admin.sticker()
    assert "Please send a text, a photo or a document." in admin.text()
    await admin.send("/help")
    assert "For organisers:" in admin.text()
    assert "A new broadcast" in admin.text()  # the pending question again
    await admin.send("/cancel")
    assert "The broadcast was discarded; nothing was sent." in admin.text()
    assert await the_broadcast_count(admin_app) == 0
    await admin.send("Hello")  # no longer composing: a question for the FAQ
    assert "A new broadcast" not in admin.text()


async def the_broadcast_count(app: App) -> int:
    async with app.conversation.sessions() as session:
        return len((await session.execute(select(Broadcast.id))).all())


# ---------------------------------------------------------------- opting out and back in


async def news(app: App, external_id: str) -> tuple[bool, bool | None, bool]:
    """(the person wants news, their signature says so, they are marked unreachable)."""
    async with app.conversation.sessions() as session:
        user = (
            await session.execute(select(User).where(User.external_id == external_id))
        ).scalar_one()
        signed = await session.execute(
            select(Signature.updates_opt_in).where(Signature.user_id == user.id)
        )
        return user.updates_opt_in, signed.scalar_one_or_none(), user.unreachable_at is not None


async def sign_with_news(someone: FakeUser) -> None:
    await someone.send("/start")
    await someone.press("l:en")
    for payload in ("go:sign", "c:y"):
        await someone.press(payload)
    await someone.send("Sok Dara")
    for payload in ("co:US", "r:skip", "b:12", "ct:skip", "u:y", "rv:ok"):
        await someone.press(payload)


async def test_the_button_under_a_broadcast_and_stop_end_the_news(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    signer = people(601)
    await sign_with_news(signer)
    assert await news(admin_app, "601") == (True, True, False)
    await signer.press(STOP_PAYLOAD)  # the button under a broadcast
    assert "You will not receive news from the campaign any more." in signer.text()
    assert await news(admin_app, "601") == (False, False, False)
    await signer.click("🔔 Receive news again")
    assert await news(admin_app, "601") == (True, True, False)
    await signer.send("/stop")
    assert await news(admin_app, "601") == (False, False, False)
    await signer.send("/start")  # signers see the button under their signature
    assert "🔔 Receive news again" in signer.buttons()


async def test_start_again_offers_news_and_blocking_the_bot_opts_out(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    visitor = people(602)
    await visitor.send("/start")
    await visitor.press("l:en")
    await visitor.send("/start")
    assert "Would you like news from the campaign now and then?" in visitor.text()
    await visitor.click("🔔 Receive news")
    assert await news(admin_app, "602") == (True, None, False)
    await visitor.send("/start")
    assert "Would you like news" not in visitor.text()  # they have them

    # They block the bot: Telegram tells us with a my_chat_member update.
    bot_user = TelegramUser(id=42, is_bot=True, first_name="Petition")
    blocked = ChatMemberUpdated(
        chat=visitor.chat, from_user=visitor.user, date=datetime.now(UTC),
        old_chat_member=ChatMemberMember(user=bot_user),
        new_chat_member=ChatMemberBanned(user=bot_user, until_date=datetime.fromtimestamp(0, UTC)),
    )  # fmt: skip
    assert await visitor.feed(Update(update_id=next(_ids), my_chat_member=blocked)) == []
    assert await news(admin_app, "602") == (False, None, True)
    async with admin_app.conversation.sessions() as session:
        assert await store.count_audience(session, audience=store.Audience()) == {}

    # They come back and ask for news: reachable again.
    await visitor.send("/start")
    await visitor.click("🔔 Receive news")
    assert await news(admin_app, "602") == (True, None, False)
