"""Signatures gathered on paper: `petitionbot import` checks every row with the chat's rules,
reports (a dry run) and only with --apply writes, all or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.cli import data as cli_data
from bot.config import Settings
from bot.flood import FloodGuard
from db import exports as db_exports
from db.models import AuditEntry, Signature
from tests.telegram_fakes import FakeUser, RecordingSession
from tests.test_exports import CIPHER, shell_on
from tests.test_exports import signature as chat_signature

HEADER = "ឈ្មោះ,Country,Region / តំបន់,ខេត្តកំណើត,Phone,E-mail,Date,Collector code,Notes"
PAPER = [
    HEADER,
    "សុខ សុភា,កម្ពុជា,,សៀមរាប,០១២ ៣៤៥ ៦៧៩,,២០២៦-០៤-១៤,ny2027,",  # 2: new (Khmer digits)
    "Chan Dara,USA,ca,Phnom Penh,,,14/04/2026,ny2027,",  # 3: new (CA is California)
    "chan  DARA,usa,California,phnom penh,,,2026-04-15,,",  # 4: row 3 again
    "Sok 2,US,,Kandal,,,2026-04-14,,",  # 5: rejected
    "Keo Bopha,US,California,Phnom Penh,,,2026-04-01,,",  # 6: signed in the chat already
    "Lim Sreyneang,FR,Île-de-France,born outside Cambodia,+855 12 345 678,,2026-04-13,,",  # 7
    ",,,,,,,,",  # 8: blank, nobody
    "Vann Molyvann,Narnia,,Angkor,,,2099-01-01,bad code!,",  # 9: rejected, four reasons
    "Meas Sokha,KH,,Kandal,12345,meas@,2026-13-01,,",  # 10: rejected
    "Ros Serey,Cambodia,Phnom Penh,ខេត្តតាកែវ,,ros@example.org,13/4/2026,ny2027,",  # 11: new
]


def existing(**fields: Any) -> dict[str, Any]:
    """A signature made in the chat before the paper came in."""
    fields = {"full_name": "Keo Bopha", "updates_opt_in": True, **fields}
    return chat_signature(at=datetime(2026, 3, 1, 9, tzinfo=UTC), **fields)


@pytest.fixture
async def app(make_settings: Callable[..., Settings]) -> AsyncIterator[App]:
    """A database that already holds two signatures from the chat."""
    application = await build_app(make_settings())
    application.conversation.flood = FloodGuard(limit=1_000_000)
    async with application.conversation.sessions() as session, session.begin():
        await db_exports.add_signatures(
            session,
            rows=[existing(), existing(full_name="Dara Chan", phone="+85512345678", region=None)],
        )
    yield application
    await application.close()


@pytest.fixture
def shell(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """`await shell("import", ...)` → (exit code, stdout, stderr), on the app's database."""
    return shell_on(app, monkeypatch, capsys)


@pytest.fixture
def paper(tmp_path: Path) -> Path:
    path = tmp_path / "long-beach.csv"
    path.write_text("\n".join(PAPER) + "\n", encoding="utf-8")
    return path


async def signatures(app: App) -> list[Signature]:
    async with app.conversation.sessions() as session:
        rows = await session.execute(select(Signature).order_by(Signature.id))
        return list(rows.scalars())


async def audit_actions(app: App) -> list[tuple[str, str, dict[str, Any]]]:
    async with app.conversation.sessions() as session:
        rows = await session.execute(select(AuditEntry).order_by(AuditEntry.id))
        return [(entry.actor, entry.action, entry.detail) for entry in rows.scalars()]


async def test_a_dry_run_says_what_would_be_added_and_why_not_the_rest(
    app: App, shell: Callable[..., Any], paper: Path
) -> None:
    code, said, _ = await shell("import", str(paper))
    assert code == 0
    lines = said.splitlines()
    assert lines[:6] == [
        "long-beach.csv: 9 rows read.",
        "  Columns ignored: 'Notes'",
        "  Dates such as 1/2/2027 read as day/month/year.",
        "  3 would be added (2 with a phone or e-mail).",
        "  Collector code 'ny2027' (3 rows) is not a known share code.",
        "  3 duplicates, left out:",
    ]
    assert lines[6:9] == [
        "    row 4: same name, country, region and birthplace as row 3",
        "    row 6: same name, country, region and birthplace as a signature already made",
        "    row 7: same phone or e-mail as a signature already made",
    ]
    assert lines[9] == "  3 rejected:"
    assert lines[10] == "    row 5: name: holds digits"
    assert lines[11] == (
        "    row 9: country: no country 'Narnia' (did you mean Armenia (AM)?); "
        "birthplace province: no province 'Angkor'; "
        "date: 2099-01-01 is in the future; collector code: 'bad code!' is not a code "
        "(letters, digits, - and _)"
    )
    assert lines[12] == (
        "    row 10: phone: not a phone number; e-mail: not an e-mail address; "
        "date: cannot read '2026-13-01'; write it as 2027-04-14"
    )
    assert lines[13] == "Nothing written (a dry run). Add --apply to add the 3."
    assert len(await signatures(app)) == 2
    assert await audit_actions(app) == []


