"""Telegram's overall rate is one, shared by the answers to people and the broadcasts: every
process counts the answers it sent, and a broadcaster anywhere leaves them room."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.app import App, build_app
from bot.config import Settings
from bot.workers.answers import publish
from db import sends
from tests.telegram_fakes import FakeUser

T0 = 1_800_000_000.0


async def test_answers_of_every_process_are_summed_over_the_window(
    make_settings: Callable[..., Settings],
) -> None:
    apps = [await build_app(make_settings()) for _ in range(2)]
    try:
        for app, count in zip(apps, (30, 20), strict=True):
            async with app.conversation.sessions() as session, session.begin():
                for second in range(6):  # the second under way (T0) is not counted yet
                    await sends.add_sent(session, channel="telegram", count=count, at=T0 - second)
                await sends.add_sent(session, channel="telegram", count=999, at=T0 - 120)
                await sends.add_sent(session, channel="messenger", count=999, at=T0 - 1)
        async with apps[0].conversation.sessions() as session, session.begin():
            assert await sends.answers_rate(session, channel="telegram", at=T0) == 50.0
            await sends.forget_sent(session, channel="telegram", at=T0)
            # An old second is gone, the last minute stays; Messenger's are its own.
            assert await sends.answers_rate(session, channel="telegram", at=T0 - 117) == 0.0
            assert await sends.answers_rate(session, channel="telegram", at=T0) == 50.0
            assert await sends.answers_rate(session, channel="messenger", at=T0) == 2 * 999 / 5
    finally:
        for app in apps:
            await app.close()


async def test_answers_sent_on_telegram_are_counted_and_published(
    app: App, person: Callable[[int], FakeUser]
) -> None:
    someone = person(5151)
    await someone.send("/start")
    await someone.press("l:en")
    sent = len(someone.session.sent())
    assert app.metrics.unpublished["telegram"] == sent > 0
    await publish(app)
    assert app.metrics.unpublished["telegram"] == 0
    async with app.conversation.sessions() as session:
        # Counted in the second under way, read once it is over.
        rate = await sends.answers_rate(session, channel="telegram", at=time.time() + 1)
        assert rate * sends.WINDOW == sent
    old = time.time() - 300
    async with app.conversation.sessions() as session, session.begin():
        await sends.add_sent(session, channel="telegram", count=7, at=old)
    await publish(app, forget=True)  # nothing new to add, but the old counts go
    async with app.conversation.sessions() as session:
        assert await sends.answers_rate(session, channel="telegram", at=old + 1) == 0.0
