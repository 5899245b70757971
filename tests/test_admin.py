"""Organisers' tools for abuse: blocking a user id, setting signatures aside by filter."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from bot.app import App
from db.models import Signature
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser


async def sign(someone: FakeUser, country: str = "US", name: str = "Sok Dara") -> None:
    await someone.send("/start")
    await someone.press("l:en")
    for payload in ("go:sign", "c:y"):
        await someone.press(payload)
    await someone.send(name)
    for payload in (f"co:{country}", "r:skip", "b:12", "ct:skip", "u:n", "rv:ok"):
        await someone.press(payload)


async def test_a_blocked_user_gets_no_answer_and_cannot_sign(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    organiser, spammer = people(ADMIN), people(888)
    await organiser.send("/start")
    await organiser.press("l:en")
    await spammer.send("/start")
    assert spammer.seen

    await spammer.send("/block 777")  # not an admin: the answer to any unknown command
    unknown = admin_app.translations.get("km").gettext
    assert unknown("I don't know that command. Here is what I can do:") in spammer.text()
    await organiser.send("/block 888")
    assert "Blocked" in organiser.text()
    await sign(spammer)
    assert spammer.seen == []
    async with admin_app.conversation.sessions() as session:
        assert (await session.execute(select(Signature.id))).first() is None

    await organiser.send("/unblock 888")
    await spammer.send("/help")
    assert spammer.seen


async def test_signatures_are_set_aside_by_filter_after_a_count(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    for user_id, country in ((901, "US"), (902, "US"), (903, "FR")):
        await sign(people(user_id), country)
    organiser = people(ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")

    await organiser.send("/invalidate everything")
    assert "Say which signatures" in organiser.text()
    await organiser.send("/invalidate country=US since=2020-01-01")
    assert "2 signatures match." in organiser.text()
    await organiser.click("Set them aside")
    assert "2 signatures set aside." in organiser.text()

    async with admin_app.conversation.sessions() as session:
        rows = (await session.execute(select(Signature.country, Signature.invalidated_at))).all()
    assert sorted((country, when is not None) for country, when in rows) == [
        ("FR", False), ("US", True), ("US", True),
    ]  # fmt: skip
    newcomer = people(904)
    await sign(newcomer, "CA")
    # A number once given is never given again (several processes sign at once): the
    # newcomer is the fourth to sign, while the total counts only what is not set aside.
    assert "You are signer number 4." in newcomer.text()
    assert "2 of 10,000 signatures so far" in newcomer.text()


async def test_admins_are_added_and_removed_from_the_chat_and_audited(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    organiser, volunteer = people(ADMIN), people(555)
    for someone in (organiser, volunteer):
        await someone.send("/start")
        await someone.press("l:en")

    await volunteer.send("/audit")  # not yet an admin: the unknown-command answer
    assert "I don't know that command" in volunteer.text()
    await organiser.send("/admins add ៥៥៥")  # Khmer digits are fine
    assert "555 is now an organiser" in organiser.text()
    await organiser.send("/admins add 555")
    assert "555 is already an admin" in organiser.text()
    await organiser.send("/admins")
    assert "777 (set in ADMIN_IDS)" in organiser.text()
    assert "555, organiser, added on" in organiser.text()

    await volunteer.send("/help")
    assert "For organisers:" in volunteer.text()
    # An organiser changes nobody's rights: only owners (ADMIN_IDS) add or remove admins.
    for attempt in ("/admins remove 777", "/admins remove 555", "/admins add 556"):
        await volunteer.send(attempt)
        assert "Only the owners" in volunteer.text()
    await volunteer.send("/admins add someone")
    assert "Write /admins to see them" in volunteer.text()
    await organiser.send(f"/admins remove {ADMIN}")
    assert "You cannot remove yourself" in organiser.text()

    await organiser.send("/admins remove 555")
    assert "555 is no longer an admin" in organiser.text()
    await volunteer.send("/audit")
    assert "I don't know that command" in volunteer.text()

    await organiser.send("/audit")
    audit = organiser.text()
    assert "telegram:777 admin_remove target=555" in audit
    assert "telegram:777 admin_add target=555" in audit
    assert audit.index("admin_remove") < audit.index("admin_add")  # newest first
    assert "Sok" not in audit


async def test_the_console_acts_as_the_admin_of_the_same_id(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    organiser = people(ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")
    await organiser.send("/admins add 4242")

    async def console(text: str) -> str:
        from handlers.base import Incoming

        replies = await admin_app.conversation.process(
            channel="console",
            user_id="4242",
            update_key=None,
            incoming=Incoming.message(text),
            share_link=lambda code: None,
        )
        return "\n".join(reply.text for reply in replies)

    await console("/start")
    await console("English")
    assert "No admin action recorded yet." not in await console("/audit")
    assert "admin_add target=4242" in await console("/audit")
