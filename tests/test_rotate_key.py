"""`petitionbot rotate-key`: every contact sealed again with the newest key, a batch of people
at a time, while people go on answering."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import db.session
from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from db.models import Signature, User
from db.protect import ContactCipher, new_key
from tests.conftest import DATA_KEY, HASH_KEY
from tests.telegram_fakes import FakeUser, RecordingSession

OLD = DATA_KEY  # the key every test's data is sealed with first
BATCH = 500  # people a rotation transaction covers at most


class Watch:
    """What the rotation's own engine does: its commits, the rows each transaction wrote, and
    a moment to act in (just after the rotation read the drafts)."""

    def __init__(self) -> None:
        self.written: list[int] = []  # rows written, per committed transaction
        self.during: Callable[[], None] | None = None
        self._writing = 0

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "after_cursor_execute", self._executed)
        event.listen(engine.sync_engine, "commit", self._committed)
        event.listen(engine.sync_engine, "rollback", self._rolled_back)

    def _executed(self, _conn: Any, cursor: Any, statement: str, parameters: Any,
                  _context: Any, executemany: bool) -> None:  # fmt: skip
        words = statement.split()
        if words[0].upper() == "UPDATE":
            self._writing += len(parameters) if executemany else max(cursor.rowcount, 0)
        if statement.startswith("SELECT users.id, users.draft") and self.during:
            during, self.during = self.during, None
            during()

    def _committed(self, _conn: Any) -> None:
        self.written.append(self._writing)
        self._writing = 0

    def _rolled_back(self, _conn: Any) -> None:
        self._writing = 0


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Watch:
    """Watch the engines the command line makes (it runs in a thread of its own)."""
    watching = Watch()
    original = db.session.create_engine

    def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
        engine = original(url, echo=echo)
        if threading.current_thread() is not threading.main_thread():
            watching.attach(engine)  # the command line's, not the bot's
        return engine

    monkeypatch.setattr(db.session, "create_engine", create_engine)
    return watching


RotateKey = Callable[[], Awaitable[tuple[int, str, str]]]


@pytest.fixture
def fresh() -> str:
    """The new key, put in front of DATA_KEY for the rotation."""
    return new_key()


@pytest.fixture
def rotate_key(
    make_settings: Callable[..., Settings],
    fresh: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> RotateKey:
    """Run `petitionbot rotate-key` with DATA_KEY = the fresh key, then the old one."""
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", make_settings().database_url)
    monkeypatch.setenv("DATA_KEY", f"{fresh},{OLD}")
    monkeypatch.setenv("HASH_KEY", HASH_KEY)

    async def run() -> tuple[int, str, str]:
        # The command line runs its own event loop, as it does from a shell; this test's loop
        # stays free for the conversations going on meanwhile.
        code = await asyncio.to_thread(main, ["rotate-key"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
async def restarted(make_settings: Callable[..., Settings], fresh: str) -> AsyncIterator[App]:
    """The bot as the operator restarts it before rotating: the fresh key first."""
    application = await build_app(make_settings(data_key=f"{fresh},{OLD}"))
    yield application
    await application.close()


def person(app: App, session: RecordingSession, user_id: int) -> FakeUser:
    return FakeUser(
        build_dispatcher(app), build_bot(app.settings, session=session), session, user_id
    )


async def up_to_contact(someone: FakeUser, contact: str) -> None:
    """Answer every question up to the contact; the news question is asked next."""
    await someone.send("/start")
    await someone.press("l:en")
    await someone.press("go:sign")
    await someone.press("c:y")
    await someone.send("Sok Dara")
    await someone.press("co:KH")
    await someone.press("r:skip")
    await someone.press("b:12")
    await someone.send(contact)


async def sign(someone: FakeUser, contact: str) -> None:
    await up_to_contact(someone, contact)
    await someone.press("u:y")
    await someone.press("rv:ok")


async def stored(app: App) -> tuple[dict[str, dict[str, Any]], list[tuple[Any, ...]]]:
    """Every draft by external id, and every signature's (id, phone, email)."""
    async with app.conversation.sessions() as session:
        rows = await session.execute(select(User.external_id, User.draft))
        drafts = {external_id: draft for external_id, draft in rows}
        signatures = (
            await session.execute(
                select(Signature.id, Signature.phone, Signature.email).order_by(Signature.id)
            )
        ).all()
    return drafts, [tuple(row) for row in signatures]


async def test_every_contact_opens_with_only_the_new_key_and_a_rerun_changes_nothing(
    make_settings: Callable[..., Settings],
    session: RecordingSession,
    restarted: App,
    fresh: str,
    rotate_key: RotateKey,
) -> None:
    before = await build_app(make_settings())  # the bot with the old key only
    try:
        await sign(person(before, session, 71001), "012 345 678")
        await sign(person(before, session, 71002), "sophea@example.org")
        await up_to_contact(person(before, session, 71003), "dara@example.org")
        async with before.conversation.sessions() as db, db.begin():
            # A signature from paper, tied to no chat.
            await db.execute(
                insert(Signature).values(
                    full_name="Chan Thida", country="KH", birth_province="01", language="km",
                    channel="paper", email=ContactCipher([OLD], HASH_KEY).seal("thida@example.org"),
                )
            )  # fmt: skip
    finally:
        await before.close()
    # Someone answering the restarted bot before the rotation: already sealed with the new key.
    await up_to_contact(person(restarted, session, 71004), "vuthy@example.org")
    drafts, _signatures = await stored(restarted)
    already = drafts["71004"]["email"]

    code, out, err = await rotate_key()
    assert code == 0, err
    assert out.split()[0] == "4"  # three signatures and one draft; the new-key one stays
    newest = ContactCipher([fresh], HASH_KEY)
    drafts, signatures = await stored(restarted)
    assert newest.open(drafts["71003"]["email"]) == "dara@example.org"
    assert drafts["71004"]["email"] == already
    opened = [
        (newest.open(phone or ""), newest.open(email or "")) for _id, phone, email in signatures
    ]
    assert (opened[0][0] or "").endswith("12345678")
    assert opened[1:] == [(None, "sophea@example.org"), (None, "thida@example.org")]

    # Interrupted or not, a second run finds nothing left to do.
    code, out, err = await rotate_key()
    assert (code, out.split()[0]) == (0, "0"), err
    assert await stored(restarted) == (drafts, signatures)


