"""The Messenger channel over real HTTP on loopback: signed webhook calls in, Send API calls out.

The production channel (its webhook handler, signature check, aiohttp client and retries)
receives calls signed like Facebook's and talks to `tests.graphapi_server.FakeGraphAPI`, so
what is checked here is what goes over the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import itertools
import json
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.channels import messenger
from bot.channels.messenger import (
    MORE,
    WEBHOOK_PATH,
    MessengerChannel,
    build_web_app,
    plain_text,
    split_text,
    title,
)
from bot.channels.telegram import build_bot, build_dispatcher, build_webhook_app
from bot.config import Settings
from bot.flood import FloodGuard
from db.models import Signature, User
from handlers.base import Button, Reply
from handlers.reading import places
from tests.graphapi_server import VERSION, FakeGraphAPI

PAGE_TOKEN = "EAAGtestpagetoken0123456789"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-me-4815162342"
PAGE = "ceroc.petition"
ROOT = Path(__file__).resolve().parent.parent

Client = TestClient[web.Request, web.Application]
Message = dict[str, Any]
_mids = itertools.count(1)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    """The fake Graph API on 127.0.0.1; it accepts only the page token."""
    async with FakeGraphAPI(token=PAGE_TOKEN) as fake:
        yield fake
        # A call the fake found malformed is one the real platform would refuse too.
        assert [call.body.get("_invalid") for call in fake.refused()] == []


@pytest.fixture
async def app(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> AsyncIterator[App]:
    """The application from the production factory, with Messenger pointed at the fake."""
    settings = make_settings(
        messenger_page_token=PAGE_TOKEN,
        messenger_app_secret=APP_SECRET,
        messenger_verify_token=VERIFY_TOKEN,
        messenger_api_url=graph.url,
        messenger_api_version=VERSION,
        messenger_page_username=PAGE,
    )
    application = await build_app(settings)
    yield application
    await application.close()


@pytest.fixture
async def channel(app: App) -> AsyncIterator[MessengerChannel]:
    """The production channel, with retries a hundred times faster than in production."""
    production = MessengerChannel(app, backoff=0.005)
    yield production
    await production.close()


@pytest.fixture
async def client(channel: MessengerChannel) -> AsyncIterator[Client]:
    """The webhook server on 127.0.0.1, as `petitionbot run` serves it without Telegram."""
    async with TestClient(TestServer(build_web_app(channel), host="127.0.0.1")) as test_client:
        yield test_client


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(*items: dict[str, Any]) -> bytes:
    """A webhook call as Messenger batches it: one entry holding the messaging items."""
    entry = {"id": "1234567890", "time": int(time.time() * 1000), "messaging": list(items)}
    return json.dumps({"object": "page", "entry": [entry]}, ensure_ascii=False).encode()


class Person:
    """Someone writing to the Page; `send`/`press`/`postback` return the messages they get."""

    def __init__(self, client: Client, graph: FakeGraphAPI, channel: MessengerChannel) -> None:
        self.client, self.graph, self.channel = client, graph, channel
        self.psid = str(7_000_000_000_000_000 + next(_mids))

    def item(self, **event: Any) -> dict[str, Any]:
        return {
            "sender": {"id": self.psid},
            "recipient": {"id": "1234567890"},
            "timestamp": int(time.time() * 1000) + next(_mids),
            **event,
        }

    def text(self, text: str, mid: str | None = None) -> dict[str, Any]:
        return self.item(message={"mid": mid or f"m_in_{next(_mids)}", "text": text})

    def quick(self, payload: str, label: str = "(the title)") -> dict[str, Any]:
        message = {"mid": f"m_in_{next(_mids)}", "text": label, "quick_reply": {"payload": payload}}
        return self.item(message=message)

    def postback_item(self, payload: str, ref: str | None = None) -> dict[str, Any]:
        postback: dict[str, Any] = {"title": "Get Started", "payload": payload}
        if ref is not None:
            postback["referral"] = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        return self.item(postback=postback)

    async def post(self, *items: dict[str, Any]) -> int:
        """Deliver items in one signed call; return the HTTP status once they are handled."""
        body = webhook_body(*items)
        response = await self.client.post(
            WEBHOOK_PATH,
            data=body,
            headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
        )
        await self.channel.drain()
        return response.status

    async def exchange(self, *items: dict[str, Any], expect: int = 1) -> list[Message]:
        before = len(self.graph.messages(self.psid))
        assert await self.post(*items) == 200
        got = self.graph.messages(self.psid)[before:]
        assert len(got) == expect, [message["text"][:60] for message in got]
        return got

    async def send(self, text: str, expect: int = 1) -> list[Message]:
        return await self.exchange(self.text(text), expect=expect)

    async def press(self, payload: str, expect: int = 1) -> list[Message]:
        return await self.exchange(self.quick(payload), expect=expect)

    async def postback(
        self, payload: str, ref: str | None = None, expect: int = 1
    ) -> list[Message]:
        return await self.exchange(self.postback_item(payload, ref), expect=expect)


def payloads(messages: list[Message]) -> list[str]:
    """The quick replies under the last message: payloads, or the platform's own kinds."""
    return [
        option.get("payload") or option["content_type"]
        for option in messages[-1].get("quick_replies", [])
    ]


