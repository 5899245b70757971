"""The broadcaster over real HTTP on loopback: the production worker and aiogram Bot talk to
`tests.botapi_server.FakeBotAPI` (and Messenger's to `tests.graphapi_server.FakeGraphAPI`).

Rates are counted by the fake, on its own clock, with generous bounds: nothing here times
our side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.workers.broadcast import Worker, build_worker
from db import broadcasts as store
from db import sends
from db.models import Broadcast, Signature, User, utcnow
from handlers.admin.audience import parse_when
from handlers.news import STOP_PAYLOAD
from tests.botapi_server import FakeBotAPI
from tests.conftest import TOKEN
from tests.graphapi_server import VERSION, FakeGraphAPI
from tests.test_broadcast import (
    TEXT_EN,
    add_many,
    add_person,
    outbox,
    queue_broadcast,
    started,
)

ADMIN = 4242
FIRST = 10_000


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API, answering each send after 20 ms."""
    async with FakeBotAPI(token=TOKEN, latency=0.02) as fake:
        yield fake
        assert fake.unexpected() == []


@pytest.fixture
async def app(make_settings: Callable[..., Settings], server: FakeBotAPI) -> AsyncIterator[App]:
    """The application, its Telegram pointed at the fake."""
    application = await build_app(make_settings(telegram_api_url=server.url, admin_ids=str(ADMIN)))
    yield application
    await application.close()


def worker_for(app: App, **options: Any) -> Worker:
    """The production worker, quicker to look again and to retry than in production."""
    values: dict[str, Any] = {"poll_every": 0.05, "report_every": 0.3, "backoff": 0.05}
    values.update(options)
    return build_worker(app, **values)


async def send_all(worker: Worker, timeout: float = 60) -> None:
    """Run the worker until nothing is scheduled or running."""
    try:
        await asyncio.wait_for(worker.run(asyncio.Event(), exit_when_idle=True), timeout)
    finally:
        await worker.close()


def chats(first: int, count: int) -> list[str]:
    return [str(first + number) for number in range(count)]


async def status_of(app: App, broadcast_id: int) -> str:
    async with app.conversation.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.status


def busiest_second(times: list[float]) -> int:
    """The most deliveries in any one-second window (by the fake's clock)."""
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered)


async def test_the_rate_is_respected_and_everyone_gets_it_once(
    app: App, server: FakeBotAPI
) -> None:
    await add_many(app, 60, first=FIRST)
    broadcast_id = await queue_broadcast(app, rate=20)
    await send_all(worker_for(app))

    delivered = server.delivered()
    assert sorted(d.chat_id for d in delivered) == chats(FIRST, 60)  # once each
    assert busiest_second([d.at for d in delivered]) <= 23  # 20 a second, and some slack
    [message] = {d.text for d in delivered}
    assert message == "<b>ព័ត៌មាន</b> ថ្មី"  # the Khmer version, as written
    for params in server.sent():
        assert params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == STOP_PAYLOAD
        assert "allow_paid_broadcast" not in params
    assert set((await outbox(app, broadcast_id)).values()) == {("sent", None)}
    assert await status_of(app, broadcast_id) == "done"


async def test_a_429_pauses_every_send_for_retry_after(app: App, server: FakeBotAPI) -> None:
    await add_many(app, 40, first=FIRST)
    server.throttle(retry_after=2, after=8)
    broadcast_id = await queue_broadcast(app, rate=25)
    await send_all(worker_for(app))

    [refusal] = server.refusals
    assert refusal.status == 429
    # Sends already on their way may land just after; then nothing until the pause is over.
    paused = [d for d in server.delivered() if refusal.at + 0.3 < d.at < refusal.at + 1.9]
    assert paused == []
    assert sorted(d.chat_id for d in server.delivered()) == chats(FIRST, 40)
    assert set((await outbox(app, broadcast_id)).values()) == {("sent", None)}


