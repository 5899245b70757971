"""The flood limit: one person cannot drown the bot, and others do not notice."""

from __future__ import annotations

from collections.abc import Callable

from bot.app import App
from bot.flood import FloodGuard, Verdict
from tests.telegram_fakes import FakeUser

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