def titles(messages: list[Message]) -> list[str]:
    return [option.get("title", "") for option in messages[-1].get("quick_replies", [])]


def text_of(messages: list[Message]) -> str:
    return "\n".join(message["text"] for message in messages)


async def count(app: App, model: type[Any]) -> int:
    async with app.conversation.sessions() as session:
        return int((await session.scalar(select(func.count()).select_from(model))) or 0)


# ---------------------------------------------------------------- the handshake and signatures


async def test_verification_echoes_the_challenge_only_for_the_right_token(client: Client) -> None:
    right = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = await client.get(WEBHOOK_PATH, params=right)
    assert (answer.status, await answer.text()) == (200, "1158201444")

    for wrong in (
        {**right, "hub.verify_token": VERIFY_TOKEN[:-1] + "x"},
        {**right, "hub.mode": "unsubscribe"},
        {"hub.challenge": "1158201444"},
    ):
        refused = await client.get(WEBHOOK_PATH, params=wrong)
        assert refused.status == 403
        assert "1158201444" not in await refused.text()
    health = await client.get("/healthz")
    assert await health.text() == "ok"
    assert "aiohttp" not in health.headers.get("Server", "")


async def test_unsigned_or_wrongly_signed_posts_are_refused(
    app: App,
    client: Client,
    graph: FakeGraphAPI,
    channel: MessengerChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.messenger")
    someone = Person(client, graph, channel)
    body = webhook_body(someone.text("/start"))
    other = webhook_body(someone.text("/help"))
    for headers in (
        {},
        {"X-Hub-Signature-256": sign(body, secret="not-the-app-secret")},
        {"X-Hub-Signature-256": sign(other)},  # a real signature, of another body
        {"X-Hub-Signature-256": sign(body).removeprefix("sha256=")},
        {"X-Hub-Signature-256": "sha1=" + hashlib.sha1(body).hexdigest()},  # noqa: S324
    ):
        answer = await client.post(WEBHOOK_PATH, data=body, headers=headers)
        assert answer.status == 403
    await channel.drain()

    assert graph.calls == []
    assert await count(app, User) == 0
    refusals = [r.getMessage() for r in caplog.records if "signature" in r.getMessage()]
    assert len(refusals) == 5
    assert all(someone.psid not in message for message in refusals)

    # The same body, rightly signed, is answered.
    answer = await client.post(WEBHOOK_PATH, data=body, headers={"X-Hub-Signature-256": sign(body)})
    assert answer.status == 200
    await channel.drain()
    assert len(graph.messages(someone.psid)) == 1


async def test_an_oversized_body_is_refused(client: Client, graph: FakeGraphAPI) -> None:
    body = b'{"object": "page", "entry": []' + b" " * (1024 * 1024) + b"}"
    headers = {"X-Hub-Signature-256": sign(body)}
    answer = await client.post(WEBHOOK_PATH, data=io.BytesIO(body), headers=headers)
    assert answer.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    answer = await client.post(WEBHOOK_PATH, data=chunks(), headers=headers)
    assert answer.status == 413
    assert graph.calls == []


async def test_a_call_that_is_not_shaped_like_messengers_gets_400(
    app: App,
    client: Client,
    graph: FakeGraphAPI,
    channel: MessengerChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    someone = Person(client, graph, channel)
    unsent = someone.text("/start")
    unsent["sender"] = someone.psid  # an id where Messenger puts {"id": ...}
    bodies = [
        b"not json",
        b"[1, 2]",
        b'{"entry": 5}',
        b'{"object": "page", "entry": 5}',
        b'{"object": "page", "entry": [5]}',
        b'{"object": "page", "entry": [{"id": "1", "time": 1, "messaging": 5}]}',
        b'{"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [5]}]}',
        json.dumps({"object": "page", "entry": [{"id": "1", "messaging": [unsent]}]}).encode(),
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser goes
    ]
    caplog.set_level(logging.WARNING)
    for body in bodies:
        caplog.clear()
        answer = await client.post(
            WEBHOOK_PATH, data=body, headers={"X-Hub-Signature-256": sign(body)}
        )
        assert answer.status == 400, body[:60]
        [line] = caplog.records  # one line, no traceback, nobody named
        assert (line.levelno, line.exc_info) == (logging.WARNING, None)
        assert someone.psid not in line.getMessage()
    await channel.drain()
    assert graph.calls == []
    assert await count(app, User) == 0


async def test_events_dated_outside_the_window_are_refused(
    app: App,
    client: Client,
    graph: FakeGraphAPI,
    channel: MessengerChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A call Facebook signed ten minutes ago, captured and sent again now, is still rightly
    # signed: only its date tells it apart.
    caplog.set_level(logging.WARNING, logger="bot.channels.messenger")
    now = int(time.time() * 1000)
    stale, ahead, late, early = (Person(client, graph, channel) for _ in range(4))
    items = [
        {**stale.text("/start"), "timestamp": now - 301_000},
        {**ahead.text("/start"), "timestamp": now + 120_000},
        {**late.text("/start"), "timestamp": now - 240_000},  # a slow delivery, still in time
        {**early.text("/start"), "timestamp": now + 30_000},  # the other clock is a bit ahead
    ]
    assert await stale.post(*items) == 200  # Facebook would otherwise send it again and again

    assert graph.messages(stale.psid) == graph.messages(ahead.psid) == []
    assert len(graph.messages(late.psid)) == len(graph.messages(early.psid)) == 1
    assert await count(app, User) == 2
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "2 of 4" in line
    assert all(person.psid not in line for person in (stale, ahead, late, early))
    assert "/start" not in line

    # Without its own date, an event takes its entry's; with neither, it is refused.
    for entry_time, answers in ((now, 1), (now - 600_000, 0), (None, 0)):
        person = Person(client, graph, channel)
        undated = {key: value for key, value in person.text("/start").items() if key != "timestamp"}
        entry: dict[str, Any] = {"id": "1234567890", "messaging": [undated]}
        if entry_time is not None:
            entry["time"] = entry_time
        body = json.dumps({"object": "page", "entry": [entry]}).encode()
        headers = {"X-Hub-Signature-256": sign(body)}
        assert (await client.post(WEBHOOK_PATH, data=body, headers=headers)).status == 200
        await channel.drain()
        assert len(graph.messages(person.psid)) == answers, entry_time


async def test_a_call_replayed_after_32_newer_events_is_refused(
    make_settings: Callable[..., Settings], graph: FakeGraphAPI
) -> None:
    # The dedupe remembers a person's last 32 events; past those, only the date stops a copy.
    settings = make_settings(
        messenger_page_token=PAGE_TOKEN,
        messenger_app_secret=APP_SECRET,
        messenger_verify_token=VERIFY_TOKEN,
        messenger_api_url=graph.url,
        messenger_api_version=VERSION,
        messenger_max_age=2,
    )
    application = await build_app(settings)
    application.conversation.flood = FloodGuard(limit=1_000_000)  # faster than any person
    channel = MessengerChannel(application, backoff=0.005)
    try:
        async with TestClient(TestServer(build_web_app(channel), host="127.0.0.1")) as client:
            someone = Person(client, graph, channel)
            captured = webhook_body(someone.text("/help"))
            signed_at = time.time()
            headers = {"X-Hub-Signature-256": sign(captured)}
            assert (await client.post(WEBHOOK_PATH, data=captured, headers=headers)).status == 200
            await channel.drain()
            answered = len(graph.messages(someone.psid))
            assert answered >= 1

            await someone.exchange(
                *(someone.text("/help") for _ in range(32)), expect=32 * answered
            )
            await asyncio.sleep(max(0.0, signed_at + 2.5 - time.time()))
            replayed = await client.post(WEBHOOK_PATH, data=captured, headers=headers)
            assert replayed.status == 200
            await channel.drain()
            assert len(graph.messages(someone.psid)) == 33 * answered
    finally:
        await channel.close()
        await application.close()


# ---------------------------------------------------------------- the signing flow


async def test_signs_in_khmer_with_quick_replies_and_paging(
    app: App, client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    km = app.translations.get("km").gettext
    someone = Person(client, graph, channel)

    seen = await someone.postback("/start")  # the Get Started button
    assert km("Please choose your language.") in seen[0]["text"]
    assert payloads(seen) == ["l:km", "l:en"]

    seen = await someone.press("l:km")
    petition = app.conversation.content.petition("km")
    assert petition.title in text_of(seen)
    assert "<b>" not in text_of(seen)  # Telegram's HTML is not shown as tags
    assert "go:sign" in payloads(seen)

    seen = await someone.press("go:sign")
    assert "/mysignature" in text_of(seen)
    assert payloads(seen) == ["c:y", "c:n"]

    seen = await someone.press("c:y")
    assert km("What is your full name? Please type it in Khmer or Latin letters.") in text_of(seen)

    seen = await someone.send("សុខ សុភា")
    assert km("Which country do you live in now?") in text_of(seen)
    # Twelve countries and "another country": thirteen, Messenger's most, so no paging.
    assert payloads(seen) == [f"co:{code}" for code in places.DIASPORA] + ["co:other"]

    seen = await someone.press("co:US")
    assert places.country_name("US", "km") in text_of(seen)
    assert payloads(seen) == ["r:skip"]

    seen = await someone.send("California")
    question = km("In which province of Cambodia were you born?")
    assert question in text_of(seen)
    first_page = payloads(seen)
    assert len(first_page) == 13
    assert first_page[:12] == [f"b:{code:02d}" for code in range(1, 13)]
    assert first_page[12] == "mm:1"
    assert titles(seen)[12] == km(MORE)

    [page2] = await someone.press("mm:1")
    assert page2["text"] == question
    assert payloads([page2]) == [f"b:{code}" for code in range(13, 25)] + ["mm:2"]
    [page3] = await someone.press("mm:2")
    assert payloads([page3]) == ["b:25", f"b:{places.ABROAD}", "mm:0"]  # and back to the start

    seen = await someone.press("b:17")
    assert payloads(seen) == ["user_phone_number", "user_email", "ct:skip"]
    # The "More…" pages were for the province question; they are gone now.
    stale = await someone.press("mm:1", expect=2)
    assert km("That button is from an earlier message.") in stale[0]["text"]
    assert payloads(stale) == ["user_phone_number", "user_email", "ct:skip"]

    # The platform's e-mail quick reply sends the address itself as the payload.
    seen = await someone.exchange(
        someone.item(
            message={
                "mid": "m_email",
                "text": "sophea@example.org",
                "quick_reply": {"payload": "sophea@example.org"},
            }
        ),
        expect=2,
    )
    assert km("Thank you, noted.") in seen[0]["text"]
    assert payloads(seen) == ["u:y", "u:n"]

    review = await someone.press("u:y")
    for answer in ("សុខ សុភា", "California", "សៀមរាប", "sophea@example.org"):
        assert answer in review[0]["text"]
    assert payloads(review) == ["rv:ok", "rv:edit", "rv:cancel"]

    [thanks] = await someone.press("rv:ok")
    assert (
        km("Thank you, {name}! Your signature is recorded.").format(name="សុខ សុភា")
        in (thanks["text"])
    )
    assert km("You are signer number {number}.").format(number="១") in thanks["text"]
    assert payloads([thanks]) == ["go:mine", "go:faq"]

    async with app.conversation.sessions() as session:
        signature = (await session.execute(select(Signature))).scalar_one()
        user = (await session.execute(select(User))).scalar_one()
    assert (signature.full_name, signature.country, signature.region) == (
        "សុខ សុភា",
        "US",
        "California",
    )
    # The e-mail is kept as the data layer keeps contacts (sealed at rest); the person sees it.
    assert (signature.birth_province, signature.email is not None, signature.phone) == (
        "17",
        True,
        None,
    )
    assert (signature.channel, signature.language, signature.updates_opt_in) == (
        "messenger",
        "km",
        True,
    )
    assert (user.channel, user.external_id, user.step) == ("messenger", someone.psid, "idle")
    assert user.last_seen_at is not None
    assert f"https://m.me/{PAGE}?ref={user.share_code}" in thanks["text"]
    [mine] = await someone.postback("go:mine")  # "My signature" in the Page's menu
    assert "sophea@example.org" in mine["text"]

    # One Graph call per message (no "typing…" before each), and every message answers one.
    assert graph.actions(someone.psid) == []
    assert {body["messaging_type"] for body in graph.accepted() if "message" in body} == {
        "RESPONSE"
    }
    assert {call.token for call in graph.calls} == {PAGE_TOKEN}


async def test_referral_through_get_started_is_credited(
    app: App, client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    someone = Person(client, graph, channel)
    await someone.postback("/start", ref="friend42")  # came through m.me/<page>?ref=friend42
    for payload in ("l:en", "go:sign", "c:y"):
        await someone.press(payload)
    await someone.send("Sok Sophea")
    for payload, expect in (("co:FR", 1), ("r:skip", 1), ("b:12", 1), ("ct:skip", 2)):
        await someone.press(payload, expect=expect)
    await someone.press("u:n")
    await someone.press("rv:ok")

    # Someone already in the conversation who opens another link: `messaging_referrals`.
    other = Person(client, graph, channel)
    await other.send("hello")
    referral = {"ref": "cousin7", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    await other.exchange(other.item(referral=referral))

    async with app.conversation.sessions() as session:
        signature = (await session.execute(select(Signature))).scalar_one()
        referred = dict((await session.execute(select(User.external_id, User.referred_by))).all())
    assert (signature.referrer_code, signature.channel, signature.birth_province) == (
        "friend42",
        "messenger",
        "12",
    )
    assert referred == {someone.psid: "friend42", other.psid: "cousin7"}


async def test_a_redelivered_event_is_answered_once(
    app: App, client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    someone = Person(client, graph, channel)
    event = someone.text("/start", mid="m_same_message")
    await someone.exchange(event)
    await someone.exchange(event, expect=0)  # Messenger resends when our 200 was late
    await someone.press("l:en")

    async with app.conversation.sessions() as session:
        [recorded] = (await session.execute(select(User.recent_updates))).scalars().all()
    assert recorded[0] == "m_same_message"
    assert len(recorded) == 2
    assert graph.actions(someone.psid) == []  # no "typing…": one Graph call per message


async def test_an_event_is_answered_and_kept_before_messenger_hears_200(
    app: App, client: Client, graph: FakeGraphAPI
) -> None:
    # Messenger redelivers a call it got no 200 for, never one it did: so the 200 comes
    # once the event is committed and its answer sent, and a crash before it loses nothing.
    someone = Person(client, graph, None)  # type: ignore[arg-type]  # no drain: the 200 is all
    body = webhook_body(someone.text("/start", mid="m_first"))
    response = await client.post(
        WEBHOOK_PATH,
        data=body,
        headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert len(graph.messages(someone.psid)) == 1  # already sent
    async with app.conversation.sessions() as session:
        [recorded] = (await session.execute(select(User.recent_updates))).scalars().all()
    assert recorded == ["m_first"]  # already committed


async def test_echoes_and_receipts_are_ignored_and_attachments_answered(
    app: App, client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    en = app.translations.get("en").gettext
    someone = Person(client, graph, channel)
    await someone.postback("/start")
    await someone.press("l:en")
    echo = someone.item(message={"mid": "m_echo", "is_echo": True, "text": "from the page"})
    delivery = someone.item(delivery={"mids": ["m_echo"], "watermark": 1})
    read = someone.item(read={"watermark": 1})
    photo = someone.item(
        message={"mid": "m_photo", "attachments": [{"type": "image", "payload": {"url": "x"}}]}
    )
    [answer] = await someone.exchange(echo, delivery, read, photo)
    assert en("I can only read text. Please use the buttons or type a message.") in answer["text"]


async def test_events_of_one_batch_are_answered_in_order(
    client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    someone = Person(client, graph, channel)
    answers = await someone.exchange(
        someone.postback_item("/start"), someone.quick("l:en"), someone.quick("go:sign"), expect=3
    )
    assert [payloads([answer]) for answer in answers] == [
        ["l:km", "l:en"],
        ["go:sign", "go:faq", "go:lang"],
        ["c:y", "c:n"],
    ]


# ---------------------------------------------------------------- the Send API


def test_long_texts_split_at_sentence_boundaries() -> None:
    english = " ".join(f"Sentence number {i} is about voting abroad." for i in range(100))
    pieces = split_text(english, 500)
    assert all(len(piece) <= 500 for piece in pieces)
    assert all(piece.endswith(".") for piece in pieces)
    assert " ".join(pieces) == english

    khmer = "ពលរដ្ឋខ្មែរគ្រប់រូបមានសិទ្ធិបោះឆ្នោត។" * 40
    pieces = split_text(khmer, 300)
    assert all(len(piece) <= 300 and piece.endswith("។") for piece in pieces)
    assert "".join(pieces) == khmer

    unbroken = "x" * 450
    assert split_text(unbroken, 200) == ["x" * 200, "x" * 200, "x" * 50]
    assert split_text("short") == ["short"]


def test_plain_text_and_titles() -> None:
    assert plain_text("<b>Q&amp;A</b> &lt;ok&gt; <i>now</i>") == "Q&A <ok> now"
    assert plain_text('<a href="https://x.org/a?b=1&amp;c=2">site</a>') == (
        "site (https://x.org/a?b=1&c=2)"
    )
    assert title("Short") == "Short"
    assert title("A label that is far too long") == "A label that is far…"
    cut = title("ព្រះសីហនុ ព្រះសីហនុ ក្រុងព្រះសីហនុ")
    assert len(cut) <= 20
    assert cut.endswith("…")
    assert cut[-2] != "\u17d2"  # never a dangling subscript sign


async def test_an_overlong_answer_goes_out_in_pieces(
    app: App, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    text = "<b>Why it matters</b>\n" + " ".join(
        f"Reason {i}: every Cambodian should vote where they live." for i in range(80)
    )
    assert len(text) > 4000
    buttons = [[Button("← All questions", "go:faq"), Button("A very long button label", "x:y")]]
    await channel.send("4242", [Reply(text, buttons)])

    sent = graph.messages("4242")
    assert len(sent) == 3
    assert all(len(message["text"]) <= 2000 for message in sent)
    assert all(message["text"].endswith(".") for message in sent)
    assert " ".join(message["text"] for message in sent) == plain_text(text)
    assert ["quick_replies" in message for message in sent] == [False, False, True]
    assert titles(sent) == ["← All questions", "A very long button…"]


async def test_a_429_is_retried_then_delivered(
    client: Client, graph: FakeGraphAPI, channel: MessengerChannel
) -> None:
    graph.fail("messages", 429, code=613, message="Calls to this api have exceeded the rate limit.")
    someone = Person(client, graph, channel)
    await someone.postback("/start")
    tries = [call.status for call in graph.calls if "message" in call.body]
    assert tries == [429, 200]

    graph.fail("messages", 503, times=2, retry_after="0")
    await someone.press("l:en")
    tries = [call.status for call in graph.calls if "message" in call.body]
    assert tries == [429, 200, 503, 503, 200]


async def test_a_permanent_error_is_logged_and_not_retried(
    client: Client,
    graph: FakeGraphAPI,
    channel: MessengerChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    graph.fail("messages", 400, code=551, message="This person isn't available right now.")
    someone = Person(client, graph, channel)
    await someone.exchange(someone.text("/start"), expect=0)

    assert [call.status for call in graph.calls if "message" in call.body] == [400]
    logged = [record.getMessage() for record in caplog.records]
    assert any("This person isn't available right now." in line for line in logged), logged
    assert all(someone.psid not in line and PAGE_TOKEN not in line for line in logged)


async def test_retries_are_bounded(
    client: Client,
    graph: FakeGraphAPI,
    channel: MessengerChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.channels.messenger")
    graph.fail("messages", 500, code=2, times=5)
    someone = Person(client, graph, channel)
    await someone.exchange(someone.text("/start"), expect=0)
    assert [call.status for call in graph.calls if "message" in call.body] == [500, 500, 500]
    assert any("giving up after 3 tries" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------- wiring and setup


async def test_the_webhook_also_runs_beside_telegrams(app: App, channel: MessengerChannel) -> None:
    bot = build_bot(app.settings)
    try:
        web_app = build_webhook_app(app, bot, build_dispatcher(app), channel.register)
        async with TestClient(TestServer(web_app, host="127.0.0.1")) as test_client:
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "7",
            }
            answer = await test_client.get(WEBHOOK_PATH, params=params)
            assert (answer.status, await answer.text()) == (200, "7")
            assert (await test_client.post(WEBHOOK_PATH, data=b"{}")).status == 403
    finally:
        await bot.session.close()


async def test_serves_on_its_own_when_telegram_polls(
    make_settings: Callable[..., Settings], graph: FakeGraphAPI
) -> None:
    with socket.socket() as probe:  # a free port for WEBHOOK_PORT
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(
        messenger_page_token=PAGE_TOKEN,
        messenger_app_secret=APP_SECRET,
        messenger_verify_token=VERIFY_TOKEN,
        messenger_api_url=graph.url,
        messenger_api_version=VERSION,
        webhook_port=port,
    )
    application = await build_app(settings)
    try:
        async with messenger.serving(application), aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(f"{base}/healthz") as health:
                assert (health.status, await health.text()) == (200, "ok")
                assert health.headers["Server"] == "petitionbot"
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "9",
            }
            async with http.get(f"{base}{WEBHOOK_PATH}", params=params) as answer:
                assert await answer.text() == "9"
    finally:
        await application.close()


async def test_its_own_server_logs_paths_without_query_strings(
    make_settings: Callable[..., Settings], graph: FakeGraphAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a free port for WEBHOOK_PORT
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(
        messenger_page_token=PAGE_TOKEN,
        messenger_app_secret=APP_SECRET,
        messenger_verify_token=VERIFY_TOKEN,
        messenger_api_url=graph.url,
        messenger_api_version=VERSION,
        webhook_port=port,
    )
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    application = await build_app(settings)
    try:
        async with messenger.serving(application), aiohttp.ClientSession() as http:
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "5",
            }
            url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
            async with http.get(url, params=params) as answer:
                assert await answer.text() == "5"
    finally:
        await application.close()

    lines = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [f"GET {WEBHOOK_PATH} 200"]
    assert VERIFY_TOKEN not in caplog.text


def test_the_three_secrets_come_together(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="set all three, or none"):
        make_settings(messenger_page_token=PAGE_TOKEN, messenger_app_secret=APP_SECRET)
    settings = make_settings(
        messenger_page_token="", messenger_app_secret="", messenger_api_url=""
    )  # as an .env copied from .env.example and left empty
    assert not settings.messenger_enabled
    assert settings.messenger_api_url == "https://graph.facebook.com"
    with pytest.raises(ValidationError, match="must look like"):
        make_settings(messenger_api_version="21")
    assert messenger.share_link(settings)("abc") is None


async def test_messenger_setup_sends_the_three_calls(
    graph: FakeGraphAPI, tmp_path: Path, app: App
) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MESSENGER_")},
        "MESSENGER_PAGE_TOKEN": PAGE_TOKEN,
        "MESSENGER_APP_SECRET": APP_SECRET,
        "MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "MESSENGER_API_URL": graph.url,
        "MESSENGER_API_VERSION": VERSION,
        "LOCALES_DIR": str(ROOT / "locales"),
    }
    for _run in range(2):  # idempotent: the same three bodies each time
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "messenger", "setup",
            cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()

    bodies = graph.accepted("messenger_profile")
    assert len(bodies) == 6
    assert bodies[:3] == bodies[3:]
    get_started, greeting, menu = bodies[:3]
    assert get_started == {"get_started": {"payload": "/start"}}
    km, en = app.translations.get("km").gettext, app.translations.get("en").gettext
    assert greeting == {
        "greeting": [
            {"locale": "default", "text": en(messenger.GREETING)},
            {"locale": "km_KH", "text": km(messenger.GREETING)},
        ]
    }
    [default_menu, khmer_menu] = menu["persistent_menu"]
    assert (default_menu["locale"], default_menu["composer_input_disabled"]) == ("default", False)
    assert [item["payload"] for item in default_menu["call_to_actions"]] == [
        "go:sign",
        "go:faq",
        "go:mine",
        "go:lang",
        "n:off",
    ]
    assert {item["type"] for item in default_menu["call_to_actions"]} == {"postback"}
    assert khmer_menu["locale"] == "km_KH"
    assert khmer_menu["call_to_actions"][0]["title"] == km("✍️ Sign the petition")
    printed = out.decode()
    for name in ("get_started: set", "greeting: set", "persistent_menu: set", "go:sign"):
        assert name in printed
    assert PAGE_TOKEN not in printed + err.decode()