async def test_people_who_blocked_the_bot_are_opted_out(app: App, server: FakeBotAPI) -> None:
    async with app.conversation.sessions() as session, session.begin():
        for number in range(6):
            await add_person(session, str(FIRST + number), signed=("US", None, "02"))
    server.forbid(FIRST + 1)
    server.forbid(FIRST + 4, "Forbidden: user is deactivated")
    broadcast_id = await queue_broadcast(app)
    await send_all(worker_for(app))

    rows = await outbox(app, broadcast_id)
    assert rows[str(FIRST + 1)] == ("blocked", "Forbidden: bot was blocked by the user")
    assert rows[str(FIRST + 4)] == ("blocked", "Forbidden: user is deactivated")
    assert sum(1 for status, _error in rows.values() if status == "sent") == 4
    async with app.conversation.sessions() as session:
        users = await session.execute(
            select(User.external_id, User.updates_opt_in, User.unreachable_at)
        )
        state = {name: (opted, gone is not None) for name, opted, gone in users.all()}
        signed = await session.execute(select(Signature.user_id, Signature.updates_opt_in))
        news = sorted(opted for _user, opted in signed.all())
        left = await store.count_audience(session, audience=store.Audience())
    assert state[str(FIRST + 1)] == (False, True)
    assert state[str(FIRST + 4)] == (False, True)
    assert state[str(FIRST)] == (True, False)
    assert news == [False, False, True, True, True, True]
    assert left == {"km": 4}  # the next broadcast leaves them out


async def test_temporary_errors_are_retried_and_nothing_is_doubled(
    app: App, server: FakeBotAPI
) -> None:
    await add_many(app, 80, first=FIRST)
    server.error_rate = 0.1  # 502 Bad Gateway, at random
    broadcast_id = await queue_broadcast(app, rate=50)
    await send_all(worker_for(app))

    assert server.refusals  # some sends failed at first
    assert {refusal.status for refusal in server.refusals} == {502}
    assert sorted(d.chat_id for d in server.delivered()) == chats(FIRST, 80)
    assert set((await outbox(app, broadcast_id)).values()) == {("sent", None)}


async def test_a_photo_goes_out_by_its_file_id_paid_when_asked(
    app: App, server: FakeBotAPI
) -> None:
    await add_many(app, 5, first=FIRST, language="en")
    photo = {"kind": "photo", "file_id": "photo-file-7", "filename": "new-year.jpg",
             "text": "Happy <b>Khmer New Year</b>!"}  # fmt: skip
    await queue_broadcast(app, versions={"en": photo}, rate=1000, paid=True)
    await send_all(worker_for(app))

    sent = server.params("sendPhoto")
    assert len(sent) == 5
    assert {params["photo"] for params in sent} == {"photo-file-7"}
    assert {params["caption"] for params in sent} == {"Happy <b>Khmer New Year</b>!"}
    assert {d.paid for d in server.delivered()} == {True}


async def test_the_admin_watches_it_go_out_and_gets_a_report(app: App, server: FakeBotAPI) -> None:
    async with app.conversation.sessions() as session, session.begin():
        await add_person(session, str(ADMIN), language="en", opted_in=False)
    await add_many(app, 30, first=FIRST)
    broadcast_id = await queue_broadcast(app, rate=20, report_chat=str(ADMIN))
    await send_all(worker_for(app))

    to_admin = [p["text"] for p in server.sent(ADMIN)]
    assert f"Broadcast #{broadcast_id}</b> is going out" in to_admin[0]
    edits = [p["text"] for p in server.params("editMessageText")]
    assert any("Remaining:" in text and "a second; about" in text for text in edits)
    final = to_admin[-1]
    assert f"Broadcast #{broadcast_id}</b> has gone out" in final
    assert "Sent: 30 of 30" in final
    assert "Blocked the bot: 0 · Failed: 0 · Skipped: 0" in final
    assert edits[-1] == final  # the status message ends as the report
    async with app.conversation.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    assert broadcast.report_message_id is not None


async def test_a_scheduled_broadcast_fires_at_its_time(app: App, server: FakeBotAPI) -> None:
    await add_many(app, 5, first=FIRST)
    found = parse_when("2027-04-14 08:00 Asia/Phnom_Penh")
    assert found is not None
    at = found[0]
    now = [at - timedelta(minutes=1)]
    worker = worker_for(app, clock=lambda: now[0])
    broadcast_id = await queue_broadcast(app, at=at)
    try:
        assert await worker.tick() is True  # waiting
        assert server.delivered() == []
        assert await status_of(app, broadcast_id) == "scheduled"
        now[0] = at
        assert await worker.tick() is False  # sent, and nothing left
    finally:
        await worker.close()
    assert sorted(d.chat_id for d in server.delivered()) == chats(FIRST, 5)
    assert await status_of(app, broadcast_id) == "done"
    async with app.conversation.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    assert broadcast.started_at is not None
    assert store.as_utc(broadcast.started_at) == datetime(2027, 4, 14, 1, 0, tzinfo=UTC)


