"""`/export`: the signatures as a spreadsheet, for admins.

The columns and the writing live here once, for the chat and for `petitionbot export`
(bot/cli/data.py) alike. Contact details leave only when asked for by name, confirmed with
a button in the chat, and only with the keys that decrypt them; every export is audited.

    /export                        → CSV or Excel? (buttons)
    /export xlsx country=KH since=2026-04-01
    /export csv contacts           → confirm with a button, then the file
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import exports as db_exports
from db import queries
from db.protect import ContactCipher
from drawings import spreadsheets
from handlers import signing
from handlers.admin.owners import tell_owners
from handlers.admin.registry import Commands
from handlers.admin.signatures import parse_filter
from handlers.base import Attachment, Button, Context, Incoming, Reply, Step
from handlers.reading import places
from words.i18n import N_
from words.text import ascii_digits, format_number

logger = logging.getLogger(__name__)

# What the admin may type for each format, and for "with phone numbers and e-mails".
FORMAT_WORDS = {"csv": "csv", "xlsx": "xlsx", "excel": "xlsx", "xls": "xlsx"}
CONTACT_WORDS = {"contacts", "contact", "with-contacts", "phones", "ទំនាក់ទំនង"}
# Telegram takes documents up to 50 MB from a bot; leave room for the request around it.
MAX_DOCUMENT = 45 * 1024 * 1024
# Rows handed to the writing thread at a time.
WRITE_BATCH = 2_000
# Larger exports are made after the answer, outside the conversation's transaction, and
# come a little later: the bot goes on answering everyone meanwhile.
INLINE_ROWS = 5_000
SHARE_EVERY = 20  # rows written between two chances for the event loop to run

Gettext = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the format, which signatures, and whether contacts go with them."""

    format: str  # "csv" or "xlsx"
    where: queries.SignatureFilter = field(default_factory=queries.SignatureFilter)
    with_contacts: bool = False
    include_invalidated: bool = False


class ContactsUnavailable(Exception):
    """Contacts were asked for, but the keys that decrypt them are not set."""


# ---------------------------------------------------------------- the file


# (header, width in characters in XLSX); headers in the reader's language.
_COLUMNS = (
    (N_("No."), 8), (N_("Signed at (UTC)"), 20), (N_("Full name"), 28),
    (N_("Country code"), 9), (N_("Country"), 18), (N_("State, province or city"), 22),
    (N_("Province of birth"), 20), (N_("Language"), 10), (N_("Channel"), 11),
    (N_("Source"), 8), (N_("Share code"), 13), (N_("Wants news"), 10),
)  # fmt: skip
_CONTACT_COLUMNS = ((N_("Phone"), 16), (N_("E-mail"), 28))
_SET_ASIDE_COLUMN = (N_("Set aside on"), 20)
_LANGUAGE_NAMES = {"km": N_("Khmer"), "en": N_("English")}


def columns(
    gettext: Gettext, *, with_contacts: bool = False, include_invalidated: bool = False
) -> list[tuple[str, int]]:
    """The export's columns, named in the reader's language, with their XLSX widths."""
    chosen = list(_COLUMNS)
    if with_contacts:
        chosen += _CONTACT_COLUMNS
    if include_invalidated:
        chosen.append(_SET_ASIDE_COLUMN)
    return [(gettext(name), width) for name, width in chosen]


def _when(moment: datetime) -> str:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: both are UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ", "seconds")