async def test_a_contact_no_key_opens_is_left_as_it_is_and_reported(
    make_settings: Callable[..., Settings], session: RecordingSession, fresh: str,
    rotate_key: RotateKey,
) -> None:  # fmt: skip
    stranger = ContactCipher([new_key()], HASH_KEY).seal("lost@example.org")
    app = await build_app(make_settings())
    try:
        await sign(person(app, session, 72001), "sophea@example.org")
        async with app.conversation.sessions() as db, db.begin():
            await db.execute(
                insert(Signature).values(
                    full_name="Chan Thida", country="KH", birth_province="01", language="km",
                    channel="paper", email=stranger,
                )
            )  # fmt: skip

        code, _out, err = await rotate_key()
        assert code == 1
        assert "1 contact" in err
        _drafts, signatures = await stored(app)
        newest = ContactCipher([fresh], HASH_KEY)
        assert newest.open(signatures[0][2] or "") == "sophea@example.org"
        assert signatures[1][2] == stranger
    finally:
        await app.close()


async def test_an_answer_given_while_its_batch_rotates_is_kept_and_sealed_with_the_new_key(
    make_settings: Callable[..., Settings],
    session: RecordingSession,
    restarted: App,
    fresh: str,
    rotate_key: RotateKey,
    watch: Watch,
) -> None:
    before = await build_app(make_settings())
    try:
        await sign(person(before, session, 73001), "sophea@example.org")
        await up_to_contact(person(before, session, 73002), "dara@example.org")
    finally:
        await before.close()
    # The same person, now talking to the restarted bot: they answer the news question just
    # as the rotation has read the drafts of their batch.
    someone = person(restarted, session, 73002)
    loop = asyncio.get_running_loop()
    answered: list[concurrent.futures.Future[Any]] = []

    def during() -> None:
        answered.append(asyncio.run_coroutine_threadsafe(someone.press("u:y"), loop))
        # Give the answer time to land if nothing holds it back; a rotation that holds the
        # batch's locks makes it wait until the batch is written.
        concurrent.futures.wait(answered, timeout=1.0)

    watch.during = during
    code, _out, err = await rotate_key()
    assert code == 0, err
    assert answered
    await asyncio.wrap_future(answered[0])

    drafts, signatures = await stored(restarted)
    draft = drafts["73002"]
    assert draft.get("updates") is True  # their answer is still there
    async with restarted.conversation.sessions() as db:
        step = (await db.execute(select(User.step).where(User.external_id == "73002"))).scalar()
    assert step == "review"
    assert ContactCipher([fresh], HASH_KEY).open(draft["email"]) == "dara@example.org"
    assert ContactCipher([fresh], HASH_KEY).open(signatures[0][2] or "") == "sophea@example.org"


async def test_many_people_are_rotated_in_short_transactions(
    make_settings: Callable[..., Settings], fresh: str, rotate_key: RotateKey, watch: Watch
) -> None:
    old = ContactCipher([OLD], HASH_KEY)
    people = 2_000
    app = await build_app(make_settings())
    try:
        async with app.conversation.sessions() as db, db.begin():
            await db.execute(
                insert(User),
                [{"id": n, "channel": "telegram", "external_id": str(n), "step": "updates",
                  "draft": {"name": "Sok Dara", "email": old.seal(f"p{n}@example.org")}}
                 for n in range(1, people + 1)],
            )  # fmt: skip
            await db.execute(
                insert(Signature),
                [{"user_id": n, "full_name": "Sok Dara", "country": "KH", "birth_province": "12",
                  "language": "en", "channel": "telegram", "phone": old.seal(f"+8551200{n:04}")}
                 for n in range(1, people + 1, 2)],
            )  # fmt: skip

        code, out, err = await rotate_key()
        assert code == 0, err
        assert out.split()[0] == str(people + people // 2)
        # Each transaction covers one batch of people (a draft and a signature each at most),
        # so conversations wait for one batch, never for the whole rotation.
        assert max(watch.written) <= 2 * BATCH
        assert len([rows for rows in watch.written if rows]) >= people // BATCH
        assert len(err.splitlines()) >= people // BATCH  # progress, batch by batch

        newest = ContactCipher([fresh], HASH_KEY)
        drafts, signatures = await stored(app)
        assert all(
            newest.open(draft["email"]) == f"p{external_id}@example.org"
            for external_id, draft in drafts.items()
        )
        assert len(signatures) == people // 2
        assert all(newest.open(phone or "") for _id, phone, _email in signatures)
    finally:
        await app.close()