async def test_a_stopping_worker_finishes_what_is_in_flight_and_puts_back_the_rest(
    app: App, server: FakeBotAPI
) -> None:
    await add_many(app, 40, first=FIRST)
    broadcast_id = await queue_broadcast(app, rate=20)
    worker = worker_for(app)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await server.wait_for("sendMessage", 10)
    stop.set()  # SIGTERM: a redeploy
    await asyncio.wait_for(running, 30)
    await worker.close()
    rows = await outbox(app, broadcast_id)
    statuses = sorted({status for status, _error in rows.values()})
    assert statuses == ["pending", "sent"]  # nothing left in flight, nothing unknown
    assert sum(1 for status, _e in rows.values() if status == "sent") == len(server.delivered())

    await send_all(worker_for(app))  # the next worker sends the rest
    assert sorted(d.chat_id for d in server.delivered()) == chats(FIRST, 40)


# ---------------------------------------------------------------- Messenger

PAGE_TOKEN = "EAAGtestpagetoken0123456789"


def with_messenger(
    make_settings: Callable[..., Settings], server: FakeBotAPI, graph: FakeGraphAPI
) -> Settings:
    """Settings for Telegram on the fake Bot API and Messenger on the fake Graph API."""
    return make_settings(
        telegram_api_url=server.url,
        messenger_page_token=PAGE_TOKEN,
        messenger_app_secret="0123456789abcdef0123456789abcdef",
        messenger_verify_token="verify-me-4815162342",
        messenger_api_url=graph.url,
        messenger_api_version=VERSION,
    )


async def test_messenger_people_get_it_only_within_24_hours_of_their_last_message(
    make_settings: Callable[..., Settings], server: FakeBotAPI
) -> None:
    async with FakeGraphAPI(token=PAGE_TOKEN) as graph:
        settings = with_messenger(make_settings, server, graph)
        app = await build_app(settings)
        try:
            now = utcnow()
            async with app.conversation.sessions() as session, session.begin():
                await add_person(session, "1001", language="en")
                for psid, hours in (("7001", 1), ("7002", 30), ("7003", 2)):
                    await add_person(
                        session, psid, channel="messenger", language="en",
                        last_seen_at=now - timedelta(hours=hours),
                    )  # fmt: skip
            graph.fail("messages", 400, code=551, message="This person isn't available right now.")
            broadcast_id = await queue_broadcast(app, versions={"en": TEXT_EN})
            await send_all(worker_for(app))
            rows = await outbox(app, broadcast_id)
            delivered = graph.accepted()
        finally:
            await app.close()
        assert [call.body.get("_invalid") for call in graph.refused()] == []

    assert rows["1001"] == ("sent", None)
    assert rows["7002"] == ("skipped", store.OUTSIDE_WINDOW)
    # One of the two recent ones is gone from Messenger (the 551), the other gets it.
    assert sorted(status for name, (status, _e) in rows.items() if name in ("7001", "7003")) == [
        "blocked", "sent"]  # fmt: skip
    [body] = delivered
    assert body["messaging_type"] == "UPDATE"
    assert body["message"]["text"] == "News from the campaign"
    [stop] = body["message"]["quick_replies"]
    assert stop["payload"] == STOP_PAYLOAD
    assert [d.chat_id for d in server.delivered()] == ["1001"]


async def test_a_long_messenger_broadcast_retried_sends_no_part_twice(
    make_settings: Callable[..., Settings], server: FakeBotAPI
) -> None:
    """Telegram takes 4,096 characters, Messenger 2,000: a long text goes to Messenger in
    parts. When a later part fails and the row is retried, the parts that went do not go
    again."""
    paragraphs = [f"Part {number}: " + "ដំណឹង " * 300 for number in (1, 2, 3)]
    text = "\n\n".join(paragraphs)
    async with FakeGraphAPI(token=PAGE_TOKEN) as graph:
        settings = with_messenger(make_settings, server, graph)
        app = await build_app(settings)
        try:
            async with app.conversation.sessions() as session, session.begin():
                await add_person(session, "7101", channel="messenger", language="en")
            # The first part goes; the second is refused once (a 500), then everything goes.
            graph.fail("messages", 500, code=2, message="Service temporarily unavailable",
                       after=1)  # fmt: skip
            broadcast_id = await queue_broadcast(
                app, versions={"en": {"kind": "text", "text": text}}
            )
            await send_all(worker_for(app))
            rows = await outbox(app, broadcast_id)
            texts = [body["message"]["text"] for body in graph.accepted()]
            statuses = [call.status for call in graph.calls if call.endpoint == "messages"]
        finally:
            await app.close()
    assert rows["7101"] == ("sent", None)
    assert len(texts) == 3
    for number, received in zip((1, 2, 3), texts, strict=True):
        assert received.startswith(f"Part {number}:")
    assert statuses == [200, 500, 200, 200]  # part 1, part 2 refused, then parts 2 and 3