class _Cells:
    """Turns export rows into cells in one language, with the lookups cached."""

    def __init__(self, gettext: Gettext, language: str, cipher: ContactCipher | None) -> None:
        self.countries: dict[str, str] = {}
        self.provinces = {code: places.province_name(code, language) for code, *_ in
                          places.provinces()}  # fmt: skip
        self.provinces[places.ABROAD] = gettext("outside Cambodia")
        self.languages = {code: gettext(name) for code, name in _LANGUAGE_NAMES.items()}
        self.yes, self.no = gettext("yes"), gettext("no")
        self.language = language
        self.cipher = cipher
        self.unreadable = 0  # contacts none of the keys opens (a key dropped too early)

    def __call__(self, row: db_exports.ExportRow, *, include_invalidated: bool) -> list[Any]:
        country = self.countries.get(row.country)
        if country is None:
            country = self.countries[row.country] = places.country_name(row.country, self.language)
        cells: list[Any] = [
            row.number, _when(row.signed_at), row.full_name, row.country, country,
            row.region, self.provinces.get(row.birth_province, row.birth_province),
            self.languages.get(row.language, row.language), row.channel, row.source,
            row.referrer_code, self.yes if row.updates_opt_in else self.no,
        ]  # fmt: skip
        if self.cipher is not None:
            cells += [self._open(row.phone), self._open(row.email)]
        if include_invalidated:
            cells.append(_when(row.invalidated_at) if row.invalidated_at else None)
        return cells

    def _open(self, token: str | None) -> str | None:
        # Empty cells stay empty (None): an XLSX file then does not store them at all.
        if not token or self.cipher is None:
            return None
        found = self.cipher.open(token)
        if found is None:
            self.unreadable += 1
        return found


async def write_export(
    session: AsyncSession | None,
    out: IO[bytes],
    request: ExportRequest,
    *,
    gettext: Gettext,
    language: str,
    cipher: ContactCipher | None,
    rows: AsyncIterator[db_exports.ExportRow] | None = None,
    share_every: int | None = None,
) -> int:
    """Stream the signatures a request names into `out` as CSV or XLSX; returns how many.

    Rows go from the database (`session`, or the `rows` given) to the file a batch at a
    time. Turning a batch into cells and writing it (decrypting contacts, openpyxl's XML)
    happens in a worker thread, so the bot goes on answering people meanwhile. Raises
    ContactsUnavailable when contacts are asked for without the keys. `share_every`: rows
    between two pauses that let the bot's event loop run (for exports made while it serves)."""
    if request.with_contacts and cipher is None:
        raise ContactsUnavailable
    chosen = columns(
        gettext,
        with_contacts=request.with_contacts,
        include_invalidated=request.include_invalidated,
    )
    sheet = spreadsheets.open_sheet(
        request.format, out, title=gettext("Signatures"), widths=[width for _, width in chosen]
    )
    sheet.write([name for name, _ in chosen])
    cells = _Cells(gettext, language, cipher if request.with_contacts else None)

    def write(batch: list[db_exports.ExportRow]) -> None:
        for index, row in enumerate(batch, start=1):
            sheet.write(cells(row, include_invalidated=request.include_invalidated))
            if share_every and index % share_every == 0:
                # Let the event loop's thread take the interpreter lock now and then, so
                # the bot answers people while a large file is written.
                time.sleep(0)

    if rows is None:
        assert session is not None, "write_export needs a session or rows"
        rows = db_exports.stream_signatures(
            session,
            where=request.where,
            include_invalidated=request.include_invalidated,
            with_contacts=request.with_contacts,
        )
    count = 0
    batch: list[db_exports.ExportRow] = []
    async for row in rows:
        batch.append(row)
        if len(batch) == WRITE_BATCH:
            count += len(batch)
            await asyncio.to_thread(write, batch)
            batch = []
    count += len(batch)
    await asyncio.to_thread(write, batch)
    await asyncio.to_thread(sheet.close)
    if cells.unreadable:
        logger.warning(
            "%d contacts could not be decrypted with the keys in DATA_KEY", cells.unreadable
        )
    return count


def describe_filter(where: queries.SignatureFilter) -> str:
    """The filter as typed: `country=KH since=2026-04-01` ("" for everything)."""
    return " ".join(f"{name}={value}" for name, value in _filter_words(where).items())


def _filter_words(where: queries.SignatureFilter) -> dict[str, str]:
    """The filter's options as typed, those set only."""
    words = {
        "country": where.country,
        "code": where.code,
        "since": where.since.date().isoformat() if where.since else None,
        # Kept as the start of the next day; shown as the last day included.
        "until": (where.until - timedelta(days=1)).date().isoformat() if where.until else None,
    }
    return {name: value for name, value in words.items() if value}


