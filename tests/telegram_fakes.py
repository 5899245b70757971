"""A Bot API session that answers in memory and fails on anything unexpected, and a person."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetMe,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    Document,
    InlineKeyboardMarkup,
    Message,
    PhotoSize,
    ReplyKeyboardMarkup,
    Sticker,
    Update,
    User,
)

BOT_USERNAME = "petition_test_bot"
_update_ids = itertools.count(1)


class RecordingSession(BaseSession):
    """Records every Bot API call; a call the bot should not make fails the test."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._message_ids = itertools.count(1000)

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.calls.append(method)
        if isinstance(method, SendMessage):
            return Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                text=method.text,
            )
        if isinstance(method, SendDocument):
            # A file the bot uploads (an export): kept on the call, in `documents()`.
            return Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                document=Document(file_id="d1", file_unique_id="d1"),
                caption=method.caption,
            )
        if isinstance(method, SendPhoto):
            # A picture the bot sends (a chart, a broadcast's photo): in `photos()`.
            file_id = method.photo if isinstance(method.photo, str) else "p1"
            return Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                photo=[PhotoSize(file_id=file_id, file_unique_id=file_id, width=8, height=8)],
                caption=method.caption,
            )
        if isinstance(method, AnswerCallbackQuery | SetMyCommands | DeleteWebhook):
            return True
        if isinstance(method, GetMe):
            return User(id=42, is_bot=True, first_name="Petition", username=BOT_USERNAME)
        raise AssertionError(f"unexpected Bot API call: {type(method).__name__}")

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no downloads expected")

    async def close(self) -> None:
        return None

    def sent(self) -> list[SendMessage]:
        """The messages sent so far."""
        return [call for call in self.calls if isinstance(call, SendMessage)]

    def photos(self) -> list[SendPhoto]:
        """The photos sent so far (`call.photo.data` holds the bytes uploaded)."""
        return [call for call in self.calls if isinstance(call, SendPhoto)]

    def documents(self) -> list[SendDocument]:
        """The files sent so far (`call.document.data` holds the bytes uploaded)."""
        return [call for call in self.calls if isinstance(call, SendDocument)]


class FakeUser:
    """A person in a private chat: `send(text)`, `click(label)`; `seen` is what came back."""

    def __init__(
        self, dispatcher: Dispatcher, bot: Bot, session: RecordingSession, user_id: int
    ) -> None:
        self.dispatcher, self.bot, self.session = dispatcher, bot, session
        self.user = User(id=user_id, is_bot=False, first_name="Signer")
        self.chat = Chat(id=user_id, type="private")
        self.seen: list[SendMessage] = []
        self._message_ids = itertools.count(1)

    def _message(self, **fields: Any) -> Message:
        return Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=self.chat,
            from_user=self.user,
            **fields,
        )

    async def feed(self, update: Update) -> list[SendMessage]:
        """Feed one update to the dispatcher; return what the bot sent in answer."""
        before = len(self.session.sent())
        await self.dispatcher.feed_update(self.bot, update)
        # What the bot finishes after the update (/stats, a poster) arrives before the
        # person looks, as it would a moment later on a phone.
        later = [t for t in asyncio.all_tasks() if t.get_name() == "conversation-follow-up"]
        await asyncio.gather(*later, return_exceptions=True)
        self.seen = [m for m in self.session.sent()[before:] if m.chat_id == self.chat.id]
        return self.seen

    async def send(self, text: str, **extra: Any) -> list[SendMessage]:
        """Type a message."""
        return await self.feed(
            Update(update_id=next(_update_ids), message=self._message(text=text, **extra))
        )

    async def send_update(self, update: Update) -> list[SendMessage]:
        """Feed a prepared update (to send the same one twice)."""
        return await self.feed(update)

    def text_update(self, text: str) -> Update:
        """An update carrying a typed message, not yet sent."""
        return Update(update_id=next(_update_ids), message=self._message(text=text))

    async def sticker(self) -> list[SendMessage]:
        """Send a sticker."""
        sticker = Sticker(
            file_id="s1", file_unique_id="u1", type="regular", width=512, height=512,
            is_animated=False, is_video=False,
        )  # fmt: skip
        return await self.feed(
            Update(update_id=next(_update_ids), message=self._message(sticker=sticker))
        )

    async def share_contact(self, phone: str, *, own: bool = True) -> list[SendMessage]:
        """Press the "share my phone number" button (or send someone else's contact card)."""
        contact = Contact(
            phone_number=phone, first_name="X", user_id=self.user.id if own else self.user.id + 1
        )
        return await self.feed(
            Update(update_id=next(_update_ids), message=self._message(contact=contact))
        )

    def callback_update(self, payload: str) -> Update:
        """An update for pressing a button carrying `payload`."""
        query = CallbackQuery(
            id=str(next(_update_ids)),
            from_user=self.user,
            chat_instance="ci",
            data=payload,
            message=self._message(text="(an earlier message)"),
        )
        return Update(update_id=next(_update_ids), callback_query=query)

    async def press(self, payload: str) -> list[SendMessage]:
        """Press a button by its payload (also one from an old message)."""
        return await self.feed(self.callback_update(payload))

    def buttons(self) -> dict[str, str]:
        """label → payload of the inline buttons under the last answer."""
        found: dict[str, str] = {}
        for message in self.seen:
            if isinstance(message.reply_markup, InlineKeyboardMarkup):
                for row in message.reply_markup.inline_keyboard:
                    for button in row:
                        found[button.text] = button.callback_data or ""
        return found

    def keyboard(self) -> list[str]:
        """Labels of the reply keyboard under the last answer, if any."""
        labels: list[str] = []
        for message in self.seen:
            if isinstance(message.reply_markup, ReplyKeyboardMarkup):
                labels += [button.text for row in message.reply_markup.keyboard for button in row]
        return labels

    async def click(self, label: str) -> list[SendMessage]:
        """Press the button the person sees with this label."""
        buttons = self.buttons()
        assert label in buttons, f"no button {label!r}; there are {list(buttons)}"
        return await self.press(buttons[label])

    def text(self) -> str:
        """All text of the last answer."""
        return "\n".join(message.text for message in self.seen)
