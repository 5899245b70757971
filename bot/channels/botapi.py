"""Telegram's Bot API without aiogram: the few calls background work makes, as HTTP posts on
one aiohttp session.

The broadcast worker and the shell commands send messages and never receive updates; they
need neither aiogram's dispatcher nor its several hundred pydantic models, whose import
alone costs seconds at every start. The Bot API is plain: a form (or multipart, with a
file) posted to `/bot<token>/<method>`, answered with `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": ..., "description": ..., "parameters": {"retry_after": ...}}`.
The keyboards are built here as the API's JSON, for this module and for aiogram's side.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.channels.outlet import Outcome
from bot.config import Settings
from handlers.base import Button, Reply

logger = logging.getLogger(__name__)

OFFICIAL = "https://api.telegram.org"
BROADCAST_TIMEOUT = 30  # seconds for one send: a slower one is retried later
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What the bot's own messages carry (aiogram's DefaultBotProperties on the bot's side):
# HTML, and no link previews where the method has them.
_CAPTION: dict[str, Any] = {"parse_mode": "HTML"}
_TEXT: dict[str, Any] = {**_CAPTION, "link_preview_options": {"is_disabled": True}}


class BotApiError(Exception):
    """A call Telegram refused, or an answer that is not the Bot API's."""

    def __init__(
        self, status: int, description: str, *, retry_after: float = 0.0, spoken: bool = True
    ) -> None:
        super().__init__(description)
        self.status = status  # the HTTP status, or 0 when no answer came
        self.description = description
        self.retry_after = retry_after
        self.spoken = spoken  # False: no answer, or one that is not the Bot API's


def keyboard(reply: Reply) -> dict[str, Any] | None:
    """The keyboard Telegram shows under a reply, as the Bot API's JSON."""
    buttons = tuple(tuple(row) for row in reply.buttons)
    return keyboard_for(buttons, reply.contact_label, reply.remove_keyboard)


@lru_cache(maxsize=1024)
def keyboard_for(
    buttons: tuple[tuple[Button, ...], ...], contact_label: str | None, remove_keyboard: bool
) -> dict[str, Any] | None:
    # The same keyboards recur for every signer and every recipient: built once.
    if contact_label:
        # A reply keyboard: the contact button is only allowed there, so the other
        # options come along as text buttons (their labels are matched as typed text).
        rows: list[list[dict[str, Any]]] = [[{"text": contact_label, "request_contact": True}]]
        rows += [[{"text": button.label} for button in row] for row in buttons]
        return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}
    if buttons:
        return {
            "inline_keyboard": [
                [{"text": b.label, "callback_data": b.payload} for b in row] for row in buttons
            ]
        }
    if remove_keyboard:
        return {"remove_keyboard": True}
    return None