async def audit_export(
    session: AsyncSession, *, actor: str, request: ExportRequest, count: int, language: str
) -> None:
    """Record an export: who, which options and filter, how many rows; never a name."""
    await queries.audit(
        session,
        actor=actor,
        action="export",
        format=request.format,
        with_contacts=request.with_contacts,
        include_invalidated=request.include_invalidated,
        count=count,
        language=language,
        **_filter_words(request.where),
    )


def file_name(request: ExportRequest, today: datetime | None = None) -> str:
    """`signatures-2026-11-23.xlsx`, with the country when the export has one."""
    day = (today or datetime.now(UTC)).date().isoformat()
    country = f"{request.where.country}-" if request.where.country else ""
    return f"signatures-{country}{day}.{request.format}"


# ---------------------------------------------------------------- the chat command


def parse_request(argument: str) -> tuple[str | None, bool, queries.SignatureFilter] | None:
    """`xlsx contacts country=KH` → (format or None, contacts asked for, filter); None when
    a word is not understood."""
    fmt: str | None = None
    contacts = False
    rest = []
    for word in ascii_digits(argument).split():
        key = word.lower()
        if key in FORMAT_WORDS:
            if fmt is not None and fmt != FORMAT_WORDS[key]:
                return None
            fmt = FORMAT_WORDS[key]
        elif key in CONTACT_WORDS:
            contacts = True
        else:
            rest.append(word)
    where = parse_filter(" ".join(rest)) if rest else queries.SignatureFilter()
    if where is None:
        return None
    return fmt, contacts, where


def _usage(ctx: Context) -> Reply:
    _ = ctx.gettext
    return Reply(
        _(
            "Write /export for a file of all counted signatures, or add a format and a choice: "
            "/export xlsx country=KH since=2026-04-01 (also code=SHARECODE and "
            "until=2026-04-14). Add the word contacts for phone numbers and e-mails."
        )
    )


def _no_keys(ctx: Context) -> Reply:
    _ = ctx.gettext
    return Reply(
        _(
            "Phone numbers and e-mails cannot be exported: the keys that decrypt them "
            "(DATA_KEY and HASH_KEY) are not set on this server. Write /export without "
            "contacts for the rest."
        )
    )


commands = Commands()


@commands("export")
async def _export_command(ctx: Context, incoming: Incoming) -> list[Reply]:
    parsed = parse_request(incoming.text)
    if parsed is None:
        return [_usage(ctx)]
    fmt, contacts, where = parsed
    if contacts and ctx.cipher is None:
        return [_no_keys(ctx)]
    if contacts and not ctx.is_owner:
        return [await _owners_only(ctx)]
    if fmt is None or contacts:
        ctx.user.draft = {"export": {"format": fmt, "contacts": contacts, **where.to_draft()}}
        ctx.user.step = "export_format" if fmt is None else "export_contacts"
        return [signing.prompt(ctx)]
    return await _send(ctx, ExportRequest(fmt, where))


def _ask_format(ctx: Context) -> Reply:
    _ = ctx.gettext
    buttons = [
        [Button(_("CSV"), "xf:csv"), Button(_("Excel (XLSX)"), "xf:xlsx")],
        [Button(_("Cancel"), "xf:n")],
    ]
    text = _(
        "Which file? CSV opens anywhere; Excel keeps the Khmer letters and the columns tidy. "
        "Phone numbers and e-mails are left out unless you write /export contacts."
    )
    return Reply(text, buttons)


def _ask_contacts(ctx: Context) -> Reply:
    _ = ctx.gettext
    buttons = [
        [Button(_("Include phone numbers and e-mails"), "xc:y")],
        [Button(_("Without them"), "xc:n"), Button(_("Cancel"), "xc:x")],
    ]
    text = _(
        "You asked for phone numbers and e-mails. Whoever holds the file can contact the "
        "signers: keep it safe and delete it when you are done. This choice is recorded."
    )
    return Reply(text, buttons)


async def _format_answer(ctx: Context, value: str) -> list[Reply]:
    saved = ctx.user.draft.get("export", {})
    if value not in ("csv", "xlsx") or not ctx.is_admin:
        ctx.user.step, ctx.user.draft = "idle", {}
        return [Reply(ctx.gettext("Nothing was exported."))]
    if saved.get("contacts"):
        ctx.user.draft = {"export": {**saved, "format": value}}
        ctx.user.step = "export_contacts"
        return [_ask_contacts(ctx)]
    ctx.user.step, ctx.user.draft = "idle", {}
    return await _send(ctx, ExportRequest(value, queries.SignatureFilter.from_draft(saved)))


