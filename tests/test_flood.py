"""The flood limit: one person cannot drown the bot, and others do not notice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from bot.flood import FloodGuard, Verdict
from tests.telegram_fakes import FakeUser, RecordingSession

Person = Callable[..., FakeUser]


def test_the_guard_warns_once_then_drops_until_the_window_passes() -> None:
    now = [0.0]
    guard = FloodGuard(limit=3, window=10.0, clock=lambda: now[0])
    assert [guard.check("a") for _ in range(3)] == [Verdict.HANDLE] * 3
    assert guard.check("a") is Verdict.WARN
    assert guard.check("a") is Verdict.DROP
    assert guard.check("b") is Verdict.HANDLE  # someone else is not held back
    now[0] = 10.5
    assert guard.check("a") is Verdict.HANDLE


async def test_a_flooding_person_is_warned_in_their_language_and_then_ignored(
    app: App, person: Person
) -> None:
    app.conversation.flood = FloodGuard()  # the production limit: 20 updates in 10 s
    km = app.translations.get("km").gettext
    flooder, calm = person(40001), person(40002)
    await flooder.send("/start")
    await flooder.press("l:km")
    for _ in range(18):  # with /start and the language button: 20 updates, all answered
        assert await flooder.send("/help") != []
    warning = await flooder.send("/help")
    assert [m.text for m in warning] == [
        km("You are sending messages very fast. Please wait a few seconds.")
    ]
    assert await flooder.send("/help") == []
    assert await calm.send("/start") != []


async def test_two_processes_count_one_burst_together(
    make_settings: Callable[..., Settings],
) -> None:
    # Two processes behind a balancer, each with the production limit in its own memory:
    # one person's updates alternate between them, and the limit is still 20, not 40.
    first, second = await build_app(make_settings()), await build_app(make_settings())
    try:
        _ = first.translations.get(None).gettext
        flooders = []
        for app in (first, second):
            session = RecordingSession()
            bot = build_bot(app.settings, session=session)
            flooders.append(FakeUser(build_dispatcher(app), bot, session, user_id=40003))
        answers = [await flooders[turn % 2].send("/start") for turn in range(24)]
        assert all(answer != [] for answer in answers[:20])
        assert [m.text for m in answers[20]] == [
            _("You are sending messages very fast. Please wait a few seconds.")
        ]
        assert answers[21:] == [[], [], []]
    finally:
        await first.close()
        await second.close()


def test_a_burst_on_the_row_ends_with_its_window() -> None:
    guard = FloodGuard(limit=2, window=10.0)
    start = datetime(2027, 4, 14, 8, 0, tzinfo=UTC)
    verdict, started, count = guard.check_burst(None, 0, start)
    assert (verdict, started, count) == (Verdict.HANDLE, start, 1)
    later = start + timedelta(seconds=3)
    assert guard.check_burst(started, count, later)[0] is Verdict.HANDLE
    assert guard.check_burst(started, 2, later)[0] is Verdict.WARN
    assert guard.check_burst(started, 3, later)[0] is Verdict.DROP
    # Kept without a time zone (SQLite): the same burst.
    assert guard.check_burst(started.replace(tzinfo=None), 3, later)[0] is Verdict.DROP
    fresh = guard.check_burst(started, 9, start + timedelta(seconds=10))
    assert fresh == (Verdict.HANDLE, start + timedelta(seconds=10), 1)