def _field(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class BotApi:
    """Calls to one bot's Bot API over an aiohttp session of its own."""

    def __init__(
        self,
        token: str,
        base: str | None = None,
        *,
        connections: int = 100,
        timeout: float = BROADCAST_TIMEOUT,
    ) -> None:
        self._prefix = f"{(base or OFFICIAL).rstrip('/')}/bot{token}/"
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def url(self, method: str) -> str:
        """Where `method` is posted (it holds the token: never log it)."""
        return self._prefix + method

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    @staticmethod
    def form(fields: dict[str, Any]) -> bytes:
        """The urlencoded body of a call; None values are left out."""
        pairs = [(key, _field(value)) for key, value in fields.items() if value is not None]
        return urlencode(pairs).encode()

    async def post(self, url: str, body: bytes) -> Any:
        """Post a prepared form; the call's result. Raises BotApiError."""
        return await self._send(url, body, _FORM)

    async def call(
        self,
        method: str,
        fields: dict[str, Any],
        file: tuple[str, str, bytes] | None = None,
    ) -> Any:
        """Call `method` with `fields` (and a file: field name, file name, bytes); its
        result. Raises BotApiError."""
        if file is None:
            return await self._send(self.url(method), self.form(fields), _FORM)
        data = aiohttp.FormData()
        for key, value in fields.items():
            if value is not None:
                data.add_field(key, _field(value))
        name, filename, content = file
        data.add_field(name, content, filename=filename)
        return await self._send(self.url(method), data, None)

    async def _send(self, url: str, body: Any, headers: dict[str, str] | None) -> Any:
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                status, content = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise BotApiError(0, type(error).__name__, spoken=False) from error
        try:
            answer = json.loads(content)
            if not isinstance(answer, dict):
                raise TypeError
        except (ValueError, TypeError):
            # A proxy's error page, a half-written answer: not the Bot API speaking.
            message = f"HTTP {status}, an answer that is not the Bot API's"
            raise BotApiError(status, message, spoken=False) from None
        if answer.get("ok") is True and "result" in answer:
            return answer["result"]
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        code = answer.get("error_code")
        raise BotApiError(
            code if isinstance(code, int) else status,
            str(answer.get("description") or f"HTTP {status}"),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else 0.0,
        )

    async def close(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()


def outcome_of(error: BotApiError) -> Outcome:
    """What a refused send means for a broadcast row."""
    if error.status == 429:
        return Outcome("again", error=error.description, retry_after=error.retry_after or 1.0)
    if error.status == 403:  # blocked the bot, or the account is gone
        return Outcome("blocked", error=error.description)
    if error.status in (401, 404):
        # The token is wrong: nobody can be reached. Hold everything, try now and then.
        logger.error("Telegram refuses the bot token; broadcasts wait")
        return Outcome("again", error=error.description, retry_after=60.0)
    if not error.spoken or error.status >= 500:
        return Outcome("retry", error=error.description)
    return Outcome("failed", error=error.description)  # "chat not found", a bad file id...


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One version of a broadcast, ready to go: everyone gets the same form but the chat."""

    reply: Reply  # held, so the cache key (its id) stays its own
    url: str
    form: bytes  # the urlencoded fields, without chat_id


class TelegramOutlet:
    """Broadcasts to Telegram chats, and the admins' progress messages (bot/workers/broadcast.py).

    A broadcast sends the same message to thousands: its form is built once, and each send
    only puts the chat id in front of it.
    """

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self._prepared: dict[tuple[int, bool], _Prepared] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, connections: int = 100) -> TelegramOutlet:
        """An outlet of its own, with room for `connections` sends at once."""
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        token = settings.telegram_bot_token.get_secret_value()
        return cls(BotApi(token, settings.telegram_api_url, connections=connections))

    def _prepare(self, reply: Reply, paid: bool) -> _Prepared:
        found = self._prepared.get((id(reply), paid))
        if found is not None and found.reply is reply:
            return found
        if len(self._prepared) > 64:  # earlier broadcasts' versions
            self._prepared.clear()
        method, fields = broadcast_call(reply, paid=paid)
        found = _Prepared(reply, self.api.url(method), self.api.form(fields))
        self._prepared[(id(reply), paid)] = found
        return found

    async def send(self, external_id: str, reply: Reply, *, paid: bool, resume: int = 0) -> Outcome:
        """Send one broadcast message; what Telegram said, as an `Outcome` (never raises).
        It is one message here (4,096 characters), so there are no parts to resume."""
        prepared = self._prepare(reply, paid)
        try:
            body = b"chat_id=%d&" % int(external_id) + prepared.form
            result = await self.api.post(prepared.url, body)
            return Outcome("sent", message_id=str(result["message_id"]))
        except BotApiError as error:
            return outcome_of(error)
        except (KeyError, TypeError, ValueError):
            return Outcome("retry", error="an answer that is not the Bot API's")
        except OSError as error:
            return Outcome("retry", error=type(error).__name__)

    async def post(self, chat: str, text: str) -> str | None:
        """Send an admin a message; its id, or None (logged)."""
        try:
            sent = await self.api.call("sendMessage", {"chat_id": chat, "text": text, **_TEXT})
            return str(sent["message_id"])
        except (BotApiError, KeyError, TypeError, OSError) as error:
            logger.warning("a broadcast report could not be sent: %s", _why(error))
            return None

    async def edit(self, chat: str, message_id: str, text: str) -> None:
        """Replace the text of an admin's progress message (failures are logged)."""
        fields = {"chat_id": chat, "message_id": message_id, "text": text, **_TEXT}
        try:
            await self.api.call("editMessageText", fields)
        except BotApiError as error:
            if "not modified" not in error.description:
                logger.warning("a broadcast report could not be edited: %s", error.description)
        except OSError as error:
            logger.warning("a broadcast report could not be edited: %s", _why(error))

    async def upload(self, chat: str, reply: Reply) -> str:
        """Send `reply` with its file (`attachment.data`) to one chat: the file's id on
        Telegram, to reuse for every recipient. Raises BotApiError when refused."""
        attachment = reply.attachment
        assert attachment is not None
        assert attachment.data is not None
        fields = {"chat_id": chat, "caption": reply.text or None, **_CAPTION}
        fields["reply_markup"] = keyboard(reply)
        if attachment.kind == "photo":
            file = ("photo", attachment.filename, attachment.data)
            sent = await self.api.call("sendPhoto", fields, file)
            sizes = sent.get("photo") if isinstance(sent, dict) else None
            if not sizes:
                raise BotApiError(200, "Telegram kept no photo")
            return str(sizes[-1]["file_id"])
        file = ("document", attachment.filename, attachment.data)
        sent = await self.api.call("sendDocument", fields, file)
        document = sent.get("document") if isinstance(sent, dict) else None
        if not document:
            raise BotApiError(200, "Telegram kept no document")
        return str(document["file_id"])

    async def close(self) -> None:
        """Close the connections."""
        await self.api.close()


def _why(error: Exception) -> str:
    return error.description if isinstance(error, BotApiError) else type(error).__name__


def broadcast_call(reply: Reply, *, paid: bool) -> tuple[str, dict[str, Any]]:
    """The Bot API call for one broadcast message, without its chat: a text, or a photo or
    document already on Telegram with its caption, and the stop button; `paid` lifts the
    rate limit (allow_paid_broadcast)."""
    extra: dict[str, Any] = {"reply_markup": keyboard(reply)}
    if paid:
        extra["allow_paid_broadcast"] = True
    attachment = reply.attachment
    if attachment is not None and attachment.file_id is not None:
        caption = {"caption": reply.text or None, **_CAPTION, **extra}
        if attachment.kind == "photo":
            return "sendPhoto", {"photo": attachment.file_id, **caption}
        return "sendDocument", {"document": attachment.file_id, **caption}
    return "sendMessage", {"text": reply.text, **_TEXT, **extra}