async def _contacts_answer(ctx: Context, value: str) -> list[Reply]:
    saved = ctx.user.draft.get("export", {})
    ctx.user.step, ctx.user.draft = "idle", {}
    fmt = saved.get("format")
    if value not in ("y", "n") or fmt not in ("csv", "xlsx") or not ctx.is_admin:
        return [Reply(ctx.gettext("Nothing was exported."))]
    with_contacts = value == "y"
    if with_contacts and ctx.cipher is None:
        return [_no_keys(ctx)]
    request = ExportRequest(
        fmt, queries.SignatureFilter.from_draft(saved), with_contacts=with_contacts
    )
    if not with_contacts:
        return await _send(ctx, request)
    if not ctx.is_owner:
        return [await _owners_only(ctx)]
    if len(ctx.admin_ids) >= 2:
        return await _ask_second_owner(ctx, request)
    replies = await _send(ctx, request)
    return [*replies, *await _told(ctx, request, approved_by=None)]


CONTACTS_ASKED = N_(
    "🔐 Owner {actor} asks to export {count} signatures WITH phone numbers and e-mails "
    "({filter}). A second owner must agree. Approve only if you know why."
)
CONTACTS_EXPORTED = N_(
    "🔐 Owner {actor} exported {count} signatures with phone numbers and e-mails ({filter})."
)
CONTACTS_APPROVED = N_(
    "🔐 Owner {actor} exported {count} signatures with phone numbers and e-mails ({filter}), "
    "approved by owner {approver}."
)
EVERYTHING = N_("all counted signatures")
APPROVE, REFUSE = N_("✅ Approve"), N_("❌ Refuse")


async def _owners_only(ctx: Context) -> Reply:
    await queries.audit(ctx.session, actor=ctx.actor, action="export_contacts_refused")
    logger.warning("an organiser asked for contacts; refused")
    return Reply(
        ctx.gettext(
            "Only the owners (those set in ADMIN_IDS) can export phone numbers and e-mails. "
            "Write /export without contacts for the rest."
        )
    )


def _filter_text(request: ExportRequest) -> str:
    return describe_filter(request.where) or ""


async def _ask_second_owner(ctx: Context, request: ExportRequest) -> list[Reply]:
    """Four eyes: the export waits until another owner approves it (approvals.py)."""
    _ = ctx.gettext
    count = await queries.count_matching(ctx.session, where=request.where)
    if count == 0:
        return [Reply(_("No counted signature matches that."))]
    detail = {"format": request.format, "language": ctx.language, **request.where.to_draft()}
    approval = await queries.ask_approval(
        ctx.session, action="export_contacts", asked_by=ctx.actor, detail=detail
    )
    await queries.audit(
        ctx.session, actor=ctx.actor, action="export_contacts_asked", approval=approval
    )
    buttons = [[Button(APPROVE, f"ap:{approval}:y"), Button(REFUSE, f"ap:{approval}:n")]]
    told = await tell_owners(
        ctx,
        CONTACTS_ASKED,
        buttons=buttons,
        actor=ctx.user.external_id,
        count=format_number(count, ctx.language),
        filter=_filter_text(request) or _(EVERYTHING),
    )
    text = _(
        "A file with phone numbers and e-mails needs a second owner's approval. I have asked "
        "the other owners; the file comes here as soon as one of them approves (within a day)."
    )
    return [Reply(text), *told]


async def _told(
    ctx: Context, request: ExportRequest, *, approved_by: str | None, actor: str | None = None
) -> list[Reply]:
    """Every owner hears of an export with contacts: who, how many, which."""
    count = str(await queries.count_matching(ctx.session, where=request.where))
    who, chosen = actor or ctx.user.external_id, _filter_text(request) or "—"
    if approved_by is None:
        return await tell_owners(ctx, CONTACTS_EXPORTED, actor=who, count=count, filter=chosen)
    return await tell_owners(
        ctx,
        CONTACTS_APPROVED,
        including_me=True,
        approver=approved_by,
        actor=who,
        count=count,
        filter=chosen,
    )


