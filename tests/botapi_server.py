"""A fake Telegram Bot API: a real HTTP server on loopback that the production bot talks to.

It speaks the Bot API's wire format (`/bot<token>/<method>`, JSON, urlencoded or multipart
bodies, `{"ok": ..., "result": ...}` answers), so the bot's own aiohttp session, form
encoding and response parsing are exercised, not replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
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


class FakeBotAPI:
    """`async with FakeBotAPI() as server:`; then point the bot at `server.url`."""

    def __init__(self, *, token: str | None = None, long_poll_cap: float = LONG_POLL_CAP) -> None:
        self.token = token
        self.long_poll_cap = long_poll_cap
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
            "answerCallbackQuery": self._true,
            "editMessageReplyMarkup": self._edit_reply_markup,
        }
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
        self._record(method, params)
        if method in self._failures:
            return _error(*self._failures[method])
        handler = self._methods.get(method)
        if handler is None:
            return _error(400, NOT_IN_FAKE)
        try:
            result = await handler(params)
        except (KeyError, ValueError) as error:
            return _error(400, f"Bad Request: {error}")
        return web.json_response({"ok": True, "result": result})

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
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": _private_chat(params["chat_id"]),
            "text": text,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

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


def _error(status: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": status, "description": description}, status=status
    )


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