async def test_apply_writes_exactly_the_accepted_rows_and_they_count(
    app: App, shell: Callable[..., Any], paper: Path, session: RecordingSession
) -> None:
    code, said, _ = await shell("import", str(paper), "--apply")
    assert code == 1
    assert (
        "Nothing written: 3 rows are rejected. Correct them, or add --skip-rejected to add "
        "the others without them." in said
    )
    assert len(await signatures(app)) == 2

    code, said, _ = await shell("import", str(paper), "--apply", "--skip-rejected")
    assert code == 0
    assert "Added 3 signatures (source import, channel paper); 5 signatures count now." in said
    added = (await signatures(app))[2:]
    assert [
        (s.full_name, s.country, s.region, s.birth_province, s.referrer_code, s.language)
        for s in added
    ] == [
        ("សុខ សុភា", "KH", None, "17", "ny2027", "km"),
        ("Chan Dara", "US", "California", "12", "ny2027", "en"),
        ("Ros Serey", "KH", "Phnom Penh", "21", "ny2027", "en"),
    ]
    for signature in added:
        assert (signature.user_id, signature.source, signature.channel) == (None, "import", "paper")
        assert signature.updates_opt_in is False
    assert [s.created_at.replace(tzinfo=None) for s in added] == [
        datetime(2026, 4, 14, 12), datetime(2026, 4, 14, 12), datetime(2026, 4, 13, 12),
    ]  # fmt: skip
    khmer, _, ros = added
    assert khmer.phone is not None
    assert CIPHER.open(khmer.phone) == "+85512345679"
    assert khmer.contact_hash == CIPHER.fingerprint("+85512345679")
    assert ros.email is not None
    assert CIPHER.open(ros.email) == "ros@example.org"

    [(actor, action, detail)] = await audit_actions(app)
    assert (actor, action) == ("shell", "import")
    assert {key: detail[key] for key in ("rows", "added", "duplicates", "rejected")} == {
        "rows": 9, "added": 3, "duplicates": 3, "rejected": 3,
    }  # fmt: skip
    assert detail["skipped_rejected"] is True
    assert "Sok" not in str(detail)
    assert "Chan" not in str(detail)

    code, said, _ = await shell("import", str(paper))  # the same sheet again: all known
    assert "  0 would be added (0 with a phone or e-mail)." in said
    assert "  6 duplicates, left out:" in said

    # The imported signatures count: the next signer in the chat is number 6.
    newcomer = FakeUser(
        build_dispatcher(app), build_bot(app.settings, session=session), session, 4321
    )
    await newcomer.send("/start")
    await newcomer.press("l:en")
    for payload in ("go:sign", "c:y"):
        await newcomer.press(payload)
    await newcomer.send("Heng Samnang")
    for payload in ("co:AU", "r:skip", "b:03", "ct:skip", "u:n", "rv:ok"):
        await newcomer.press(payload)
    assert "You are signer number 6." in newcomer.text()
    assert "6 of 10,000 signatures so far" in newcomer.text()

    out = paper.parent / "all.csv"
    code, _, _ = await shell("export", "--out", str(out))
    exported = out.read_text("utf-8-sig").splitlines()
    assert exported[3].split(",")[8:10] == ["paper", "import"]


