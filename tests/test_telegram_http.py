"""The Telegram channel over real HTTP on loopback: long polling and webhook, no internet.

The production bot (its aiohttp session, form encoding, aiogram's polling loop and webhook
handler) talks to `tests.botapi_server.FakeBotAPI`, so what is checked here is what goes
over the wire, not what a mocked session was handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Dispatcher
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from yarl import URL

from bot.app import App, build_app
from bot.channels import messenger, telegram
from bot.channels.telegram import COMMANDS, build_bot, build_dispatcher, build_webhook_app
from bot.config import Settings
from db.models import Signature, User
from handlers.reading import places
from tests.botapi_server import BOT_USER, FakeBotAPI
from tests.conftest import DATA_KEY, HASH_KEY

TOKEN = "123456:" + "A" * 35
SECRET = "s3cret-token-1234567890"
VERIFY_TOKEN = "verify-me-4815162342"
SHARE_LINK = f"https://t.me/{BOT_USER['username']}?start="
_ids = itertools.count(700_000)

MakeApp = Callable[..., Awaitable[App]]
Params = dict[str, Any]


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API, listening on 127.0.0.1; it accepts only the test token."""
    async with FakeBotAPI(token=TOKEN) as fake:
        yield fake
        # A method the fake does not know is a call the real Bot API would refuse too.
        assert fake.unexpected() == []


