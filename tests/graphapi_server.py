"""A fake Facebook Graph API: a real HTTP server on loopback that the Messenger channel calls.

It answers the two endpoints the bot uses (`/<version>/me/messages` and
`/<version>/me/messenger_profile`), checks what the real platform checks and the bot could
get wrong (the token, `messaging_type`, text and quick-reply limits), records every call,
and can answer the next calls with an error (a 429 once, a 500, a permanent 400).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

VERSION = "v21.0"
PAGE_ID = "1234567890"

Body = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One request the bot made."""

    endpoint: str  # "messages" or "messenger_profile"
    token: str | None
    body: Body
    status: int = 200


@dataclass(slots=True)
class _Failure:
    status: int
    code: int
    message: str
    retry_after: str | None
    times: int
    sender_actions: bool
    after: int = 0  # calls let through before the failures begin


@dataclass(slots=True)
class FakeGraphAPI:
    """`async with FakeGraphAPI(token=...) as graph:`; then point the bot at `graph.url`."""

    token: str
    version: str = VERSION
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _mids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_post("/{version}/me/{endpoint}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Shut the server down."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGraphAPI:
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

    def fail(
        self,
        endpoint: str,
        status: int,
        *,
        code: int = 100,
        message: str = "(#100) Invalid parameter",
        retry_after: str | None = None,
        times: int = 1,
        sender_actions: bool = False,
        after: int = 0,
    ) -> None:
        """Answer the next `times` calls to `endpoint` (messages, not typing) with this error,
        once `after` more of them have gone through."""
        failure = _Failure(status, code, message, retry_after, times, sender_actions, after)
        self._failures.setdefault(endpoint, []).append(failure)

    def accepted(self, endpoint: str = "messages") -> list[Body]:
        """The bodies the platform took (answered 200), oldest first."""
        return [c.body for c in self.calls if c.endpoint == endpoint and c.status == 200]

    def messages(self, psid: str | None = None) -> list[Body]:
        """The `message` objects delivered (not sender actions), optionally to one person."""
        return [
            body["message"]
            for body in self.accepted("messages")
            if "message" in body and (psid is None or body["recipient"]["id"] == psid)
        ]

    def actions(self, psid: str | None = None) -> list[str]:
        """The sender actions delivered (typing_on...)."""
        return [
            body["sender_action"]
            for body in self.accepted("messages")
            if "sender_action" in body and (psid is None or body["recipient"]["id"] == psid)
        ]

    def refused(self) -> list[Call]:
        """Calls answered with an error the fake made up because the call was wrong."""
        return [call for call in self.calls if call.status == 400 and call.body.get("_invalid")]

    async def wait_for(self, count: int, psid: str | None = None, timeout: float = 10) -> None:
        """Wait until `count` messages have been delivered (to `psid`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages(psid)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"waited {timeout}s for {count} message(s), got {len(self.messages(psid))}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # ------------------------------------------------------------ the bot's side

    async def _handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        token = request.query.get("access_token")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        call = Call(endpoint, token, body if isinstance(body, dict) else {})
        self.calls.append(call)
        self._changed.set()
        self._changed = asyncio.Event()
        if request.match_info["version"] != self.version:
            return self._error(call, 400, 2500, "Unknown path components")
        if token != self.token:
            return self._error(call, 400, 190, "Invalid OAuth access token.")
        pending = self._failures.get(endpoint)
        if pending and ("sender_action" not in call.body or pending[0].sender_actions):
            failure = pending[0]
        else:
            failure = None
        if failure is not None and failure.after > 0:
            failure.after -= 1
        elif failure is not None and pending:
            failure.times -= 1
            if failure.times <= 0:
                pending.pop(0)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return self._error(call, failure.status, failure.code, failure.message, headers)
        problem = _check(endpoint, call.body)
        if problem is not None:
            call.body["_invalid"] = problem
            return self._error(call, 400, 100, f"(#100) {problem}")
        if endpoint == "messenger_profile":
            return web.json_response({"result": "success"})
        recipient = call.body["recipient"]["id"]
        return web.json_response({"recipient_id": recipient, "message_id": f"m_{next(self._mids)}"})

    def _error(
        self,
        call: Call,
        status: int,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        call.status = status
        error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ax"}
        return web.json_response({"error": error}, status=status, headers=headers)


def _check(endpoint: str, body: Body) -> str | None:
    """What the real platform would refuse in this call, if anything."""
    if endpoint == "messenger_profile":
        known = {"get_started", "greeting", "persistent_menu"}
        return None if body and set(body) <= known else "unknown profile field"
    if endpoint != "messages":
        return "unknown endpoint"
    if not isinstance(body.get("recipient"), dict) or not body["recipient"].get("id"):
        return "recipient is required"
    if "sender_action" in body:
        return (
            None
            if body["sender_action"] in ("typing_on", "typing_off", "mark_seen")
            else ("bad sender_action")
        )
    if body.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return "messaging_type is required"
    message = body.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return "message text is required"
    if not message["text"].strip() or len(message["text"]) > 2000:
        return "text must be 1 to 2000 characters"
    quick = message.get("quick_replies", [])
    if len(quick) > 13:
        return "at most 13 quick replies"
    for option in quick:
        kind = option.get("content_type")
        if kind in ("user_phone_number", "user_email"):
            continue
        if kind != "text" or not option.get("payload"):
            return "quick reply needs content_type text and a payload"
        if not 1 <= len(option.get("title", "")) <= 20:
            return "quick reply title must be 1 to 20 characters"
    return None