async def send_approved(
    ctx: Context, request: ExportRequest, *, asker: str, language: str
) -> list[Reply]:
    """An export a second owner (`ctx`) approved: made in the asker's language and sent to
    the asker; every owner is told."""
    replies = await _send(ctx, request, actor=f"telegram:{asker}", language=language, to=asker)
    return [*replies, *await _told(ctx, request, approved_by=ctx.user.external_id, actor=asker)]


async def _send(
    ctx: Context,
    request: ExportRequest,
    *,
    actor: str | None = None,
    language: str | None = None,
    to: str | None = None,
) -> list[Reply]:
    """The export for whoever asked: the admin writing (`ctx`), or another (`to`, in
    `language`, audited as `actor`) once a second owner approved it."""
    language = language or ctx.language
    actor = actor or ctx.actor
    gettext = ctx.translator_for(language) if to else ctx.gettext
    _ = gettext
    matching = await queries.count_matching(ctx.session, where=request.where)
    if matching == 0:
        return [Reply(_("No counted signature matches that."), to=to)]
    # Made after the update, beside the conversation, whatever its size: nobody else waits
    # for a file to be written. A large one is announced; a small one simply follows.
    later = partial(
        _made_later,
        request=request,
        actor=actor,
        gettext=gettext,
        language=language,
        cipher=ctx.cipher,
        to=to,
    )
    text = ""
    if matching > INLINE_ROWS:
        text = _(
            "Making the file of {count} signatures: it comes in a minute or two. You can go "
            "on meanwhile."
        ).format(count=format_number(matching, language))
    return [Reply(text, later=later, to=to)]


async def _made_later(
    sessions: async_sessionmaker[AsyncSession],
    *,
    request: ExportRequest,
    actor: str,
    gettext: Gettext,
    language: str,
    cipher: ContactCipher | None,
    to: str | None = None,
) -> list[Reply]:
    buffer = io.BytesIO()
    rows = db_exports.page_signatures(
        sessions, where=request.where, with_contacts=request.with_contacts
    )
    count = await write_export(
        None,
        buffer,
        request,
        gettext=gettext,
        language=language,
        cipher=cipher,
        rows=rows,
        share_every=SHARE_EVERY,
    )
    async with sessions() as session, session.begin():
        await audit_export(session, actor=actor, request=request, count=count, language=language)
    return _file_replies(
        buffer.getvalue(), request, count, gettext=gettext, language=language, to=to
    )


def _file_replies(
    data: bytes,
    request: ExportRequest,
    count: int,
    *,
    gettext: Gettext,
    language: str,
    to: str | None = None,
) -> list[Reply]:
    _ = gettext
    logger.warning(
        "an admin exported %d signatures (%s, contacts: %s)",
        count,
        request.format,
        "yes" if request.with_contacts else "no",
    )
    if count == 0:
        return [Reply(_("No counted signature matches that."), to=to)]
    if len(data) > MAX_DOCUMENT:
        text = _(
            "The file is too large to send in the chat. On the server, use: "
            "petitionbot export --format {format} --out FILE"
        ).format(format=request.format)
        return [Reply(text, to=to)]
    lines = [_("Signatures in this file: {count}.").format(count=format_number(count, language))]
    chosen = describe_filter(request.where)
    if chosen:
        lines.append(_("Chosen: {filter}").format(filter=chosen))
    if request.with_contacts:
        lines.append(
            _(
                "It holds phone numbers and e-mails: keep it safe, do not forward it, and "
                "delete it when you are done."
            )
        )
    else:
        lines.append(_("Phone numbers and e-mails are not in it (/export contacts adds them)."))
    attachment = Attachment("document", file_name(request), data=data)
    return [Reply("\n".join(lines), attachment=attachment, to=to)]


STEPS = (
    Step("export_format", "xf", _ask_format, _format_answer),
    Step("export_contacts", "xc", _ask_contacts, _contacts_answer),
)