@pytest.fixture
async def make_app(server: FakeBotAPI, tmp_path: Path) -> AsyncIterator[MakeApp]:
    """Build the app with the production factory, pointed at the fake; closed at the end."""
    built: list[App] = []

    async def make(**overrides: Any) -> App:
        values: dict[str, Any] = {
            "telegram_bot_token": TOKEN,
            "telegram_api_url": server.url,
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3",
            "data_key": DATA_KEY,
            "hash_key": HASH_KEY,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        app = await build_app(settings)
        built.append(app)
        return app

    yield make
    for app in built:
        await app.close()


@contextlib.asynccontextmanager
async def polling(
    app: App, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Dispatcher]:
    """`run_polling` as a task, running until the block ends; yields its dispatcher."""
    dispatchers: list[Dispatcher] = []
    production = telegram.build_dispatcher

    def keep(app: App) -> Dispatcher:
        dispatcher = production(app)
        dispatchers.append(dispatcher)
        return dispatcher

    monkeypatch.setattr(telegram, "build_dispatcher", keep)
    stop = asyncio.Event()
    task = asyncio.create_task(telegram.run_polling(app, stop))
    try:
        await wait_until_polling(server, task)
        yield dispatchers[0]
    finally:
        stop.set()  # a graceful stop, as SIGTERM does; it closes the bot's session
        await asyncio.wait_for(task, 5)


async def wait_until_polling(server: FakeBotAPI, task: asyncio.Task[None]) -> None:
    waiting = asyncio.ensure_future(server.wait_for("getUpdates", 1))
    await asyncio.wait([waiting, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        task.result()  # raises what made run_polling end
        raise AssertionError("run_polling returned before polling")
    await waiting


class Person:
    """Someone in a private chat with the bot; `send`/`press` return what they see next."""

    def __init__(self, server: FakeBotAPI, user_id: int = 1001, name: str = "Sophea") -> None:
        self.server = server
        self.user_id = user_id
        self.user = {"id": user_id, "is_bot": False, "first_name": name, "language_code": "km"}
        self.chat = {"id": user_id, "type": "private", "first_name": name}
        self.callback_ids: list[str] = []
        self._message_ids = itertools.count(1)

    def message_update(self, text: str) -> dict[str, Any]:
        """The JSON of an update carrying a typed message."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": self.user,
            "chat": self.chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": next(_ids), "message": message}

    def callback_update(self, data: str) -> dict[str, Any]:
        """The JSON of an update for pressing an inline button under an earlier bot message."""
        query_id = str(4_000_000_000 + next(_ids))
        self.callback_ids.append(query_id)
        under = {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "chat": self.chat,
            "date": int(time.time()),
            "text": "(the bot's earlier message)",
        }
        query = {
            "id": query_id,
            "from": self.user,
            "chat_instance": "-5838392019384756",
            "data": data,
            "message": under,
        }
        return {"update_id": next(_ids), "callback_query": query}

    async def send(self, text: str, expect: int = 1) -> list[Params]:
        """Type a message (via getUpdates) and wait for the `expect` answers."""
        return await self._answered(self.message_update(text), expect)

    async def press(self, data: str, expect: int = 1) -> list[Params]:
        """Press an inline button carrying `data` and wait for the `expect` answers."""
        return await self._answered(self.callback_update(data), expect)

    async def _answered(self, update: dict[str, Any], expect: int) -> list[Params]:
        before = len(self.server.sent())
        self.server.push_update(update)
        await self.server.wait_for("sendMessage", before + expect)
        return self.server.sent(self.user_id)[before : before + expect]


def text_of(messages: list[Params]) -> str:
    return "\n".join(message["text"] for message in messages)


def callback_data(messages: list[Params]) -> set[str]:
    """The payloads of the inline buttons under these messages."""
    return {
        button["callback_data"]
        for message in messages
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
        for button in row
    }


async def count(app: App, model: type[Any]) -> int:
    async with app.conversation.sessions() as session:
        return int((await session.scalar(select(func.count()).select_from(model))) or 0)


# ---------------------------------------------------------------- long polling


async def test_signs_in_khmer_over_long_polling(
    server: FakeBotAPI, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app()
    km = app.translations.get("km").gettext
    en = app.translations.get("en").gettext
    someone = Person(server, 1001)

    async with polling(app, server, monkeypatch):
        seen = await someone.send("/start")
        assert km("Please choose your language.") in seen[0]["text"]
        assert en("Please choose your language.") in seen[0]["text"]
        assert callback_data(seen) == {"l:km", "l:en"}

        seen = await someone.press("l:km")
        assert app.conversation.content.petition("km").title in text_of(seen)
        assert "go:sign" in callback_data(seen)

        seen = await someone.press("go:sign")
        # The consent text is one long message in the catalog; the command it names is not
        # translated, so it shows up whatever the translator wrote.
        assert "/mysignature" in text_of(seen)
        assert callback_data(seen) == {"c:y", "c:n"}

        seen = await someone.press("c:y")
        assert km("What is your full name? Please type it in Khmer or Latin letters.") in (
            text_of(seen)
        )

        seen = await someone.send("សុខ សុភា")
        assert km("Which country do you live in now?") in text_of(seen)
        assert {"co:US", "co:FR", "co:other"} <= callback_data(seen)

        seen = await someone.press("co:US")
        assert places.country_name("US", "km") in text_of(seen)
        assert callback_data(seen) == {"r:skip"}

        seen = await someone.send("California")
        assert km("In which province of Cambodia were you born?") in text_of(seen)
        assert {"b:17", "b:12", f"b:{places.ABROAD}"} <= callback_data(seen)

        seen = await someone.press("b:17")
        # The contact button only exists on a reply keyboard, so this one is not inline.
        keyboard = seen[0]["reply_markup"]["keyboard"]
        assert keyboard[0][0] == {"text": km("📱 Share my phone number"), "request_contact": True}

        seen = await someone.send("sophea@example.org", expect=2)
        assert seen[0]["reply_markup"] == {"remove_keyboard": True}
        assert callback_data(seen) == {"u:y", "u:n"}

        review = await someone.press("u:y")
        for answer in ("សុខ សុភា", "California", "សៀមរាប", "sophea@example.org"):
            assert answer in review[0]["text"]
        assert callback_data(review) == {"rv:ok", "rv:edit", "rv:cancel"}

        [thanks] = await someone.press("rv:ok")

    text = thanks["text"]
    assert km("Thank you, {name}! Your signature is recorded.").format(name="សុខ សុភា") in text
    assert km("You are signer number {number}.").format(number="១") in text
    assert SHARE_LINK in text
    assert callback_data([thanks]) == {"go:mine", "go:faq"}
    # Bold tags in the texts only render because every message goes out as HTML.
    assert {message["parse_mode"] for message in server.sent()} == {"HTML"}
    assert {message["link_preview_options"]["is_disabled"] for message in server.sent()} == {True}

    async with app.conversation.sessions() as session:
        [signature] = (await session.execute(select(Signature))).scalars().all()
        user = (await session.execute(select(User))).scalar_one()
    assert (signature.full_name, signature.country, signature.region) == (
        "សុខ សុភា",
        "US",
        "California",
    )
    assert app.conversation.cipher is not None
    assert signature.email is not None
    assert "sophea" not in signature.email
    assert (signature.birth_province, app.conversation.cipher.open(signature.email)) == (
        "17",
        "sophea@example.org",
    )
    assert signature.phone is None
    assert (signature.updates_opt_in, signature.language, signature.channel) == (
        True,
        "km",
        "telegram",
    )
    assert (user.external_id, user.language, user.step) == ("1001", "km", "idle")
    assert f"{SHARE_LINK}{user.share_code}" in text

    # Every button press was acknowledged, so Telegram stops the button's spinner.
    answered = [call["callback_query_id"] for call in server.params("answerCallbackQuery")]
    assert answered == someone.callback_ids

    [delete] = server.params("deleteWebhook")
    assert delete["drop_pending_updates"] in ("false", False)
    polls = server.params("getUpdates")
    expected = ["message", "callback_query", "my_chat_member"]  # the last: someone blocked the bot
    assert all(poll["allowed_updates"] == expected for poll in polls)
    # The poll after each batch confirms it, so nothing is ever delivered twice.
    assert any(int(poll.get("offset") or 0) > 700_000 for poll in polls)

    menus = {call.get("language_code"): call["commands"] for call in server.params("setMyCommands")}
    assert set(menus) == {None, "km"}
    names = [name for name, _text in COMMANDS]
    assert [command["command"] for command in menus[None]] == names
    assert [command["command"] for command in menus["km"]] == names
    assert [command["description"] for command in menus["km"]] == [km(t) for _n, t in COMMANDS]
    assert [command["description"] for command in menus[None]] == [en(t) for _n, t in COMMANDS]


async def test_failing_set_my_commands_is_logged_not_fatal(
    server: FakeBotAPI,
    make_app: MakeApp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.fail("setMyCommands", 500, "Internal Server Error")
    app = await make_app()
    caplog.set_level(logging.WARNING, logger="bot.channels.telegram")

    async with polling(app, server, monkeypatch):
        seen = await Person(server, 2002).send("/start")

    assert app.translations.get("km").gettext("Please choose your language.") in seen[0]["text"]
    assert len(server.params("setMyCommands")) == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.channels.telegram"]
    assert any(w.startswith("setMyCommands (en) failed") for w in warnings), warnings
    assert any(w.startswith("setMyCommands (km) failed") for w in warnings), warnings


# ---------------------------------------------------------------- webhook


@contextlib.asynccontextmanager
async def webhook(app: App) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The production webhook application on 127.0.0.1, its bot pointed at the fake."""
    bot = build_bot(app.settings)
    try:
        web_app = build_webhook_app(app, bot, build_dispatcher(app))
        async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
            yield client
    finally:
        await bot.session.close()


async def webhook_app(make_app: MakeApp) -> App:
    return await make_app(webhook_url="https://example.org", webhook_secret=SECRET)


async def test_webhook_refuses_a_wrong_or_missing_secret(
    server: FakeBotAPI, make_app: MakeApp
) -> None:
    app = await webhook_app(make_app)
    path = app.settings.webhook_path
    someone = Person(server, 3003)

    async with webhook(app) as client:
        wrong = await client.post(
            path,
            json=someone.message_update("/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1] + "X"},
        )
        assert wrong.status == 401
        missing = await client.post(path, json=someone.message_update("/start"))
        assert missing.status == 401
        # Rejected before the dispatcher sees it: no task, nothing to wait for.
        assert server.sent() == []
        assert await count(app, User) == 0

        update = someone.message_update("/start")
        right = await client.post(
            path, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert right.status == 200
        [answer] = await server.wait_for("sendMessage", 1)

        # The webhook path only takes POSTs; a browser poking at it learns nothing.
        assert (await client.get(path)).status == 405
        health = await client.get("/healthz")
        assert health.status == 200
        body = await health.text()

    km = app.translations.get("km").gettext
    assert int(answer["chat_id"]) == 3003
    assert km("Please choose your language.") in answer["text"]
    assert callback_data([answer]) == {"l:km", "l:en"}
    assert await count(app, User) == 1
    async with app.conversation.sessions() as session:
        keys = (await session.execute(select(User.recent_updates))).scalars().all()
    assert keys == [[str(update["update_id"])]]

    assert body == "ok"
    exposed = body + " ".join(f"{k}: {v}" for k, v in health.headers.items())
    assert SECRET not in exposed
    assert TOKEN.split(":")[1] not in exposed
    assert "aiohttp" not in exposed  # no software versions announced


async def test_webhook_redelivery_is_answered_once(server: FakeBotAPI, make_app: MakeApp) -> None:
    app = await webhook_app(make_app)
    path = app.settings.webhook_path
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    someone = Person(server, 4004)
    update = someone.message_update("/start")

    async with webhook(app) as client:
        first = await client.post(path, json=update, headers=headers)
        assert first.status == 200
        await server.wait_for("sendMessage", 1)

        # Telegram resends when it did not get our 200 in time; the copy must stay silent.
        again = await client.post(path, json=update, headers=headers)
        assert again.status == 200
        # One person's updates are handled in arrival order, so when the next one (a
        # different answer) comes back, the copy has been dealt with before it.
        later = await client.post(path, json=someone.callback_update("l:en"), headers=headers)
        assert later.status == 200
        await server.wait_for("sendMessage", 2)

    first_answer, second_answer = server.sent(4004)
    km = app.translations.get("km").gettext
    assert km("Please choose your language.") in first_answer["text"]
    assert app.conversation.content.petition("en").title in second_answer["text"]
    async with app.conversation.sessions() as session:
        [recorded] = (await session.execute(select(User.recent_updates))).scalars().all()
    assert len(recorded) == 2


async def test_nothing_is_confirmed_to_telegram_before_it_is_committed(
    server: FakeBotAPI, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polling: the offset that confirms an update is asked for only after its answer went out
    # (which is after its commit), so a crash in between means Telegram sends it again.
    app = await make_app()
    someone = Person(server, 5005)
    async with polling(app, server, monkeypatch):
        update_id = server.push_update(someone.message_update("/start"))
        await server.wait_for("sendMessage")
        await server.wait_for("getUpdates", 3)
    names = [name for name, _params in server.calls]
    answered = names.index("sendMessage")
    confirming = [
        index
        for index, (name, params) in enumerate(server.calls)
        if name == "getUpdates" and int(params.get("offset") or 0) > update_id
    ]
    assert confirming
    assert confirming[0] > answered

    # Webhook: the 200 comes after the update is handled and committed, not before.
    hooked = await webhook_app(make_app)
    other = Person(server, 5006)
    async with webhook(hooked) as client:
        response = await client.post(
            hooked.settings.webhook_path,
            json=other.message_update("/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status == 200
        async with hooked.conversation.sessions() as session:
            ids = (await session.execute(select(User.external_id))).scalars().all()
        assert "5006" in ids  # already in the database
        assert any(int(p["chat_id"]) == 5006 for p in server.sent())  # already answered


async def test_webhook_answers_400_to_a_body_that_is_no_update(
    server: FakeBotAPI, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = await webhook_app(make_app)
    path = app.settings.webhook_path
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    someone = Person(server, 6006)
    no_chat = someone.message_update("/start")
    del no_chat["message"]["chat"]
    bodies = [
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'{"update_id": "first"}',
        b'{"update_id": 1}',  # no event in it
        json.dumps(no_chat).encode(),
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser goes
    ]
    caplog.set_level(logging.WARNING)

    async with webhook(app) as client:
        for body in bodies:
            caplog.clear()
            answer = await client.post(path, data=body, headers=headers)
            assert answer.status == 400, body[:40]
            # One line, no traceback, nothing of the body.
            [line] = caplog.records
            assert (line.levelno, line.exc_info) == (logging.WARNING, None)
            assert "/start" not in line.getMessage()
        caplog.clear()
        unknown = {**headers, "Content-Type": "application/json; charset=x-no-such-charset"}
        assert (await client.post(path, data=b"{}", headers=unknown)).status == 400
        assert [line.levelno for line in caplog.records] == [logging.WARNING]
        # The secret comes first: without it, the body is not even read.
        caplog.clear()
        wrong = {**headers, "X-Telegram-Bot-Api-Secret-Token": SECRET[:-1] + "X"}
        assert (await client.post(path, data=b"not json", headers=wrong)).status == 401
        assert caplog.records == []

        good = await client.post(path, json=someone.message_update("/start"), headers=headers)
        assert good.status == 200
        await server.wait_for("sendMessage", 1)

    assert await count(app, User) == 1


async def test_the_access_log_leaves_out_query_strings(
    server: FakeBotAPI, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a free port for WEBHOOK_PORT
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = await make_app(
        webhook_url="https://example.org",
        webhook_secret=SECRET,
        webhook_port=port,
        messenger_page_token="EAAGtestpagetoken0123456789",
        messenger_app_secret="0123456789abcdef0123456789abcdef",
        messenger_verify_token=VERIFY_TOKEN,
    )
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    channel = messenger.MessengerChannel(app)
    # Telegram's webhook and Messenger's on one server, as `petitionbot run` starts them.
    serving = asyncio.create_task(telegram.run_webhook(app, channel.register))
    try:
        await server.wait_for("setWebhook")
        base = f"http://127.0.0.1:{port}"
        params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}{messenger.WEBHOOK_PATH}", params=params) as answer:
                assert (answer.status, await answer.text()) == (200, "42")
            forged = URL(f"{base}/nowhere%0Aforged?hub.verify_token={VERIFY_TOKEN}", encoded=True)
            async with http.get(forged) as answer:
                assert answer.status == 404
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"GET {messenger.WEBHOOK_PATH} 200 ")
    assert lines[1].startswith("GET /nowhere%0Aforged 404 ")
    assert VERIFY_TOKEN not in caplog.text
    assert "127.0.0.1" not in caplog.text  # nor who asked


async def test_an_answer_held_back_by_a_429_is_sent_after_the_pause(
    server: FakeBotAPI, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram answers 429 when the bot as a whole sends too fast: the answer waits the
    pause out and goes, and so does every reply after it."""
    app = await make_app()
    someone = Person(server, 1007)
    async with polling(app, server, monkeypatch):
        await someone.send("/start")
        server.throttle(retry_after=1, times=1)  # the next send is refused once
        await someone.press("l:en")
        title = app.conversation.content.petition("en").title

        def petitions() -> int:
            return sum(title in delivery.text for delivery in server.delivered(1007))

        for _ in range(50):  # the pause is a second
            if petitions():
                break
            await asyncio.sleep(0.1)
        assert [refusal.status for refusal in server.refusals] == [429]
        assert petitions() == 1


async def test_metrics_only_with_their_token_and_counts_only(
    server: FakeBotAPI, make_app: MakeApp
) -> None:
    """`/metrics` is off without METRICS_TOKEN, refuses a request without it, and shows
    counts (updates, handler time, signatures) and nothing about anyone."""
    plain = await webhook_app(make_app)
    async with webhook(plain) as client:
        assert (await client.get("/metrics")).status == 404
    app = await make_app(
        webhook_url="https://example.org", webhook_secret=SECRET, metrics_token="m" * 32
    )
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    someone = Person(server, 4242)
    async with webhook(app) as client:
        for update in (someone.message_update("/start"), someone.callback_update("l:en")):
            assert (await client.post(app.settings.webhook_path, json=update,
                                      headers=headers)).status == 200  # fmt: skip
        assert (await client.get("/metrics")).status == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})
        assert wrong.status == 401
        page = await client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert page.status == 200
        text = await page.text()
    assert 'petitionbot_updates_total{channel="telegram"} 2.0' in text
    assert "petitionbot_handler_seconds_count 2.0" in text
    assert "petitionbot_signatures 0.0" in text
    assert "petitionbot_outbox_depth 0.0" in text
    assert "4242" not in text  # nobody's id
