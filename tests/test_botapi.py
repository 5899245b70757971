"""Background work talks to Telegram without aiogram: what each answer becomes, over HTTP.

The broadcast worker and the shell commands send with `bot/channels/botapi.py` (a few form
posts on aiohttp), so they start without importing aiogram's models. Every answer a send
can get, including a proxy's HTML error page, becomes an `Outcome`; nothing raises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.channels.botapi import BotApi, TelegramOutlet
from handlers.base import Button, Reply
from tests.botapi_server import FakeBotAPI
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN) as fake:
        yield fake


def outlet_for(url: str) -> TelegramOutlet:
    return TelegramOutlet(BotApi(TOKEN, url, connections=4, timeout=2))


async def test_a_broadcast_goes_out_as_the_bot_api_expects(server: FakeBotAPI) -> None:
    outlet = outlet_for(server.url)
    reply = Reply("<b>សួស្ដី</b> ឆ្នាំថ្មី", [[Button("🔕 No more news", "news:off")]])
    try:
        first = await outlet.send("501", reply, paid=False)
        second = await outlet.send("502", reply, paid=True)
    finally:
        await outlet.close()
    assert first.status == second.status == "sent"
    assert first.message_id is not None
    calls = server.sent()
    assert [str(call["chat_id"]) for call in calls] == ["501", "502"]
    assert calls[0]["text"] == "<b>សួស្ដី</b> ឆ្នាំថ្មី"
    assert calls[0]["parse_mode"] == "HTML"
    assert calls[0]["link_preview_options"] == {"is_disabled": True}
    assert calls[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "🔕 No more news", "callback_data": "news:off"}]]
    }
    assert "allow_paid_broadcast" not in calls[0]
    assert calls[1]["allow_paid_broadcast"] in (True, "true")


async def test_refusals_become_outcomes(server: FakeBotAPI) -> None:
    outlet = outlet_for(server.url)
    reply = Reply("News")
    server.forbid(601)
    server.throttle(retry_after=7, times=1)
    try:
        throttled = await outlet.send("600", reply, paid=False)
        blocked = await outlet.send("601", reply, paid=False)
        server.fail("sendMessage", 400, "Bad Request: chat not found")
        refused = await outlet.send("602", reply, paid=False)
        server.fail("sendMessage", 502, "Bad Gateway")
        later = await outlet.send("603", reply, paid=False)
    finally:
        await outlet.close()
    assert (throttled.status, throttled.retry_after) == ("again", 7.0)
    assert blocked.status == "blocked"
    assert (refused.status, refused.error) == ("failed", "Bad Request: chat not found")
    assert later.status == "retry"


async def proxy_page(_request: web.Request) -> web.Response:
    return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>")


async def not_a_result(_request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(["ok"]), content_type="application/json")


@pytest.mark.parametrize("handler", [proxy_page, not_a_result])
async def test_an_answer_that_is_not_the_bot_apis_is_retried_not_raised(
    handler: object, unused_tcp_port: int
) -> None:
    web_app = web.Application()
    web_app.router.add_post("/{path:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    outlet = outlet_for(f"http://127.0.0.1:{unused_tcp_port}")
    try:
        outcome = await outlet.send("700", Reply("News"), paid=False)
        reported = await outlet.post("700", "progress")
        await outlet.edit("700", "1", "progress")  # logged, not raised
    finally:
        await outlet.close()
        await runner.cleanup()
    assert outcome.status == "retry"
    assert reported is None


async def test_nobody_listening_is_a_retry(unused_tcp_port: int) -> None:
    outlet = outlet_for(f"http://127.0.0.1:{unused_tcp_port}")
    try:
        outcome = await outlet.send("700", Reply("News"), paid=False)
    finally:
        await outlet.close()
    assert outcome.status == "retry"


def test_the_worker_and_the_shell_start_without_aiogram() -> None:
    # What `petitionbot broadcast worker` and the shell commands import, in a fresh process.
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        "from bot.workers.broadcast import standalone_worker\n"
        "from bot.channels.botapi import TelegramOutlet\n"
        "from bot.channels.messenger import MessengerOutlet\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'aiogram'))\n"
    )
    found = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
