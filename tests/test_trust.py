"""Trust, second round: what people type is masked and erasable, anonymising cuts every link
to the person, and a stolen organiser account is contained (roles, audit, four eyes)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.config import Settings
from db import queries
from db.models import AuditEntry, Signature, UnansweredQuestion, User
from handlers import admin
from handlers.base import MESSAGE_LIMIT
from tests.conftest import ADMIN, app_with_admins, people_of
from tests.telegram_fakes import FakeUser, RecordingSession

SECOND_OWNER = 778
ORGANISER = 555
PHONE_TYPED = "+855 12 345 678"
PHONE_KHMER = "០៩៦ ៧៧៧ ៨៨៨៨"
EMAIL = "sok.dara.private@example.com"


@pytest.fixture
async def owners_app(make_settings: Callable[..., Settings]) -> AsyncIterator[App]:
    """Two owners (ADMIN_IDS) and, once added, an organiser."""
    async for application in app_with_admins(make_settings, ADMIN, SECOND_OWNER):
        yield application


@pytest.fixture
def members(owners_app: App, session: RecordingSession) -> Callable[[int], FakeUser]:
    return people_of(owners_app, session)


async def start(someone: FakeUser) -> FakeUser:
    await someone.send("/start")
    await someone.press("l:en")
    return someone


async def sign(someone: FakeUser, name: str, contact: str | None = None) -> None:
    await start(someone)
    for payload in ("go:sign", "c:y"):
        await someone.press(payload)
    await someone.send(name)
    for payload in ("co:US", "r:skip", "b:12"):
        await someone.press(payload)
    if contact:
        await someone.send(contact)
    else:
        await someone.press("ct:skip")
    await someone.press("u:y")
    await someone.press("rv:ok")
    assert "Thank you" in someone.text()


def sent_to(session: RecordingSession, chat: int) -> str:
    return "\n".join(message.text for message in session.sent() if message.chat_id == chat)


async def audit_actions(app: App) -> list[str]:
    async with app.conversation.sessions() as db:
        rows = await db.execute(select(AuditEntry.action).order_by(AuditEntry.id))
        return list(rows.scalars())


# ---------------------------------------------------------------- what people type


async def test_contacts_typed_in_a_question_are_masked_shown_to_the_asker_and_erased(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    asker = await start(people(4001))
    await asker.send(f"Please call me about the temple meeting on {PHONE_TYPED} or {EMAIL}")
    await asker.send(f"តើការប្រកួតបាល់ទាត់ចាប់ផ្តើមម៉ោងប៉ុន្មាន? ទូរស័ព្ទមកលេខ {PHONE_KHMER}")
    async with admin_app.conversation.sessions() as db:
        kept = list((await db.execute(select(UnansweredQuestion.text))).scalars())
    assert kept == [
        "Please call me about the temple meeting on [phone] or [e-mail]",
        "តើការប្រកួតបាល់ទាត់ចាប់ផ្តើមម៉ោងប៉ុន្មាន? ទូរស័ព្ទមកលេខ [phone]",
    ]

    organiser = await start(people(ADMIN))
    await organiser.send("/questions")
    assert "[phone]" in organiser.text()
    assert "[e-mail]" in organiser.text()
    assert "345" not in organiser.text()
    assert "example.com" not in organiser.text()

    await asker.send("/mydata")
    assert "temple meeting on [phone]" in asker.text()
    await asker.send("/delete")
    await asker.press("d:y")
    async with admin_app.conversation.sessions() as db:
        assert (await db.execute(select(func.count(UnansweredQuestion.id)))).scalar_one() == 0


async def test_a_long_list_of_questions_is_split_under_telegrams_limit(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    for number in range(12):
        asker = await start(people(4100 + number))
        words = " ".join(f"word{number}x{index}" for index in range(45))
        await asker.send(f"Question number {number} about something else entirely: {words}")
    organiser = await start(people(ADMIN))
    await organiser.send("/questions")
    assert len(organiser.seen) >= 2
    assert all(len(message.text) <= MESSAGE_LIMIT for message in organiser.seen)
    assert "word11x44" in organiser.text()
    assert "word0x44" in organiser.text()


# ---------------------------------------------------------------- roles


async def test_an_organiser_can_neither_add_admins_nor_block_anyone_with_rights(
    owners_app: App, members: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    owner, other_owner = await start(members(ADMIN)), await start(members(SECOND_OWNER))
    await owner.send(f"/admins add {ORGANISER}")
    assert f"{ORGANISER} is now an organiser" in owner.text()
    # The other owner hears of it, in their chat.
    assert f"Admin {ADMIN} made {ORGANISER} an organiser" in sent_to(session, SECOND_OWNER)

    organiser = await start(members(ORGANISER))
    await organiser.send("/admins add 999")
    assert "Only the owners" in organiser.text()
    for target in (ADMIN, SECOND_OWNER):
        await organiser.send(f"/block {target}")
        assert "Admins cannot be blocked" in organiser.text()
    await owner.send(f"/block {ORGANISER}")
    assert "Admins cannot be blocked" in owner.text()
    await other_owner.send("/help")
    assert other_owner.seen  # still answered
    async with owners_app.conversation.sessions() as db:
        blocked = await db.execute(select(User.external_id).where(User.blocked.is_(True)))
        assert list(blocked.scalars()) == []

    await organiser.send("/block 4242")
    assert "Blocked" in organiser.text()
    await organiser.send("/unblock 4242")
    actions = await audit_actions(owners_app)
    assert actions.count("block_refused") == 3
    assert "admin_refused" in actions
    assert "block" in actions
    assert "unblock" in actions


async def test_an_owner_blocked_before_the_rules_is_still_answered(
    owners_app: App, members: Callable[[int], FakeUser]
) -> None:
    async with owners_app.conversation.sessions() as db, db.begin():
        await queries.set_blocked(db, channel="telegram", external_id=str(ADMIN), blocked=True)
    owner = await start(members(ADMIN))
    await owner.send("/help")
    assert "For organisers:" in owner.text()


async def test_every_admin_command_leaves_an_audit_row(
    owners_app: App, members: Callable[[int], FakeUser]
) -> None:
    owner = await start(members(ADMIN))
    assert len(admin.COMMANDS) >= 13
    for name in sorted(admin.COMMANDS):
        before = len(await audit_actions(owners_app))
        await owner.send(f"/{name}")
        await owner.send("/cancel")  # out of any step the command opened
        after = await audit_actions(owners_app)
        assert len(after) > before, f"/{name} left no audit row"


async def test_setting_aside_and_reading_questions_are_audited(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    await sign(people(4201), "Sok Dara")
    organiser = await start(people(ADMIN))
    await organiser.send("/invalidate country=US")
    await organiser.click("Set them aside")
    await organiser.send("/questions")
    async with admin_app.conversation.sessions() as db:
        rows = (await db.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
    by_action = {entry.action: entry for entry in rows}
    assert by_action["invalidate"].detail["count"] == 1
    assert by_action["invalidate"].detail["country"] == "US"
    assert "questions_view" in by_action


# ---------------------------------------------------------------- four eyes


async def test_contacts_leave_only_with_a_second_owners_approval(
    owners_app: App, members: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    await sign(members(4301), "Sok Dara", "+85512345678")
    await sign(members(4302), "Chan Malis", EMAIL)
    owner, other_owner = await start(members(ADMIN)), await start(members(SECOND_OWNER))
    await owner.send(f"/admins add {ORGANISER}")
    organiser = await start(members(ORGANISER))

    await organiser.send("/export csv contacts")
    assert "Only the owners" in organiser.text()
    assert session.documents() == []

    await owner.send("/export csv contacts")
    await owner.click("Include phone numbers and e-mails")
    assert "needs a second owner's approval" in owner.text()
    assert session.documents() == []
    request = [m for m in session.sent() if m.chat_id == SECOND_OWNER][-1]
    assert f"Owner {ADMIN} asks to export 2 signatures" in request.text
    approve = request.reply_markup.inline_keyboard[0][0].callback_data  # type: ignore[union-attr]
    assert approve is not None
    assert approve.endswith(":y")

    await owner.press(approve)  # nobody approves their own request
    assert "cannot be answered" in owner.text()
    await organiser.press(approve)  # nor an organiser
    assert session.documents() == []

    await other_owner.press(approve)
    assert "Approved" in other_owner.text()
    [document] = session.documents()
    assert document.chat_id == ADMIN
    data = document.document.data  # type: ignore[union-attr]
    assert b"+85512345678" in data
    assert EMAIL.encode() in data
    assert f"approved by owner {SECOND_OWNER}" in sent_to(session, ADMIN)
    await other_owner.press(approve)  # once only
    assert "cannot be answered" in other_owner.text()
    assert len(session.documents()) == 1
    actions = await audit_actions(owners_app)
    for expected in ("export_contacts_refused", "export_contacts_asked",
                     "export_contacts_approved", "export"):  # fmt: skip
        assert expected in actions


async def test_a_refused_request_makes_no_file(
    owners_app: App, members: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    await sign(members(4401), "Sok Dara", "+85512345678")
    owner, other_owner = await start(members(ADMIN)), await start(members(SECOND_OWNER))
    await owner.send("/export xlsx contacts")
    await owner.click("Include phone numbers and e-mails")
    refuse = [m for m in session.sent() if m.chat_id == SECOND_OWNER][-1]
    payload = refuse.reply_markup.inline_keyboard[0][1].callback_data  # type: ignore[union-attr]
    await other_owner.press(payload or "")
    assert "Refused" in other_owner.text()
    assert f"Owner {SECOND_OWNER} refused" in sent_to(session, ADMIN)
    assert session.documents() == []


# ---------------------------------------------------------------- anonymising and retention


def on_disk(database: Path, copy_to: Path) -> bytes:
    """The database as a thief copies it: the file with its write-ahead log."""
    copy_to.mkdir()
    found = b""
    for path in database.parent.glob(database.name + "*"):
        shutil.copy(path, copy_to / path.name)
        found += (copy_to / path.name).read_bytes()
    return found


async def test_anonymised_signatures_join_to_nothing_and_the_file_forgets_them(
    admin_app: App, people: Callable[[int], FakeUser], tmp_path: Path
) -> None:
    signers = {900100201: ("Sokunthea Vannarith", "+85512777001"),
               900100202: ("Bopha Chanthavy", "bopha.chanthavy@example.org")}  # fmt: skip
    for user_id, (name, contact) in signers.items():
        await sign(people(user_id), name, contact)
    shared = await start(people(900100203))
    await shared.send(f"/start {await share_code(admin_app, 900100201)}")
    unfinished = await start(people(900100204))
    await unfinished.press("go:sign")
    await unfinished.press("c:y")
    await unfinished.send("Kosal Pheakdey")  # a draft, never signed
    await people(900100201).send(f"Who do I call about my vote? {PHONE_TYPED} {EMAIL}")
    codes = [await share_code(admin_app, user_id) for user_id in (900100201, 900100202)]

    async with admin_app.conversation.sessions() as db, db.begin():
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        assert await queries.anonymise(db, before=tomorrow, apply=True) == 2
    from db import dialect

    await dialect.forget_deleted(admin_app.conversation.sessions)

    async with admin_app.conversation.sessions() as db:
        rows = (await db.execute(select(Signature))).scalars().all()
        assert len(rows) == 2  # the counts stay
        assert {(row.country, row.birth_province, row.language) for row in rows} == {
            ("US", "12", "en")
        }
        assert all(row.user_id is None and row.referrer_code is None for row in rows)
        assert all(row.phone is None and row.email is None for row in rows)
        assert all(row.created_at.hour == 12 and row.created_at.minute == 0 for row in rows)
        left = list((await db.execute(select(User.external_id))).scalars())
        assert "900100201" not in left
        assert "900100202" not in left
        drafts = await db.execute(select(User.draft).where(User.external_id == "900100204"))
        assert drafts.scalar_one() == {}
        assert (await db.execute(select(func.count(UnansweredQuestion.id)))).scalar_one() == 0

    if not admin_app.settings.database_url.startswith("sqlite"):
        return  # PostgreSQL keeps dead rows until VACUUM: the byte search is SQLite's
    database = Path(admin_app.settings.database_url.split("///", 1)[1])
    raw = on_disk(database, tmp_path / "stolen")
    needles = ["Sokunthea", "Vannarith", "Bopha", "Chanthavy", "Kosal Pheakdey",
               "bopha.chanthavy", "85512777001", "900100201", "900100202", EMAIL,
               "345 678", *codes]  # fmt: skip
    found = [needle for needle in needles if needle.encode() in raw]
    assert found == []


async def share_code(app: App, user_id: int) -> str:
    async with app.conversation.sessions() as db:
        query = select(User.share_code).where(User.external_id == str(user_id))
        code = (await db.execute(query)).scalar_one()
    assert code
    return str(code)


async def test_a_deleted_person_leaves_no_trace_in_the_file(
    admin_app: App, people: Callable[[int], FakeUser], tmp_path: Path
) -> None:
    if not admin_app.settings.database_url.startswith("sqlite"):
        pytest.skip("a byte search of the database file is SQLite's")
    someone = people(900100301)
    await sign(someone, "Sovannara Thidakun", "sovannara.thidakun@example.net")
    await someone.send(f"Can my cousin call me on {PHONE_TYPED} about registering?")
    await someone.send("/delete")
    await someone.press("d:y")
    assert "has been erased" in someone.text()
    database = Path(admin_app.settings.database_url.split("///", 1)[1])
    raw = on_disk(database, tmp_path / "stolen")
    for needle in ("Sovannara", "Thidakun", "sovannara.thidakun", "900100301"):
        assert needle.encode() not in raw, needle


async def test_old_questions_and_unfinished_drafts_expire(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    asker = await start(people(4501))
    await asker.send("What time does the football match start tonight?")
    await asker.press("go:sign")
    await asker.press("c:y")
    await asker.send("Nary Sokha")  # an answer given, never finished
    now = datetime.now(UTC)
    settings = admin_app.settings
    async with admin_app.conversation.sessions() as db, db.begin():
        kept = await queries.expire(
            db,
            questions_before=now - timedelta(days=settings.question_retention_days),
            drafts_before=now - timedelta(days=settings.draft_retention_days),
        )
    assert kept == (0, 0)  # too recent
    async with admin_app.conversation.sessions() as db, db.begin():
        gone = await queries.expire(
            db, questions_before=now + timedelta(seconds=1), drafts_before=now + timedelta(days=1)
        )
    assert gone == (1, 1)
    await asker.send("/mydata")
    assert "Nary Sokha" not in asker.text()
    assert "football" not in asker.text()
