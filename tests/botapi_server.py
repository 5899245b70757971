"""A fake Telegram Bot API: a real HTTP server on loopback that the production bot talks to.

It speaks the Bot API's wire format (`/bot<token>/<method>`, JSON, urlencoded or multipart
bodies, `{"ok": ..., "result": ...}` answers), so the bot's own aiohttp session, form
encoding and response parsing are exercised, not replaced.

For broadcasts it behaves like the platform under load: sends can take `latency` seconds,
answer 429 with `retry_after` (`throttle`), 403 for chosen chats (`forbid`) and 502 at
random (`error_rate`); `deliveries` lists the messages it accepted, with its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Petition",
    "username": "petition_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# The real server never holds a long poll longer than asked; the fake also caps it so a
# test that forgets to push an update costs a second, not the bot's 10-second poll.
LONG_POLL_CAP = 1.0
NOT_IN_FAKE = "method not in fake"

Params = dict[str, Any]
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
BLOCKED = "Forbidden: bot was blocked by the user"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message the fake accepted: when its request arrived (time.monotonic), how, where."""

    at: float
    method: str
    chat_id: str
    text: str
    paid: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """A send the fake refused, and when its request arrived."""

    at: float
    method: str
    chat_id: str
    status: int


class FakeBotAPI:
    """`async with FakeBotAPI() as server:`; then point the bot at `server.url`."""

    def __init__(
        self,
        *,
        token: str | None = None,
        long_poll_cap: float = LONG_POLL_CAP,
        latency: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 1,
        record_calls: bool = True,
    ) -> None:
        self.token = token
        self.long_poll_cap = long_poll_cap
        self.latency = latency  # seconds before a send is answered
        self.error_rate = error_rate  # share of sends answered 502 Bad Gateway
        # A benchmark's hundreds of thousands of sends: only `deliveries` are kept.
        self.record_calls = record_calls
        self._random = random.Random(seed)
        self.deliveries: list[Delivery] = []
        self.refusals: list[Refusal] = []
        self._forbidden: dict[str, str] = {}
        self._throttled: list[int] = []
        self.url = ""
        self.calls: list[tuple[str, Params]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._failures: dict[str, tuple[int, str]] = {}
        self._closing = False
        # Replaced on every change, so a waiter holding the old one is woken exactly once
        # and `push_update` can stay a plain (non-async) call.
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._methods = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._true,
            "setWebhook": self._true,
            "setMyCommands": self._true,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "answerCallbackQuery": self._true,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "editMessageText": self._edit_text,
        }
        self._file_ids = itertools.count(1)
        # Bot API method names are case-insensitive.
        self._by_lower = {name.lower(): name for name in self._methods}

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Wake pending long polls and shut the server down."""
        self._closing = True
        self._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ the test's side

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; an update without `update_id` gets the next one."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._wake_pollers()
        return int(update["update_id"])

    def fail(
        self, method: str, status: int = 500, description: str = "Internal Server Error"
    ) -> None:
        """From now on answer `method` with this error instead of its result."""
        self._failures[method] = (status, description)

    def forbid(self, chat_id: int | str, description: str = BLOCKED) -> None:
        """Answer every send to this chat with 403 (the person blocked the bot)."""
        self._forbidden[str(chat_id)] = description

    def throttle(self, retry_after: int, times: int = 1, after: int = 0) -> None:
        """After `after` more sends, answer `times` sends with 429 Too Many Requests and
        `retry_after` seconds."""
        self._throttled += [0] * after + [retry_after] * times

    def delivered(self, chat_id: int | str | None = None) -> list[Delivery]:
        """The messages accepted so far (optionally to one chat), oldest first."""
        return [d for d in self.deliveries if chat_id is None or d.chat_id == str(chat_id)]

    def params(self, method: str) -> list[Params]:
        """The parameters of every call of `method`, oldest first."""
        return [params for name, params in self.calls if name == method]

    def sent(self, chat_id: int | None = None) -> list[Params]:
        """The sendMessage calls, optionally to one chat only."""
        return [
            params
            for params in self.params("sendMessage")
            if chat_id is None or str(params.get("chat_id")) == str(chat_id)
        ]

    def unexpected(self) -> list[tuple[str, Params]]:
        """Calls of methods the fake does not implement (the bot should make none)."""
        return [(name, params) for name, params in self.calls if name not in self._methods]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Params]:
        """Wait until `count` calls of `method` have arrived; return all calls of it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.params(method)) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [name for name, _params in self.calls]
                raise AssertionError(
                    f"waited {timeout}s for {count} {method} call(s), "
                    f"got {len(self.params(method))}; all calls: {seen}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calls_changed.wait(), remaining)
        return self.params(method)

    # ------------------------------------------------------------ the bot's side

    def _wake_pollers(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    def _record(self, method: str, params: Params) -> None:
        if self.record_calls:
            self.calls.append((method, params))
        self._calls_changed.set()
        self._calls_changed = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.token is not None and request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        asked = request.match_info["method"]
        method = self._by_lower.get(asked.lower(), asked)
        try:
            params = await _read_params(request)
        except ValueError as error:
            return _error(400, f"Bad Request: {error}")
        arrived = time.monotonic()
        self._record(method, params)
        if method in self._failures:
            return _error(*self._failures[method])
        handler = self._methods.get(method)
        if handler is None:
            return _error(400, NOT_IN_FAKE)
        if method in SEND_METHODS or method == "editMessageText":
            refused = await self._as_under_load(arrived, method, params)
            if refused is not None:
                return refused
        try:
            result = await handler(params)
        except (KeyError, ValueError) as error:
            return _error(400, f"Bad Request: {error}")
        if method in SEND_METHODS:
            text = str(params.get("text") or params.get("caption") or "")
            paid = str(params.get("allow_paid_broadcast", "")).lower() == "true"
            chat = str(params.get("chat_id"))
            self.deliveries.append(Delivery(arrived, method, chat, text, paid))
        return web.json_response({"ok": True, "result": result})

    async def _as_under_load(
        self, arrived: float, method: str, params: Params
    ) -> web.Response | None:
        """The platform's delays and refusals: latency, 429, 403 for some chats, random 5xx."""
        if self.latency:
            await asyncio.sleep(self.latency)
        chat = str(params.get("chat_id"))
        status, answer = 0, None
        retry_after = self._throttled.pop(0) if self._throttled else 0
        if retry_after:
            status = 429
            answer = _error(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        elif chat in self._forbidden and method in SEND_METHODS:
            status, answer = 403, _error(403, self._forbidden[chat])
        elif self.error_rate and self._random.random() < self.error_rate:
            status, answer = 502, _error(502, "Bad Gateway")
        if answer is not None:
            self.refusals.append(Refusal(arrived, method, chat, status))
        return answer

    async def _true(self, _params: Params) -> Any:
        return True

    async def _get_me(self, _params: Params) -> Any:
        return BOT_USER

    async def _get_updates(self, params: Params) -> Any:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(float(params.get("timeout") or 0), self.long_poll_cap)
        if offset > 0:
            # As on the real server, asking from `offset` confirms everything before it.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._updates and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_changed.wait(), remaining)
        if offset < 0:
            return self._updates[offset:][:limit]
        return self._updates[:limit]

    async def _send_message(self, params: Params) -> Any:
        text = params["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("message text is empty")
        return self._message(params, text=text)

    def _message(self, params: Params, **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": _private_chat(params["chat_id"]),
            **fields,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    def _file_id(self, params: Params, kind: str) -> str:
        # An upload comes as a file (the fake keeps its name and size), named directly or
        # through "attach://<field>"; a reuse comes as the file's id.
        sent = params.get(kind)
        if isinstance(sent, str) and sent.startswith("attach://"):
            sent = params.get(sent.removeprefix("attach://"))
        if isinstance(sent, str) and sent:
            return sent
        if isinstance(sent, dict) and sent.get("size"):
            return f"{kind}-file-{next(self._file_ids)}"
        raise ValueError(f"there is no {kind} in the request")

    async def _send_photo(self, params: Params) -> Any:
        file_id = self._file_id(params, "photo")
        sizes = [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 800,
                  "height": 600}]  # fmt: skip
        return self._message(params, photo=sizes)

    async def _send_document(self, params: Params) -> Any:
        sent = params.get("document")
        if isinstance(sent, str) and sent.startswith("attach://"):
            sent = params.get(sent.removeprefix("attach://"))
        file_id = self._file_id(params, "document")
        document = {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
        if isinstance(sent, dict) and sent.get("filename"):
            document["file_name"] = sent["filename"]
        return self._message(params, document=document)

    async def _edit_text(self, params: Params) -> Any:
        text = params["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("message text is empty")
        return {
            "message_id": int(params["message_id"]),
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": _private_chat(params["chat_id"]),
            "edit_date": int(time.time()),
            "text": text,
        }

    async def _edit_reply_markup(self, params: Params) -> Any:
        if "inline_message_id" in params:
            return True
        message: dict[str, Any] = {
            "message_id": int(params["message_id"]),
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": _private_chat(params["chat_id"]),
            "edit_date": int(time.time()),
            "text": "(edited)",
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            message["reply_markup"] = markup
        return message


def _private_chat(chat_id: Any) -> dict[str, Any]:
    try:
        return {"id": int(chat_id), "type": "private", "first_name": "Signer"}
    except (TypeError, ValueError):
        raise ValueError("chat not found") from None


def _error(status: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


def _decode(value: str) -> Any:
    # Form bodies carry objects and arrays JSON-encoded; scalars stay strings, as the real
    # server leaves their interpretation to each parameter.
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


async def _read_params(request: web.Request) -> Params:
    params: Params = {key: _decode(value) for key, value in request.query.items()}
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError as error:
            raise ValueError("can't parse JSON body") from error
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, str):
            params[key] = _decode(value)
        elif isinstance(value, web.FileField):  # the test only needs to know a file came
            params[key] = {"filename": value.filename, "size": len(value.file.read())}
        else:
            params[key] = _decode(bytes(value).decode())
    return params