async def test_a_row_refused_by_the_database_leaves_nothing_written(
    app: App, shell: Callable[..., Any], paper: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third row breaks a NOT NULL constraint after the first two went in, in batches
    of one: the transaction rolls back, and neither rows nor an audit entry remain."""
    real = cli_data.signature_rows

    def broken(*args: Any) -> Iterator[dict[str, Any]]:
        for number, row in enumerate(real(*args), start=1):
            yield {**row, "country": None} if number == 3 else row

    monkeypatch.setattr(cli_data, "signature_rows", broken)
    monkeypatch.setattr(db_exports, "INSERT_BATCH", 1)
    code, said, _ = await shell("import", str(paper), "--apply", "--skip-rejected")
    assert code == 1
    assert "Nothing written: the database refused the import (" in said
    assert len(await signatures(app)) == 2
    assert await audit_actions(app) == []


async def test_an_xlsx_sheet_from_the_template(
    app: App, shell: Callable[..., Any], tmp_path: Path
) -> None:
    template = tmp_path / "template.xlsx"
    code, said, _ = await shell("import", "--template", str(template))
    assert code == 0
    assert "a header row to fill in" in said
    code, _, err = await shell("import", "--template", str(template))
    assert code == 2
    assert "exists already" in err

    book = openpyxl.load_workbook(template)
    sheet = book.active
    assert [cell.value for cell in sheet[1]] == list(cli_data.TEMPLATE)
    assert sheet["E2"].number_format == "@"  # phones typed in Excel stay text
    sheet.append(["ហេង សំណាង", "អូស្ត្រាលី", "Victoria", "កំពង់ចាម", "0412 345 678", None,
                  datetime(2026, 4, 14), "ny2027"])  # fmt: skip
    sheet.append(["Sao Sopheap", "Australia", "vic", "Kampong Cham", "'+61 412 345 679",
                  "sopheap@example.org", date(2026, 4, 15), None])  # fmt: skip
    book.save(template)

    code, said, _ = await shell("import", str(template), "--apply")
    assert code == 0, said
    assert "Added 2 signatures" in said
    added = (await signatures(app))[2:]
    assert [(s.full_name, s.country, s.region, s.birth_province) for s in added] == [
        ("ហេង សំណាង", "AU", "Victoria", "03"), ("Sao Sopheap", "AU", "Victoria", "03"),
    ]  # fmt: skip
    assert added[0].phone is not None
    assert CIPHER.open(added[0].phone) == "+61412345678"
    assert added[1].phone is not None
    assert CIPHER.open(added[1].phone) == "+61412345679"

    csv_template = tmp_path / "template.csv"
    code, _, _ = await shell("import", "--template", str(csv_template))
    assert csv_template.read_bytes().startswith(b"\xef\xbb\xbfname / \xe1")
    code, said, _ = await shell("import", str(csv_template))
    assert "template.csv: 0 rows read." in said


async def test_without_keys_contacts_are_refused_unless_left_out(
    app: App, shell: Callable[..., Any], paper: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_KEY", "")
    monkeypatch.setenv("HASH_KEY", "")
    _, said, _ = await shell("import", str(paper))
    assert "  1 would be added (0 with a phone or e-mail)." in said
    assert (
        "    row 2: phone/e-mail: DATA_KEY and HASH_KEY are not set, so contacts cannot be "
        "kept (add --drop-contacts to leave them out)" in said
    )
    _, said, _ = await shell("import", str(paper), "--drop-contacts")
    assert "  3 rows have a phone or e-mail that will be left out." in said
    # Without keys, the phone cannot tell that row 7 signed already: it is new here.
    assert "  4 would be added (0 with a phone or e-mail)." in said


async def test_files_that_cannot_be_read_are_named_with_the_reason(
    shell: Callable[..., Any], tmp_path: Path
) -> None:
    no_birthplace = tmp_path / "short.csv"
    no_birthplace.write_text("name;country;date\nSok Dara;KH;2026-04-14\n", encoding="utf-8")
    code, _, err = await shell("import", str(no_birthplace))
    assert code == 2
    assert "short.csv: no column for birthplace. The first row must name the columns" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,country,birthplace,date\nJosé,FR,abroad,2026-04-14\n".encode("cp1252"))
    code, _, err = await shell("import", str(latin))
    assert (code, 'is not UTF-8 text. In Excel, save it as "CSV UTF-8"' in err) == (2, True)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    code, _, err = await shell("import", str(old))
    assert "old.xls: an old Excel file; save it as .xlsx or .csv" in err
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    code, _, err = await shell("import", str(broken))
    assert code == 2
    assert "broken.xlsx: not a readable XLSX file" in err
    code, _, err = await shell("import", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "missing.csv" in err
    code, _, err = await shell("import")
    assert code == 2
    assert "name the file to read" in err


def test_days_are_read_as_written() -> None:
    read = cli_data.read_day
    assert read("២០២៦-០៤-១៤", None) == date(2026, 4, 14)
    assert read("2026/4/14 00:00:00", None) == date(2026, 4, 14)
    assert read("14/04/2026", None) == date(2026, 4, 14)  # only one way to read it
    assert read("04/14/2026", None) == date(2026, 4, 14)
    assert read("04/05/2026", None) is None  # April or May? the file must say
    assert read("04/05/2026", "dmy") == date(2026, 5, 4)
    assert read("04/05/2026", "mdy") == date(2026, 4, 5)
    assert read("05/05/2026", None) == date(2026, 5, 5)
    assert read("2026-02-30", None) is None
    assert read("soon", None) is None
    assert cli_data.day_order(["14/04/2026", "01/02/2026"]) == "dmy"
    assert cli_data.day_order(["4/14/2026", "01/02/2026"]) == "mdy"
    assert cli_data.day_order(["14/04/2026", "4/14/2026"]) is None  # both: trust neither


def test_headers_are_recognised_in_english_and_khmer() -> None:
    header = ["Name / ឈ្មោះ", "ប្រទេស", "STATE", "Province of birth", "ថ្ងៃខែឆ្នាំ", "Remarks", "",
              "លេខទូរស័ព្ទ", "e-mail", "Collector"]  # fmt: skip
    found, unknown = cli_data.header_columns(header)
    assert found == {
        "name": 0, "country": 1, "region": 2, "birthplace": 3, "date": 4, "phone": 7,
        "email": 8, "code": 9,
    }  # fmt: skip
    assert unknown == ["Remarks"]
