"""Exports: the file's content, formula neutralisation, contacts only when asked, the audit
log, filters; in the chat through the real dispatcher, and from the shell."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.cli import main
from bot.config import Settings
from db import exports as db_exports
from db.models import AuditEntry
from db.protect import ContactCipher
from handlers.admin import exports
from handlers.base import Incoming
from tests.conftest import ADMIN, DATA_KEY, HASH_KEY
from tests.telegram_fakes import FakeUser, RecordingSession

ROOT = Path(__file__).resolve().parent.parent
CIPHER = ContactCipher([DATA_KEY], HASH_KEY)
ENGLISH_HEADER = [
    "No.", "Signed at (UTC)", "Full name", "Country code", "Country",
    "State, province or city", "Province of birth", "Language", "Channel", "Source",
    "Share code", "Wants news",
]  # fmt: skip
DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]


def signature(**fields: Any) -> dict[str, Any]:
    """A row for the signatures table, as the chat would have written it."""
    at = fields.pop("at", datetime(2026, 5, 1, 9, 30, tzinfo=UTC))
    phone, email = fields.pop("phone", None), fields.pop("email", None)
    row = {
        "user_id": None, "full_name": "Sok Dara", "country": "US", "region": "California",
        "birth_province": "12", "phone": CIPHER.seal(phone) if phone else None,
        "email": CIPHER.seal(email) if email else None,
        "contact_hash": CIPHER.fingerprint(phone or email) if (phone or email) else None,
        "updates_opt_in": False, "language": "en", "channel": "telegram", "source": "chat",
        "referrer_code": None, "created_at": at, "updated_at": at, "invalidated_at": None,
    }  # fmt: skip
    row.update(fields)
    return row


async def seed(app: App, *rows: dict[str, Any]) -> None:
    async with app.conversation.sessions() as session, session.begin():
        await db_exports.add_signatures(session, rows=list(rows))


def shell_on(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """`await run("export", ...)` → (exit code, stdout, stderr), on the app's database."""
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("DATA_KEY", DATA_KEY)
    monkeypatch.setenv("HASH_KEY", HASH_KEY)

    async def run(*args: str) -> tuple[int, str, str]:
        # The CLI runs its own event loop, as it does from a shell.
        code = await asyncio.to_thread(main, list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def shell(
    admin_app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """`await shell("export", ...)` → (exit code, stdout, stderr), on the app's database."""
    return shell_on(admin_app, monkeypatch, capsys)


def file_bytes(name: str) -> bytes:
    return Path(name).read_bytes()


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "no byte-order mark: Excel would garble Khmer"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_rows(data: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [[cell.value for cell in row] for row in book.worksheets[0].iter_rows()]


async def audits(app: App) -> list[AuditEntry]:
    async with app.conversation.sessions() as session:
        rows = await session.execute(select(AuditEntry).order_by(AuditEntry.id))
        return list(rows.scalars())


async def test_csv_from_the_shell_holds_the_counted_signatures_with_khmer_intact(
    admin_app: App, shell: Callable[..., Any], tmp_path: Path
) -> None:
    await seed(
        admin_app,
        signature(full_name="សុខ សុភា", country="KH", region=None, birth_province="17",
                  language="km", referrer_code="abc123", updates_opt_in=True),
        signature(full_name="Fake Person", invalidated_at=datetime(2026, 5, 2, tzinfo=UTC)),
        signature(full_name="Chan Dara", at=datetime(2026, 6, 2, 18, 0, 5, tzinfo=UTC),
                  birth_province="abroad", channel="paper", source="import"),
    )  # fmt: skip
    out = tmp_path / "signatures.csv"
    code, said, _ = await shell("export", "--format", "csv", "--out", str(out))
    assert code == 0
    assert f"2 signatures written to {out} (CSV, without contacts)." in said
    rows = csv_rows(out.read_bytes())
    assert rows == [
        ENGLISH_HEADER,
        ["1", "2026-05-01 09:30:00", "សុខ សុភា", "KH", "Cambodia", "", "Siemreap", "Khmer",
         "telegram", "chat", "abc123", "yes"],
        # The set-aside signature is left out, and numbers are the signers' places.
        ["2", "2026-06-02 18:00:05", "Chan Dara", "US", "United States", "California",
         "outside Cambodia", "English", "paper", "import", "", "no"],
    ]  # fmt: skip
    assert out.stat().st_mode & 0o077 == 0  # names inside: readable by its owner only

    everything = tmp_path / "all.csv"
    code, _, _ = await shell(
        "export", "--out", str(everything), "--include-invalidated", "--language", "km"
    )
    rows = csv_rows(everything.read_bytes())
    assert [row[2] for row in rows[1:]] == ["សុខ សុភា", "Fake Person", "Chan Dara"]
    assert [row[0] for row in rows[1:]] == ["1", "", "2"]  # set aside: no number
    assert rows[2][-1] == "2026-05-02 00:00:00"  # the day it was set aside
    assert rows[1][4] == "កម្ពុជា"  # country names in Khmer, from CLDR
    assert rows[1][6] == "សៀមរាប"


async def test_column_names_follow_the_readers_language(admin_app: App) -> None:
    """Khmer headers come from the translations."""
    khmer = admin_app.translations.get("km").gettext

    await seed(admin_app, signature(full_name="ហេង សំណាង", country="KH", language="km"))
    for kind, read in (("csv", csv_rows), ("xlsx", xlsx_rows)):
        buffer = io.BytesIO()
        async with admin_app.conversation.sessions() as session:
            count = await exports.write_export(
                session, buffer, exports.ExportRequest(kind), gettext=khmer, language="km",
                cipher=None,
            )  # fmt: skip
        rows = read(buffer.getvalue())
        assert count == 1
        assert rows[0] == [khmer(name) for name in ENGLISH_HEADER]
        assert rows[0][2] == "ឈ្មោះពេញ"
        assert rows[1][2] == "ហេង សំណាង"
        assert rows[1][7] == "ភាសាខ្មែរ"


@pytest.mark.parametrize("first", DANGEROUS)
async def test_no_cell_can_start_a_formula(
    admin_app: App, shell: Callable[..., Any], tmp_path: Path, first: str
) -> None:
    payload = f'{first}HYPERLINK("http://evil.example","x")'
    await seed(
        admin_app,
        signature(full_name=f"{first}Sok", region=payload, referrer_code=f"{first}code",
                  phone="+85512345678", email="@dara@example.org"),
    )  # fmt: skip
    for kind, read in (("csv", csv_rows), ("xlsx", xlsx_rows)):
        out = tmp_path / f"out.{kind}"
        code, _, _ = await shell("export", "--out", str(out), "--with-contacts")
        assert code == 0
        row = read(out.read_bytes())[1]
        # XML reads a bare carriage return as a line feed: still text, still behind the quote.
        shown = first if kind == "csv" else first.replace("\r", "\n")
        assert row[2] == f"'{shown}Sok"
        assert row[5] == f"'{payload.replace(first, shown, 1)}"
        assert row[10] == f"'{shown}code"
        assert row[12] == "'+85512345678"  # readable, and never a formula
        assert row[13] == "'@dara@example.org"
        if kind == "xlsx":
            sheet = openpyxl.load_workbook(out).worksheets[0]
            for cell in sheet[2]:
                assert cell.data_type in ("s", "n"), (cell.coordinate, cell.data_type)
            assert sheet["A2"].data_type == "n"  # the number stays a number


async def test_contacts_only_when_asked_decrypted_and_every_export_audited(
    admin_app: App, shell: Callable[..., Any], tmp_path: Path
) -> None:
    await seed(
        admin_app,
        signature(full_name="Sok Dara", phone="+85512345678"),
        signature(full_name="Keo Bopha", email="bopha@example.org"),
    )
    plain = tmp_path / "plain.xlsx"
    code, said, _ = await shell("export", "--format", "xlsx", "--out", str(plain))
    assert (code, "2 signatures written" in said) == (0, True)
    rows = xlsx_rows(plain.read_bytes())
    assert rows[0] == ENGLISH_HEADER
    assert not any(str(value).startswith("gAAAA") for row in rows for value in row)  # tokens

    full = tmp_path / "full.csv"
    code, said, _ = await shell("export", "--out", str(full), "--with-contacts")
    assert "(CSV, with phone numbers and e-mails)" in said
    rows = csv_rows(full.read_bytes())
    assert rows[0][-2:] == ["Phone", "E-mail"]
    assert [row[-2:] for row in rows[1:]] == [["'+85512345678", ""], ["", "bopha@example.org"]]

    code, said, _ = await shell("export", "--out", "-", "--country", "United States")
    assert code == 0
    assert said.startswith("\ufeff")  # CSV on standard output
    assert csv_rows(said.encode())[2][2] == "Keo Bopha"

    entries = [entry for entry in await audits(admin_app) if entry.action == "export"]
    assert [(entry.actor, entry.detail["format"], entry.detail["with_contacts"],
             entry.detail["count"]) for entry in entries] == [
        ("shell", "xlsx", False, 2), ("shell", "csv", True, 2), ("shell", "csv", False, 2),
    ]  # fmt: skip
    assert entries[2].detail["country"] == "US"
    assert "Sok" not in str([entry.detail for entry in entries])


async def test_without_keys_contacts_cannot_be_exported(
    admin_app: App, shell: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_KEY", "")
    monkeypatch.setenv("HASH_KEY", "")
    out = tmp_path / "x.csv"
    code, _, err = await shell("export", "--out", str(out), "--with-contacts")
    assert code == 1
    assert "DATA_KEY and HASH_KEY, which decrypt them, are not set" in err
    assert not out.exists()
    assert await audits(admin_app) == []


async def test_filters_by_country_code_and_days(
    admin_app: App, shell: Callable[..., Any], tmp_path: Path
) -> None:
    await seed(
        admin_app,
        signature(full_name="Early Bird", country="KH",
                  at=datetime(2026, 3, 31, 23, 59, tzinfo=UTC)),
        signature(full_name="April Fool", country="KH", at=datetime(2026, 4, 1, tzinfo=UTC)),
        signature(full_name="Long Beach", country="US", at=datetime(2026, 4, 2, tzinfo=UTC)),
        signature(full_name="Code Bearer", country="KH", referrer_code="ny2027",
                  at=datetime(2026, 4, 14, 23, 0, tzinfo=UTC)),
        signature(full_name="Late Comer", country="KH", at=datetime(2026, 4, 15, tzinfo=UTC)),
    )  # fmt: skip

    async def names(*options: str) -> list[list[str]]:
        out = tmp_path / "f.csv"
        code, _, err = await shell("export", "--out", str(out), *options)
        assert code == 0, err
        return [[row[0], row[2]] for row in csv_rows(out.read_bytes())[1:]]

    assert await names("--country", "KH", "--since", "2026-04-01") == [
        ["2", "April Fool"], ["4", "Code Bearer"], ["5", "Late Comer"],
    ]  # fmt: skip
    assert await names("--country", "កម្ពុជា", "--until", "២០២៦-០៤-១៤") == [
        ["1", "Early Bird"], ["2", "April Fool"], ["4", "Code Bearer"],
    ]  # fmt: skip
    assert await names("--code", "ny2027") == [["4", "Code Bearer"]]
    code, _, err = await shell("export", "--out", str(tmp_path / "f.csv"), "--country", "Frnace")
    assert code == 2
    assert "did you mean France (FR)?" in err
    code, _, err = await shell("export", "--out", str(tmp_path / "f.csv"), "--since", "April")
    assert code == 2
    assert "--since: a day such as 2026-04-01" in err
    code, _, err = await shell("export", "--out", "-", "--format", "xlsx")
    assert code == 2
    assert "cannot go to standard output" in err


# ---------------------------------------------------------------- in the chat


async def start(someone: FakeUser) -> None:
    await someone.send("/start")
    await someone.press("l:en")


async def test_export_in_the_chat_sends_a_file_and_a_non_admin_is_refused(
    admin_app: App, people: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    await seed(
        admin_app,
        signature(full_name="សុខ សុភា", country="KH", phone="+85512345678"),
        signature(full_name="Chan Dara"),
    )
    organiser, stranger = people(ADMIN), people(555)
    for someone in (organiser, stranger):
        await start(someone)

    await stranger.send("/export xlsx")
    assert "I don't know that command" in stranger.text()
    assert session.documents() == []

    await organiser.send("/export")
    assert "Which file?" in organiser.text()
    assert list(organiser.buttons()) == ["CSV", "Excel (XLSX)", "Cancel"]
    await organiser.click("Excel (XLSX)")
    [sent] = session.documents()
    assert sent.chat_id == ADMIN
    today = datetime.now(UTC).date().isoformat()
    assert sent.document.filename == f"signatures-{today}.xlsx"  # type: ignore[union-attr]
    assert sent.caption is not None
    assert sent.caption.startswith("Signatures in this file: 2.")
    assert "Phone numbers and e-mails are not in it" in sent.caption
    rows = xlsx_rows(sent.document.data)  # type: ignore[union-attr]
    assert rows[0] == ENGLISH_HEADER
    assert [row[2] for row in rows[1:]] == ["សុខ សុភា", "Chan Dara"]

    await organiser.press("xf:csv")  # the question was answered: a stale button
    assert "That button is from an earlier message." in organiser.text()
    assert len(session.documents()) == 1

    await organiser.send("/export csv country=KH")
    document = session.documents()[-1]
    assert document.document.filename == f"signatures-KH-{today}.csv"  # type: ignore[union-attr]
    assert "Chosen: country=KH" in (document.caption or "")
    assert [row[2] for row in csv_rows(document.document.data)[1:]] == ["សុខ សុភា"]  # type: ignore[union-attr]

    await organiser.send("/export everything please")
    assert "Write /export for a file of all counted signatures" in organiser.text()
    await organiser.send("/export csv country=Atlantis")
    assert "Write /export for a file" in organiser.text()
    await organiser.send("/export csv since=2099-01-01")
    assert "No counted signature matches that." in organiser.text()


async def test_contacts_in_the_chat_only_after_a_confirmation_and_audited(
    admin_app: App, people: Callable[[int], FakeUser], session: RecordingSession
) -> None:
    await seed(admin_app, signature(full_name="Sok Dara", phone="+85512345678"))
    organiser = people(ADMIN)
    await start(organiser)

    await organiser.send("/export csv contacts")
    assert "You asked for phone numbers and e-mails." in organiser.text()
    assert session.documents() == []
    await organiser.click("Include phone numbers and e-mails")
    document = session.documents()[-1]
    rows = csv_rows(document.document.data)  # type: ignore[union-attr]
    assert rows[0][-2:] == ["Phone", "E-mail"]
    assert rows[1][-2:] == ["'+85512345678", ""]
    assert "keep it safe" in (document.caption or "")

    await organiser.send("/export contacts")  # the format first, then the confirmation
    await organiser.click("Excel (XLSX)")
    assert "You asked for phone numbers and e-mails." in organiser.text()
    await organiser.click("Without them")
    rows = xlsx_rows(session.documents()[-1].document.data)  # type: ignore[union-attr]
    assert rows[0] == ENGLISH_HEADER

    await organiser.send("/export csv contacts")
    await organiser.click("Cancel")
    assert "Nothing was exported." in organiser.text()
    assert len(session.documents()) == 2

    await organiser.send("/audit")
    audit = organiser.text()
    assert "telegram:777 export count=1 format=xlsx include_invalidated=False" in audit
    assert "with_contacts=False" in audit
    assert "with_contacts=True" in audit
    assert "Sok" not in audit
    assert "855" not in audit


async def test_without_keys_the_chat_says_contacts_cannot_be_exported(
    make_settings: Callable[..., Settings], session: RecordingSession
) -> None:
    app = await build_app(make_settings(admin_ids=str(ADMIN), data_key="", hash_key=""))
    try:
        await seed(app, signature())
        organiser = FakeUser(
            build_dispatcher(app), build_bot(app.settings, session=session), session, ADMIN
        )
        await start(organiser)
        await organiser.send("/export xlsx contacts")
        assert "cannot be exported: the keys that decrypt them" in organiser.text()
        assert session.documents() == []
        await organiser.send("/export xlsx")
        assert len(session.documents()) == 1
    finally:
        await app.close()


async def test_the_console_saves_the_export(admin_app: App, tmp_path: Path) -> None:
    from bot.channels.console import render

    await seed(admin_app, signature())

    async def console(text: str) -> list[Any]:
        shown: list[Any] = []

        async def deliver(replies: list[Any]) -> bool:
            shown.extend(replies)
            return True

        await admin_app.conversation.process(
            channel="console", user_id=str(ADMIN), update_key=None,
            incoming=Incoming.message(text), share_link=lambda code: None, deliver=deliver,
        )  # fmt: skip
        await admin_app.conversation.settle()  # the file follows the update
        return shown

    await console("/start")
    await console("English")
    replies = await console("/export csv")
    shown, _options = render(replies, tmp_path)
    assert "file saved:" in shown
    saved = shown.split("file saved: ", 1)[1].split("]", 1)[0]
    assert saved.endswith(".csv")
    assert csv_rows(file_bytes(saved))[1][2] == "Sok Dara"


async def test_a_large_export_comes_later_while_the_bot_answers_others(
    admin_app: App,
    people: Callable[[int], FakeUser],
    session: RecordingSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "INLINE_ROWS", 2)
    await seed(
        admin_app,
        signature(full_name="Sok Dara", phone="+85512345678"),
        signature(full_name="Chan Dara"),
        signature(full_name="Keo Malis", country="KH"),
    )
    organiser, signer = people(ADMIN), people(556)
    await start(organiser)
    await organiser.send("/export xlsx contacts")
    await organiser.click("Include phone numbers and e-mails")
    assert "Making the file of 3 signatures" in organiser.text()
    await signer.send("/start")  # someone else is answered meanwhile
    assert signer.seen

    await admin_app.conversation.settle()
    [sent] = session.documents()
    assert sent.chat_id == ADMIN
    assert (sent.caption or "").startswith("Signatures in this file: 3.")
    rows = xlsx_rows(sent.document.data)  # type: ignore[union-attr]
    assert [row[2] for row in rows[1:]] == ["Sok Dara", "Chan Dara", "Keo Malis"]
    assert "'+85512345678" in rows[1]
    async with admin_app.conversation.sessions() as db:
        query = select(AuditEntry).where(AuditEntry.action == "export")
        entry = (await db.execute(query)).scalars().one()
    assert entry.action == "export"
    assert entry.detail["with_contacts"] is True
    assert entry.detail["count"] == 3
