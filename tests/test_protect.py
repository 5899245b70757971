"""Contact details at rest: encrypted, rotatable, compared by keyed hash; none without keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.app import build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from db.models import Signature
from db.protect import ContactCipher, new_key
from db.rotation import rotate_contacts
from tests.telegram_fakes import FakeUser, RecordingSession


def test_sealed_contacts_open_only_with_our_keys_and_survive_rotation() -> None:
    old, new = new_key(), new_key()
    before = ContactCipher([old], "k" * 40)
    token = before.seal("+85512345678")
    assert "855" not in token
    assert before.open(token) == "+85512345678"
    assert ContactCipher([new], "k" * 40).open(token) is None  # a stranger's key reads nothing
    during = ContactCipher([new, old], "k" * 40)
    rotated = during.rotate(token)
    assert ContactCipher([new], "k" * 40).open(rotated) == "+85512345678"


def test_fingerprints_are_keyed_and_normalised() -> None:
    one, other = ContactCipher([new_key()], "a" * 40), ContactCipher([new_key()], "b" * 40)
    assert one.fingerprint("Sok@Example.org ") == one.fingerprint("sok@example.org")
    assert one.fingerprint("sok@example.org") != other.fingerprint("sok@example.org")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data_key": new_key()}, "DATA_KEY and HASH_KEY: set both, or neither"),
        ({"data_key": "not-a-key", "hash_key": "h" * 40}, "must be Fernet keys"),
        ({"data_key": new_key(), "hash_key": "short"}, "HASH_KEY: at least 32 characters"),
    ],
)
def test_bad_keys_stop_the_program(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def sign_with_phone(someone: FakeUser) -> None:
    await someone.send("/start")
    await someone.press("l:en")
    await someone.press("go:sign")
    await someone.press("c:y")
    await someone.send("Sok Dara")
    await someone.press("co:KH")
    await someone.press("r:skip")
    await someone.press("b:12")


def file_bytes(folder: Path, pattern: str) -> bytes:
    """Everything on disk for a database: the file and its write-ahead log."""
    return b"".join(path.read_bytes() for path in folder.glob(pattern))


async def test_a_copied_database_file_shows_no_contact_in_clear(
    make_settings: Callable[..., Settings], session: RecordingSession, tmp_path: Path
) -> None:
    database = tmp_path / "copied.sqlite3"
    app = await build_app(make_settings(database_url=f"sqlite+aiosqlite:///{database}"))
    try:
        bot = build_bot(app.settings, session=session)
        someone = FakeUser(build_dispatcher(app), bot, session, 61001)
        await sign_with_phone(someone)
        await someone.share_contact("85512345678")
        await someone.press("u:y")
        await someone.press("rv:ok")
        await someone.send("/mydata")
        assert "+85512345678" in someone.text()  # the signer sees their own number
    finally:
        await app.close()
    stored = file_bytes(tmp_path, "copied.sqlite3*")
    assert b"Sok Dara" in stored  # the name is there (the petition needs it)...
    for clear in (b"85512345678", b"12345678"):
        assert clear not in stored  # ...the phone number is not


async def test_without_keys_the_bot_does_not_ask_for_contacts(
    make_settings: Callable[..., Settings],
    session: RecordingSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        app = await build_app(make_settings(data_key=None, hash_key=None))
    try:
        assert "will not ask for phone numbers or e-mails" in caplog.text
        bot = build_bot(app.settings, session=session)
        someone = FakeUser(build_dispatcher(app), bot, session, 61002)
        await sign_with_phone(someone)
        # Straight from the birthplace to the news question.
        assert "May we send you news of the campaign" in someone.text()
        await someone.press("u:n")
        await someone.press("rv:edit")
        assert "Phone or e-mail" not in someone.buttons()
    finally:
        await app.close()


async def test_rotation_reseals_every_stored_contact(
    make_settings: Callable[..., Settings], session: RecordingSession
) -> None:
    app = await build_app(make_settings())
    try:
        bot = build_bot(app.settings, session=session)
        someone = FakeUser(build_dispatcher(app), bot, session, 61003)
        await sign_with_phone(someone)
        await someone.send("dara@example.org")
        await someone.press("u:n")
        await someone.press("rv:ok")
        old_key = app.settings.data_key
        assert old_key is not None
        fresh = new_key()
        rotating = ContactCipher([fresh, old_key.get_secret_value()], "h" * 40)
        assert (await rotate_contacts(app.conversation.sessions, cipher=rotating)).resealed == 1
        async with app.conversation.sessions() as db:
            email = (await db.get(Signature, 1)).email  # type: ignore[union-attr]
        assert ContactCipher([fresh], "h" * 40).open(email or "") == "dara@example.org"
    finally:
        await app.close()


async def test_keys_rotation_and_anonymising_from_the_command_line(
    make_settings: Callable[..., Settings],
    session: RecordingSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from bot.cli import main
    from tests.conftest import DATA_KEY, HASH_KEY

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    app = await build_app(make_settings(database_url=url))
    try:
        bot = build_bot(app.settings, session=session)
        someone = FakeUser(build_dispatcher(app), bot, session, 61004)
        await sign_with_phone(someone)
        await someone.share_contact("85512345678")
        await someone.press("u:y")
        await someone.press("rv:ok")
    finally:
        await app.close()

    fresh = new_key()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_KEY", f"{fresh},{DATA_KEY}")
    monkeypatch.setenv("HASH_KEY", HASH_KEY)

    def run(*args: str) -> tuple[int, str]:
        # The CLI runs its own event loop, as it does from a shell.
        code = main(list(args))
        return code, capsys.readouterr().out

    loop_free = await asyncio.to_thread(run, "new-key")
    assert loop_free[0] == 0
    ContactCipher([loop_free[1].strip()], HASH_KEY)  # a usable key
    code, out = await asyncio.to_thread(run, "rotate-key")
    assert (code, out.split()[0]) == (0, "1")
    code, out = await asyncio.to_thread(run, "anonymise", "--before", "2999-01-01")
    assert "1 signatures made before 2999-01-01 would be anonymised" in out
    code, out = await asyncio.to_thread(run, "anonymise", "--before", "2999-01-01", "--apply")
    assert code == 0

    check = await build_app(make_settings(database_url=url))
    try:
        async with check.conversation.sessions() as db:
            signature = (await db.get(Signature, 1)) or pytest.fail("signature gone")
        assert (signature.full_name, signature.phone, signature.contact_hash) == (
            "(anonymised)", None, None,
        )  # fmt: skip
        assert (signature.country, signature.birth_province) == ("KH", "12")  # counts stay
    finally:
        await check.close()
