"""`petitionbot export` and `petitionbot import`: signatures in and out as files.

    petitionbot export --format csv|xlsx [--country KH] [--code C] [--since DAY] [--until DAY]
                       [--with-contacts] [--include-invalidated] [--language km|en] --out FILE
    petitionbot import FILE.csv|FILE.xlsx [--apply] [--skip-rejected] [--drop-contacts]
    petitionbot import --template FILE.csv|FILE.xlsx

An import checks every row with the chat's own rules (names, countries, regions, provinces,
phones, e-mails) and only reports until `--apply`; then it writes every accepted row in one
transaction, or nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from bot.cli.common import in_transaction
from bot.config import Settings
from db.protect import ContactCipher
from drawings import spreadsheets
from words.text import ascii_digits, fold, normalise

SHELL = "shell"  # the audit log's actor for what is done from the command line
PAPER = "paper"  # the channel of signatures gathered on paper


def add_commands(commands: Any) -> None:
    """Add this module's subcommands to the `petitionbot` parser."""
    export = commands.add_parser(
        "export", help="write the signatures to a CSV or XLSX file (counted ones by default)"
    )
    export.add_argument(
        "--format", choices=spreadsheets.FORMATS, help="csv or xlsx (default: from --out)"
    )
    export.add_argument("--out", required=True, help="the file to write; - is standard output")
    export.add_argument("--country", help="only this country of residence (code or name)")
    export.add_argument("--code", help="only signatures brought by this share code")
    export.add_argument("--since", help="only signatures from this day on (2026-04-01)")
    export.add_argument("--until", help="only signatures up to this day, included")
    export.add_argument(
        "--with-contacts", action="store_true", help="add phone numbers and e-mails (decrypted)"
    )
    export.add_argument(
        "--include-invalidated",
        action="store_true",
        help="also the signatures set aside with /invalidate (with the day they were)",
    )
    export.add_argument(
        "--language", choices=("en", "km"), default="en", help="language of the column names"
    )
    paper = commands.add_parser(
        "import",
        help="add signatures gathered on paper from a CSV or XLSX file (a dry run by default)",
    )
    paper.add_argument("file", nargs="?", type=Path, help="the .csv or .xlsx file")
    paper.add_argument("--apply", action="store_true", help="write them (default: only check)")
    paper.add_argument(
        "--skip-rejected", action="store_true", help="with --apply: add the good rows anyway"
    )
    paper.add_argument(
        "--drop-contacts",
        action="store_true",
        help="without DATA_KEY/HASH_KEY: add rows with a phone or e-mail, leaving it out",
    )
    paper.add_argument(
        "--template", type=Path, metavar="FILE", help="write an empty sheet to fill in, and stop"
    )


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the subcommand if it is one of this module's; None otherwise."""
    if args.command == "export":
        return asyncio.run(_export(args, settings))
    if args.command == "import":
        if args.template is not None:
            return _template(args.template)
        if args.file is None:
            _fail("import: name the file to read, or write a template with --template FILE")
            return 2
        return asyncio.run(_import(args, settings))
    return None


def _fail(message: str) -> None:
    print(message, file=sys.stderr)


# ---------------------------------------------------------------- export