async def test_a_claim_whose_rows_were_all_skipped_does_not_end_the_round(
    make_settings: Callable[..., Settings], server: FakeBotAPI
) -> None:
    """People who opted out after the broadcast was queued are skipped when claimed; a claim
    that held only such rows is not the end of the broadcast: the worker claims on at once
    (here it would otherwise wait ten minutes before its next look)."""
    app = await build_app(make_settings(telegram_api_url=server.url))
    try:
        async with app.conversation.sessions() as session, session.begin():
            for number in range(10):
                await add_person(session, str(5000 + number), language="en")
        broadcast_id = await started(app, versions={"en": TEXT_EN})  # its outbox is made
        async with app.conversation.sessions() as session, session.begin():
            await session.execute(
                update(User)
                .where(User.external_id.in_([str(5000 + number) for number in range(6)]))
                .values(updates_opt_in=False)
            )
        await send_all(worker_for(app, poll_every=600.0), timeout=30)
        rows = await outbox(app, broadcast_id)
        counted = app.metrics.render().decode()
    finally:
        await app.close()
    assert sorted(status for status, _error in rows.values()) == ["sent"] * 4 + ["skipped"] * 6
    assert sorted(d.chat_id for d in server.delivered()) == [str(5006 + n) for n in range(4)]
    assert 'petitionbot_broadcast_messages_total{outcome="sent"} 4.0' in counted


async def test_claims_slower_than_the_rows_they_bring_are_made_further_ahead(
    app: App, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that answers slowly (across a network, on a busy machine): each claim takes
    80 ms, longer than the twentieth of a second of sending that the smallest claim holds.
    The worker claims further ahead and more at a time, and the rate holds."""
    await add_many(app, 600, first=FIRST)
    claim = store.claim

    async def slow(session: AsyncSession, **arguments: Any) -> store.ClaimedRows:
        await asyncio.sleep(0.08)
        return await claim(session, **arguments)

    monkeypatch.setattr(store, "claim", slow)
    broadcast_id = await queue_broadcast(app, rate=200, paid=True)
    await send_all(worker_for(app))

    times = sorted(d.at for d in server.delivered())
    assert len(times) == 600
    # 10 rows a claim, as before, would make at most 125 a second.
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.85 * 200
    assert busiest_second(times) <= 210
    assert set((await outbox(app, broadcast_id)).values()) == {("sent", None)}


async def test_a_broadcast_leaves_room_for_the_answers_the_bots_are_sending(
    app: App, server: FakeBotAPI
) -> None:
    # Telegram's overall rate is one: with the bots answering people at 16 a second (counted
    # by every process in the database), a broadcast at 20 a second slows down to the rest.
    await add_many(app, 40, first=FIRST)
    await queue_broadcast(app, rate=20)

    async with app.conversation.sessions() as session, session.begin():
        for seconds_ago in range(1, 6):  # they have been answering for a while
            await sends.add_sent(
                session, channel="telegram", count=16, at=time.time() - seconds_ago
            )

    async def answering(stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with app.conversation.sessions() as session, session.begin():
                await sends.add_sent(session, channel="telegram", count=16)
            await asyncio.sleep(1.0)

    stop = asyncio.Event()
    load = asyncio.create_task(answering(stop))
    await asyncio.sleep(0.1)
    try:
        await send_all(worker_for(app))
    finally:
        stop.set()
        await load
    times = sorted(d.at for d in server.delivered())
    assert len(times) == 40
    # 40 messages at 4 a second (20 - 16) take about 10 s; at 20 a second, 2.
    assert times[-1] - times[0] > 6.0, [round(t - times[0], 2) for t in times]
