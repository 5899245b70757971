"""The signer's rights: /mydata, /delete, /stop, /privacy; and logs that name nobody."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.app import App
from db.models import Signature, User
from tests.telegram_fakes import FakeUser

Person = Callable[..., FakeUser]


async def sign(app: App, someone: FakeUser, language: str = "en") -> Callable[[str], str]:
    _ = app.translations.get(language).gettext
    await someone.send("/start")
    await someone.press(f"l:{language}")
    await someone.click(_("✍️ Sign the petition"))
    await someone.click(_("✅ I agree"))
    await someone.send("Sok Sophea")
    await someone.press("co:US")
    await someone.send("Massachusetts")
    await someone.press("b:02")
    await someone.send("sophea@example.org")
    await someone.press("u:y")
    await someone.press("rv:ok")
    return _


async def count(app: App, column: object) -> int:
    async with app.conversation.sessions() as session:
        return (await session.execute(select(func.count(column)))).scalar_one()  # type: ignore[arg-type]


async def test_mydata_shows_everything_kept(app: App, person: Person) -> None:
    someone = person(30001)
    _ = await sign(app, someone)
    await someone.send("/mydata")
    shown = someone.text()
    for kept in ("Sok Sophea", "United States", "Massachusetts", "Battambang",
                 "sophea@example.org", "Language: English"):  # fmt: skip
        assert kept in shown
    async with app.conversation.sessions() as session:
        code = (await session.execute(select(User.share_code))).scalar_one()
    assert _("Your share code: {code}").format(code=code) in shown


async def test_delete_erases_everything_after_a_confirmation(app: App, person: Person) -> None:
    someone, other = person(30002), person(30003)
    _ = await sign(app, someone, "km")
    await sign(app, other)
    assert await count(app, Signature.id) == 2

    await someone.send("/delete")
    await someone.click(_("No, keep it"))
    assert _("Nothing was erased.") in someone.text()
    assert await count(app, Signature.id) == 2

    await someone.send("/delete")
    await someone.click(_("Yes, erase everything"))
    assert (
        _(
            "Everything we kept about you has been erased. Thank you for your support; you are "
            "welcome back at any time."
        )
        in someone.text()
    )
    assert await count(app, Signature.id) == 1
    async with app.conversation.sessions() as session:
        left = (await session.execute(select(User.external_id))).scalars().all()
    assert left == ["30003"]
    # A button from before the erasure is stale, and the person simply starts afresh.
    await someone.press("d:y")
    assert await count(app, Signature.id) == 1
    await someone.send("/start")
    assert set(someone.buttons()) == {"ភាសាខ្មែរ", "English"}


async def test_stop_ends_news_and_the_button_brings_them_back(app: App, person: Person) -> None:
    someone = person(30004)
    _ = await sign(app, someone)

    async def opted_in() -> tuple[bool, bool]:
        async with app.conversation.sessions() as session:
            user = (await session.execute(select(User.updates_opt_in))).scalar_one()
            signed = (await session.execute(select(Signature.updates_opt_in))).scalar_one()
        return user, signed

    assert await opted_in() == (True, True)
    await someone.send("/stop")
    assert _("You will not receive news from the campaign any more.") in someone.text()
    assert await opted_in() == (False, False)
    await someone.send("/start")
    await someone.click(_("🔔 Receive news again"))
    assert await opted_in() == (True, True)


async def test_privacy_notice_and_the_consent_step_links_to_it(app: App, person: Person) -> None:
    someone = person(30005)
    _ = app.translations.get("km").gettext
    await someone.send("/start")
    await someone.press("l:km")
    await someone.send("/sign")
    assert "/privacy" in someone.text()
    await someone.send("/privacy")
    assert "CEROC" in someone.text()
    assert "/delete" in someone.text()
    # The pending question comes back after the notice.
    assert {_("✅ I agree"), _("No, thank you")} == set(someone.buttons())


async def test_logs_name_nobody_on_a_full_signing_run(
    app: App, person: Person, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    someone = person(30006)
    await sign(app, someone)
    await someone.send("/mydata")
    await someone.send("/delete")
    await someone.press("d:y")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("Sok Sophea", "sophea@example.org", "Massachusetts"):
        assert secret not in logged


async def test_an_opt_out_written_meanwhile_by_a_broadcast_worker_is_kept(
    app: App, person: Callable[[int], FakeUser], database_url: str
) -> None:
    # A broadcast worker in another process opts out someone who blocked the bot, between
    # the conversation reading their row and writing it back for another reason.
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks the row for the conversation's transaction")
    from sqlalchemy import update

    from db import queries
    from db.session import create_engine, create_sessionmaker

    someone = person(3030)
    await someone.send("/start")
    await someone.press("l:en")
    async with app.conversation.sessions() as session, session.begin():
        await session.execute(update(User).values(updates_opt_in=True))

    worker = create_engine(database_url)

    async def opt_out() -> None:
        async with create_sessionmaker(worker)() as other, other.begin():
            await other.execute(update(User).values(updates_opt_in=False))

    try:
        async with app.conversation.sessions() as session, session.begin():
            [user] = (await queries.load_users(session, identities=[("telegram", "3030")])).values()
            # The conversation's transaction is the writer from its start: the worker's
            # waits for it (busy_timeout) instead of slipping in between read and write.
            waiting = asyncio.create_task(opt_out())
            await asyncio.sleep(0.3)
            assert not waiting.done()
            user.step = "idle" if user.step != "idle" else "new"  # saved for another reason
            assert await queries.save_users(session, users=[user]) == 1
        await waiting
    finally:
        await worker.dispose()
    async with app.conversation.sessions() as session:
        assert (await session.execute(select(User.updates_opt_in))).scalar_one() is False