def _day(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(ascii_digits(text.strip()), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{option}: a day such as 2026-04-01, not {text!r}") from None


def export_filter(args: argparse.Namespace) -> Any:
    """The command's options as a SignatureFilter; ValueError naming a bad option."""
    from db.queries import SignatureFilter
    from handlers.reading import places

    country = None
    if args.country:
        country, close = places.match_country(args.country)
        if country is None:
            raise ValueError(f"--country: no country {args.country!r}{_suggest(close)}")
    until = _day(args.until, "--until")
    return SignatureFilter(
        country=country,
        code=args.code or None,
        since=_day(args.since, "--since"),
        until=until + timedelta(days=1) if until else None,  # the whole last day
    )


def _suggest(codes: list[str]) -> str:
    from handlers.reading import places

    names = [f"{places.country_name(code, 'en')} ({code})" for code in codes]
    return f" (did you mean {' or '.join(names)}?)" if names else ""


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.admin.exports import ExportRequest, audit_export, write_export
    from words.i18n import Translations

    to_stdout = args.out == "-"
    fmt = args.format or ("csv" if to_stdout else Path(args.out).suffix.lower().lstrip("."))
    if fmt not in spreadsheets.FORMATS:
        _fail("export: say --format csv or --format xlsx (or end --out with .csv or .xlsx)")
        return 2
    if to_stdout and fmt == "xlsx":
        _fail("export: an XLSX file cannot go to standard output; name a file with --out")
        return 2
    try:
        where = export_filter(args)
    except ValueError as error:
        _fail(f"export: {error}")
        return 2
    cipher = settings.contact_cipher()
    if args.with_contacts and cipher is None:
        _fail(
            "export: phone numbers and e-mails cannot be exported: DATA_KEY and HASH_KEY, "
            "which decrypt them, are not set. Leave out --with-contacts for the rest."
        )
        return 1
    request = ExportRequest(
        fmt, where, with_contacts=args.with_contacts, include_invalidated=args.include_invalidated
    )
    gettext = Translations(settings.locales_dir).get(args.language).gettext
    target = None if to_stdout else Path(args.out)
    try:
        # A file appears whole or not at all: written beside its final name (readable only
        # by its owner: it holds names), renamed once the export is recorded.
        out: IO[bytes] = (
            sys.stdout.buffer
            if target is None
            else tempfile.NamedTemporaryFile(  # noqa: SIM115  renamed or removed below
                dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
            )
        )
    except OSError as error:
        _fail(f"export: cannot write {args.out}: {error.strerror or error}")
        return 1

    async def task(session: Any) -> int:
        # The temporary file's own file object: its wrapper would relay every write.
        raw = out if target is None else out.file  # type: ignore[attr-defined]
        count = await write_export(
            session, raw, request, gettext=gettext, language=args.language, cipher=cipher
        )
        out.flush()
        await audit_export(
            session, actor=SHELL, request=request, count=count, language=args.language
        )
        return count

    try:
        count = await in_transaction(settings, task)
        if target is not None:
            out.close()
            os.replace(out.name, target)
    except OSError as error:
        _fail(f"export: cannot write {args.out}: {error.strerror or error}")
        return 1
    finally:
        if target is not None:
            _discard(out)
    contacts = "with phone numbers and e-mails" if args.with_contacts else "without contacts"
    where_to = "standard output" if to_stdout else args.out
    print(
        f"{_many(count, 'signature')} written to {where_to} ({fmt.upper()}, {contacts}).",
        file=sys.stderr if to_stdout else sys.stdout,
    )
    return 0


def _many(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _discard(out: IO[bytes]) -> None:
    # After a successful rename there is nothing left to remove.
    out.close()
    Path(out.name).unlink(missing_ok=True)


# ---------------------------------------------------------------- import: the sheet


# Each column an import reads, and the headers that name it (English and Khmer; compared
# case-insensitively, without punctuation; a header "name / ឈ្មោះ" matches either half).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "signer", "ឈ្មោះ", "ឈ្មោះពេញ", "នាមត្រកូល និងនាមខ្លួន",
             "គោត្តនាម និងនាម"),
    "country": ("country", "country of residence", "country where you live", "country code",
                "ប្រទេស", "ប្រទេសរស់នៅ", "ប្រទេសដែលរស់នៅ"),
    "region": ("region", "state", "province or state", "state province or city", "city",
               "តំបន់", "រដ្ឋ", "ទីក្រុង", "រដ្ឋ ខេត្ត ឬទីក្រុង"),
    "birthplace": ("birthplace province", "birthplace", "province of birth", "birth province",
                   "born in", "ខេត្តកំណើត", "ស្រុកកំណើត", "ទីកន្លែងកំណើត"),
    "phone": ("phone", "phone number", "telephone", "mobile", "ទូរស័ព្ទ", "លេខទូរស័ព្ទ"),
    "email": ("email", "e mail", "e-mail", "អ៊ីមែល", "អ៉ីមែល"),
    "date": ("date", "signed on", "date signed", "day", "កាលបរិច្ឆេទ", "ថ្ងៃខែឆ្នាំ", "ថ្ងៃទី",
             "ថ្ងៃចុះហត្ថលេខា"),
    "code": ("collector code", "collector", "code", "share code", "volunteer code",
             "លេខកូដអ្នកប្រមូល", "កូដអ្នកប្រមូល", "លេខកូដ"),
    "language": ("language", "ភាសា"),
}  # fmt: skip
REQUIRED = ("name", "country", "birthplace", "date")
# The template's header row: English and Khmer in each cell, so a volunteer reads either.
TEMPLATE = (
    "name / ឈ្មោះ", "country / ប្រទេស", "region / តំបន់", "birthplace province / ខេត្តកំណើត",
    "phone / ទូរស័ព្ទ", "email / អ៊ីមែល", "date / កាលបរិច្ឆេទ",
    "collector code / លេខកូដអ្នកប្រមូល",
)  # fmt: skip
_HEADER_INDEX = {fold(alias): column for column, aliases in COLUMNS.items() for alias in aliases}
_ABROAD_WORDS = {fold(word) for word in (
    "abroad", "outside cambodia", "born abroad", "born outside cambodia", "not in cambodia",
    "ក្រៅប្រទេស", "ក្រៅប្រទេសកម្ពុជា", "កើតនៅក្រៅប្រទេស", "កើតនៅក្រៅប្រទេសកម្ពុជា",
)}  # fmt: skip
_LANGUAGE_WORDS = {fold(word): code for word, code in (
    ("km", "km"), ("khmer", "km"), ("ខ្មែរ", "km"), ("ភាសាខ្មែរ", "km"),
    ("en", "en"), ("english", "en"), ("អង់គ្លេស", "en"), ("ភាសាអង់គ្លេស", "en"),
)}  # fmt: skip


def header_columns(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Which cell holds which column ({"name": 0, ...}), and the headers not understood."""
    found: dict[str, int] = {}
    unknown = []
    for index, cell in enumerate(header):
        if not cell.strip():
            continue
        halves = [cell, *re.split(r"[/|()\n]", cell)]
        column = next(
            (_HEADER_INDEX[fold(half)] for half in halves if fold(half) in _HEADER_INDEX), None
        )
        if column is None or column in found:
            unknown.append(cell)
        else:
            found[column] = index
    return found, unknown


def _template(path: Path) -> int:
    kind = path.suffix.lower().lstrip(".")
    if kind not in spreadsheets.FORMATS:
        _fail("import --template: name a .csv or .xlsx file")
        return 2
    if path.exists():
        _fail(f"import --template: {path} exists already; name a new file")
        return 2
    if kind == "csv":
        with path.open("wb") as handle:
            sheet = spreadsheets.open_sheet("csv", handle)
            sheet.write(TEMPLATE)
            sheet.close()
    else:
        _xlsx_template(path)
    print(
        f"{path}: a header row to fill in, one signature a row. Dates as 2027-04-14; "
        "region, phone, e-mail and collector code may stay empty."
    )
    return 0


def _xlsx_template(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Signatures"
    sheet.append(TEMPLATE)
    sheet.freeze_panes = "A2"
    for index, width in enumerate((28, 18, 18, 24, 18, 26, 14, 22), start=1):
        letter = openpyxl.utils.get_column_letter(index)
        sheet.column_dimensions[letter].width = width
        sheet[f"{letter}1"].font = openpyxl.styles.Font(bold=True)
    # Phones and codes typed in Excel stay text: a leading + or 0 is not eaten as a number.
    for letter in ("E", "H"):
        for row in range(2, 1002):
            sheet[f"{letter}{row}"].number_format = "@"
    book.save(path)


# ---------------------------------------------------------------- import: each row


@dataclass(frozen=True, slots=True)
class PaperSignature:
    """A row that passed every check, ready to write (contacts still in clear)."""

    row: int  # as the spreadsheet numbers it: the header is row 1
    name: str
    country: str
    region: str | None
    birth: str
    phone: str | None
    email: str | None
    day: date
    code: str | None
    language: str
    dropped_contact: bool = False  # it had one, left out (no keys, --drop-contacts)

    def name_key(self) -> tuple[str, str, str, str]:
        """What tells the same person without a contact: name, country, region, birthplace."""
        return fold(self.name), self.country, fold(self.region or ""), self.birth


def read_day(text: str, order: str | None) -> date | None:
    """A day written YYYY-MM-DD (Khmer digits too), or D/M/YYYY / M/D/YYYY when `order`
    ("dmy" or "mdy") or the numbers themselves say which; None when unreadable."""
    value = ascii_digits(normalise(text))
    try:
        found = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T][\d:.]+)?", value)
        if found:
            return date(int(found[1]), int(found[2]), int(found[3]))
        found = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", value)
        if found:
            first, second, year = int(found[1]), int(found[2]), int(found[3])
            if first > 12 or (order == "dmy" and second <= 12) or first == second:
                return date(year, second, first)
            if second > 12 or order == "mdy":
                return date(year, first, second)
    except ValueError:
        return None
    return None


def day_order(values: Iterable[str]) -> str | None:
    """How a file writes D/M/YYYY dates, told by the dates only one order can read."""
    seen = set()
    for value in values:
        found = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.]\d{4}", ascii_digits(value.strip()))
        if found:
            first, second = int(found[1]), int(found[2])
            if first > 12:
                seen.add("dmy")
            elif second > 12:
                seen.add("mdy")
    return seen.pop() if len(seen) == 1 else None


@dataclass(slots=True)
class RowChecker:
    """The chat's rules, applied to one row of a sheet at a time."""

    columns: dict[str, int]
    today: date
    order: str | None
    contacts_allowed: bool  # keys are set
    drop_contacts: bool

    def check(self, number: int, cells: list[str]) -> PaperSignature | list[str]:
        """The signature a row holds, or every reason it cannot be taken."""
        from db.codes import SHARE_CODE
        from handlers.reading import places, validation

        def cell(column: str) -> str:
            index = self.columns.get(column)
            if index is None or index >= len(cells):
                return ""
            return spreadsheets.unneutralise(cells[index].strip())

        problems: list[str] = []
        name, name_problem = validation.check_name(cell("name"))
        if name is None:
            why = name_problem.value if name_problem else ""
            problems.append(_NAME_PROBLEMS.get(why, "name: not a name"))
        country, close = places.match_country(cell("country"))
        if country is None:
            if not cell("country"):
                problems.append("country: empty")
            else:
                problems.append(f"country: no country {cell('country')!r}{_suggest(close)}")
        region = None
        if cell("region"):
            region = validation.check_short_text(cell("region"))
            if region is None:
                problems.append("region: not a place name of at most 100 letters")
            elif country is not None:
                region = places.canonical_region(country, region)
        birth = self._birthplace(cell("birthplace"), problems)
        phone, email, dropped = self._contacts(cell("phone"), cell("email"), country, problems)
        day = self._day(cell("date"), problems)
        code = cell("code") or None
        if code is not None and not SHARE_CODE.fullmatch(code):
            problems.append(f"collector code: {code!r} is not a code (letters, digits, - and _)")
        language = _LANGUAGE_WORDS.get(fold(cell("language")))
        if cell("language") and language is None:
            problems.append(f"language: {cell('language')!r} is not Khmer or English")
        if problems or name is None or country is None or birth is None or day is None:
            return problems
        return PaperSignature(
            row=number, name=name, country=country, region=region, birth=birth,
            phone=phone, email=email, day=day, code=code,
            language=language or ("km" if _has_khmer(name) else "en"), dropped_contact=dropped,
        )  # fmt: skip

    def _birthplace(self, text: str, problems: list[str]) -> str | None:
        from handlers.reading import places

        if not text:
            problems.append("birthplace province: empty")
            return None
        if fold(text) in _ABROAD_WORDS:
            return places.ABROAD
        code = places.match_province(text)
        if code is None:
            problems.append(f"birthplace province: no province {text!r}")
        return code

    def _contacts(
        self, phone_text: str, email_text: str, country: str | None, problems: list[str]
    ) -> tuple[str | None, str | None, bool]:
        from handlers.reading import validation

        if not phone_text and not email_text:
            return None, None, False
        if not self.contacts_allowed:
            if not self.drop_contacts:
                problems.append(
                    "phone/e-mail: DATA_KEY and HASH_KEY are not set, so contacts cannot be "
                    "kept (add --drop-contacts to leave them out)"
                )
            return None, None, True
        phone = validation.parse_phone(phone_text, country) if phone_text else None
        if phone_text and phone is None:
            problems.append("phone: not a phone number")
        email = validation.parse_email(email_text) if email_text else None
        if email_text and email is None:
            problems.append("e-mail: not an e-mail address")
        return phone, email, False

    def _day(self, text: str, problems: list[str]) -> date | None:
        if not text:
            problems.append("date: empty")
            return None
        day = read_day(text, self.order)
        if day is None:
            problems.append(f"date: cannot read {text!r}; write it as 2027-04-14")
        elif day > self.today:
            problems.append(f"date: {day.isoformat()} is in the future")
            return None
        return day


_NAME_PROBLEMS = {
    "too_short": "name: too short",
    "too_long": "name: longer than 100 letters",
    "link": "name: holds a link",
    "digits": "name: holds digits",
    "symbols": "name: only Khmer or Latin letters, please",
}


def _has_khmer(text: str) -> bool:
    return any("\u1780" <= char <= "\u17ff" for char in text)


# ---------------------------------------------------------------- import: the plan


@dataclass(slots=True)
class ImportPlan:
    """What an import would do: rows to add, duplicates, rejected rows (with reasons)."""

    read: int = 0
    new: list[PaperSignature] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    dropped_contacts: int = 0


async def plan_import(
    session: Any,
    rows: Iterable[tuple[int, list[str]]],
    checker: RowChecker,
    cipher: ContactCipher | None,
) -> ImportPlan:
    """Check every row, then find those already signed (in the database or earlier in the
    file): by contact fingerprint, or by name, country, region and birthplace for a row
    without a contact."""
    from db import exports as db_exports

    plan = ImportPlan()
    accepted: list[PaperSignature] = []
    for number, cells in rows:
        plan.read += 1
        result = checker.check(number, cells)
        if isinstance(result, PaperSignature):
            accepted.append(result)
        else:
            plan.rejected.append((number, "; ".join(result)))

    def prints(signature: PaperSignature) -> list[str]:
        if cipher is None:
            return []
        return [cipher.fingerprint(value) for value in (signature.phone, signature.email) if value]

    hashes = {value for signature in accepted for value in prints(signature)}
    known_hashes = await db_exports.known_contact_hashes(session, hashes=hashes)
    keys = {signature.name_key() for signature in accepted if not prints(signature)}
    known_keys: set[tuple[str, str, str, str]] = set()
    if keys:
        async for name, country, region, birth in db_exports.stream_identities(
            session, countries={key[1] for key in keys}
        ):
            key = (fold(name), country, fold(region or ""), birth)
            if key in keys:
                known_keys.add(key)
    first_row: dict[object, int] = {}
    for signature in accepted:
        contact = prints(signature)
        seen = [first_row[value] for value in contact if value in first_row]
        if contact and known_hashes.intersection(contact):
            plan.duplicates.append(
                (signature.row, "same phone or e-mail as a signature already made")
            )
        elif seen:
            plan.duplicates.append((signature.row, f"same phone or e-mail as row {seen[0]}"))
        elif not contact and signature.name_key() in known_keys:
            plan.duplicates.append(
                (
                    signature.row,
                    "same name, country, region and birthplace as a signature already made",
                )
            )
        elif not contact and signature.name_key() in first_row:
            plan.duplicates.append(
                (
                    signature.row,
                    "same name, country, region and birthplace as row "
                    f"{first_row[signature.name_key()]}",
                )
            )
        else:
            plan.new.append(signature)
        for value in [*contact, signature.name_key()]:
            first_row.setdefault(value, signature.row)
    plan.dropped_contacts = sum(1 for signature in plan.new if signature.dropped_contact)
    codes = Counter(signature.code for signature in plan.new if signature.code)
    known = await db_exports.known_codes(session, codes=codes)
    plan.unknown_codes = Counter({code: n for code, n in codes.items() if code not in known})
    return plan


def signature_rows(
    plan: ImportPlan, cipher: ContactCipher | None, now: datetime
) -> Iterator[dict[str, Any]]:
    """The new signatures as table rows: no chat user, source "import", channel "paper",
    the collector's code as referrer, noon UTC of the day written (or now, if sooner),
    contacts sealed."""
    for signature in plan.new:
        signed_at = min(datetime.combine(signature.day, time(12), tzinfo=UTC), now)
        contact = signature.phone or signature.email
        yield {
            "user_id": None, "full_name": signature.name, "country": signature.country,
            "region": signature.region, "birth_province": signature.birth,
            "phone": cipher.seal(signature.phone) if cipher and signature.phone else None,
            "email": cipher.seal(signature.email) if cipher and signature.email else None,
            "contact_hash": cipher.fingerprint(contact) if cipher and contact else None,
            "updates_opt_in": False, "language": signature.language, "channel": PAPER,
            "source": "import", "referrer_code": signature.code, "created_at": signed_at,
            "updated_at": now, "invalidated_at": None,
        }  # fmt: skip


def _numbered(rows: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    for number, cells in enumerate(rows, start=2):
        if any(cell.strip() for cell in cells):  # blank lines are no one
            yield number, cells


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from db import exports as db_exports
    from db import milestones, queries
    from db.models import utcnow

    path: Path = args.file
    try:
        rows = spreadsheets.read_rows(
            path, max_rows=settings.import_max_rows, max_columns=settings.import_max_columns
        )
        header = next(rows, None)
        if header is None:
            _fail(f"{path.name}: the file is empty")
            return 2
        columns, unknown = header_columns(header)
        missing = [column for column in REQUIRED if column not in columns]
        if missing:
            _fail(
                f"{path.name}: no column for {', '.join(missing)}. The first row must name the "
                f"columns, e.g.: {', '.join(TEMPLATE)} (petitionbot import --template "
                "FILE.xlsx writes one)."
            )
            return 2
        body = list(_numbered(rows))
    except spreadsheets.SpreadsheetError as error:
        _fail(str(error))
        return 2
    except OSError as error:
        _fail(f"{path}: {error.strerror or error}")
        return 2
    cipher = settings.contact_cipher()
    now = utcnow()
    date_index = columns["date"]
    checker = RowChecker(
        columns=columns,
        today=now.date(),
        order=day_order(cells[date_index] for _, cells in body if date_index < len(cells)),
        contacts_allowed=cipher is not None,
        drop_contacts=args.drop_contacts,
    )

    async def task(session: Any) -> int:
        plan = await plan_import(session, body, checker, cipher)
        _report(path, plan, unknown, checker.order)
        if not args.apply:
            hint = f" Add --apply to add the {len(plan.new):,}." if plan.new else ""
            print(f"Nothing written (a dry run).{hint}")
            return 0
        if plan.rejected and not args.skip_rejected:
            print(
                f"Nothing written: {len(plan.rejected):,} rows are rejected. Correct them, or "
                "add --skip-rejected to add the others without them."
            )
            return 1
        try:
            added = await db_exports.add_signatures(
                session, rows=list(signature_rows(plan, cipher, now))
            )
        except SQLAlchemyError as error:
            # Raised on, so that the transaction rolls back whatever went in before.
            raise _WriteFailed(type(getattr(error, "orig", None) or error).__name__) from error
        await queries.audit(
            session, actor=SHELL, action="import", rows=plan.read, added=added,
            duplicates=len(plan.duplicates), rejected=len(plan.rejected),
            skipped_rejected=bool(plan.rejected), dropped_contacts=plan.dropped_contacts,
            file_sha256=_digest(path),
        )  # fmt: skip
        total = await milestones.counted_total(session)
        # In the same transaction, as the signing flow does: the running bot announces them.
        passed = await milestones.reach(session, total=total, goal=settings.petition_goal)
        print(
            f"Added {_many(added, 'signature')} (source import, channel {PAPER}); "
            f"{_many(total, 'signature')} count now."
        )
        if passed:
            print(f"Milestones passed: {', '.join(f'{value:,}' for value in passed)}.")
        return 0

    try:
        return await in_transaction(settings, task)
    except _WriteFailed as error:
        print(f"Nothing written: the database refused the import ({error}); no row was added.")
        return 1


class _WriteFailed(Exception):
    """Writing the rows failed; the transaction is rolled back."""


def _digest(path: Path) -> str:
    # Which file was imported, without keeping anything it holds.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _report(path: Path, plan: ImportPlan, unknown: list[str], order: str | None) -> None:
    print(f"{path.name}: {plan.read:,} rows read.")
    if unknown:
        print(f"  Columns ignored: {', '.join(repr(name) for name in unknown)}")
    if order:
        way = "day/month/year" if order == "dmy" else "month/day/year"
        print(f"  Dates such as 1/2/2027 read as {way}.")
    with_contact = sum(1 for signature in plan.new if signature.phone or signature.email)
    print(f"  {len(plan.new):,} would be added ({with_contact:,} with a phone or e-mail).")
    if plan.dropped_contacts:
        print(f"  {plan.dropped_contacts:,} rows have a phone or e-mail that will be left out.")
    for code, count in sorted(plan.unknown_codes.items()):
        print(f"  Collector code {code!r} ({count:,} rows) is not a known share code.")
    if plan.duplicates:
        print(f"  {len(plan.duplicates):,} duplicates, left out:")
        for number, why in plan.duplicates:
            print(f"    row {number}: {why}")
    if plan.rejected:
        print(f"  {len(plan.rejected):,} rejected:")
        for number, why in plan.rejected:
            print(f"    row {number}: {why}")
