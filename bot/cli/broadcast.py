"""`petitionbot broadcast`: news to opted-in people, from the shell.

    petitionbot broadcast --text-km FILE --text-en FILE [--photo FILE | --document FILE]
        [--country US --region California --region Washington] [--country FR ...]
        [--language km] [--province Battambang] [--signers-only]
        [--at "2027-04-14 08:00" --tz Asia/Phnom_Penh] [--paid] [--confirm N]
        [--preview-to ID] [--no-wait] [--dry-run]
    petitionbot broadcast worker [--exit-when-idle]
    petitionbot broadcast list
    petitionbot broadcast cancel ID

The text files are Telegram HTML (<b>, <i>, <a href="...">; write & as &amp;). A photo or
document is uploaded once, with the preview sent to an admin, and its Telegram file id is
reused for every recipient.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import in_transaction
from bot.config import Settings

if TYPE_CHECKING:
    from bot.app import App
    from db.broadcasts import Audience

FOLLOW_EVERY = 2.0  # seconds between progress lines


def add_commands(commands: Any) -> None:
    """Add this module's subcommands to the `petitionbot` parser."""
    parser = commands.add_parser(
        "broadcast",
        help="send news to those who asked for it; `broadcast worker` runs the sender",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--text-km", type=Path, help="the Khmer version (Telegram HTML)")
    parser.add_argument("--text-en", type=Path, help="the English version (Telegram HTML)")
    media = parser.add_mutually_exclusive_group()
    media.add_argument("--photo", type=Path, help="a photo, the texts being its caption")
    media.add_argument("--document", type=Path, help="a file (a PDF...), the texts its caption")
    parser.add_argument("--language", action="append", default=[], help="km or en (repeatable)")
    parser.add_argument("--country", action="append", default=[], help="e.g. US (repeatable)")
    parser.add_argument(
        "--region", action="append", default=[], help="a region of the one --country given"
    )
    parser.add_argument("--province", action="append", default=[], help="province of birth")
    parser.add_argument("--signers-only", action="store_true", help="leave out non-signers")
    parser.add_argument("--at", help='when to send, e.g. "2027-04-14 08:00" (default: now)')
    parser.add_argument("--tz", default=None, help="the time zone of --at (Asia/Phnom_Penh)")
    parser.add_argument(
        "--paid", action="store_true", help="allow_paid_broadcast: faster, paid in Stars"
    )
    parser.add_argument("--confirm", type=int, help="the number of recipients, above 1,000")
    parser.add_argument("--preview-to", help="the Telegram id that gets the preview")
    parser.add_argument("--no-wait", action="store_true", help="queue it and return")
    parser.add_argument("--dry-run", action="store_true", help="only count the recipients")
    actions = parser.add_subparsers(dest="broadcast_command")
    worker = actions.add_parser("worker", help="send broadcasts until stopped")
    worker.add_argument(
        "--exit-when-idle", action="store_true", help="stop once nothing is scheduled or running"
    )
    actions.add_parser("list", help="the latest broadcasts and their figures")
    cancel = actions.add_parser("cancel", help="cancel a scheduled or running broadcast")
    cancel.add_argument("id", type=int)


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the subcommand if it is one of this module's; None otherwise."""
    if args.command != "broadcast":
        return None
    action = args.broadcast_command
    if action == "worker":
        return asyncio.run(_worker(settings, exit_when_idle=args.exit_when_idle))
    if action == "list":
        return asyncio.run(_list(settings))
    if action == "cancel":
        return asyncio.run(_cancel(settings, args.id))
    return asyncio.run(_compose(args, settings))


def _fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


# ---------------------------------------------------------------- the worker


async def _worker(settings: Settings, *, exit_when_idle: bool) -> int:
    from bot.workers.broadcast import standalone_worker

    if settings.telegram_bot_token is None and not settings.messenger_enabled:
        return _fail("Configuration error: TELEGRAM_BOT_TOKEN: not set (nor Messenger)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with standalone_worker(settings) as worker:
        await worker.run(stop, exit_when_idle=exit_when_idle)
    return 0


# ---------------------------------------------------------------- list and cancel


async def _list(settings: Settings) -> int:
    from db import broadcasts as store

    async def show(session: Any) -> int:
        found = await store.latest_broadcasts(session, limit=20)
        numbers = await store.figures(session, ids=[b.id for b in found])
        if not found:
            print("No broadcast yet.")
        for broadcast in found:
            when = broadcast.scheduled_for or broadcast.created_at
            print(
                f"#{broadcast.id} {broadcast.status} "
                f"{store.as_utc(when):%Y-%m-%d %H:%M} UTC "
                f"{'+'.join(sorted(broadcast.versions))} {_line(numbers[broadcast.id])}"
            )
        return 0

    return await in_transaction(settings, show)


async def _cancel(settings: Settings, broadcast_id: int) -> int:
    from db import broadcasts as store
    from db import queries
    from db.models import utcnow

    async def cancel(session: Any) -> int:
        if not await store.cancel_broadcast(session, broadcast_id=broadcast_id, now=utcnow()):
            print(f"Broadcast #{broadcast_id} is not scheduled or running.", file=sys.stderr)
            return 1
        await queries.audit(session, actor="shell", action="broadcast_cancel",
                            broadcast=broadcast_id)  # fmt: skip
        figures = (await store.figures(session, ids=[broadcast_id]))[broadcast_id]
        print(f"Broadcast #{broadcast_id} cancelled; {_line(figures)}")
        return 0

    return await in_transaction(settings, cancel)


def _line(figures: Any) -> str:
    return (
        f"sent {figures.sent} of {figures.total}, blocked {figures.blocked}, "
        f"failed {figures.failed}, skipped {figures.skipped}, unknown {figures.unknown}, "
        f"remaining {figures.remaining}"
    )


# ---------------------------------------------------------------- composing


def _audience(args: argparse.Namespace) -> Audience | str:
    from db.broadcasts import Audience
    from handlers.reading import places

    languages = []
    for language in args.language:
        if language not in ("km", "en"):
            return f"--language: km or en, not {language!r}"
        languages.append(language)
    countries = []
    for name in args.country:
        code, _close = places.match_country(name)
        if code is None:
            return f"--country: unknown country {name!r}"
        countries.append(code)
    regions: list[tuple[str, str]] = []
    if args.region:
        if len(countries) != 1:
            return "--region: give exactly one --country with the regions"
        regions = [(countries[0], places.canonical_region(countries[0], r)) for r in args.region]
        countries = []
    provinces = []
    for name in args.province:
        code = places.ABROAD if name.lower() == "abroad" else places.match_province(name)
        if code is None:
            return f"--province: unknown province {name!r}"
        provinces.append(code)
    return Audience(
        languages=tuple(languages),
        countries=tuple(countries),
        regions=tuple(regions),
        provinces=tuple(provinces),
        signers_only=args.signers_only,
    )


def _versions(args: argparse.Namespace) -> tuple[dict[str, Any], bytes | None] | str:
    from handlers.admin.broadcasts import CAPTION_LIMIT, TEXT_LIMIT, check_html

    media: Path | None = args.photo or args.document
    kind = "photo" if args.photo else "document" if args.document else "text"
    data = None
    if media is not None:
        try:
            data = media.read_bytes()
        except OSError as error:
            return f"--{kind}: {error.strerror or error}: {media}"
        if not data:
            return f"--{kind}: the file is empty: {media}"
    versions: dict[str, Any] = {}
    for language, path in (("km", args.text_km), ("en", args.text_en)):
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            return f"--text-{language}: cannot read {path}: {error}"
        problem = check_html(text, limit=TEXT_LIMIT if media is None else CAPTION_LIMIT)
        if problem is not None:
            return f"--text-{language}: {path}: {problem}"
        if not text and media is None:
            return f"--text-{language}: {path} is empty"
        versions[language] = {"kind": kind, "text": text}
        if media is not None:
            versions[language]["filename"] = media.name
    if not versions:
        return "give --text-km FILE, --text-en FILE, or both"
    return versions, data


async def _compose(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from db import broadcasts as store
    from handlers.news import by_version

    audience = _audience(args)
    if isinstance(audience, str):
        return _fail(audience)
    found = _versions(args)
    if isinstance(found, str):
        return _fail(found)
    versions, data = found
    when = _when(args)
    if isinstance(when, str):
        return _fail(when)
    app = await build_app(settings)
    try:
        async with app.conversation.sessions() as session:
            by_language = await store.count_audience(session, audience=audience)
        count = sum(by_language.values())
        getting = by_version(versions, by_language)
        split = ", ".join(f"{code} version: {people}" for code, people in getting.items())
        print(f"{count} recipients ({split})")
        if args.dry_run:
            return 0
        if count == 0:
            return _fail("Nobody matches that audience; nothing was queued.", 1)
        if not _confirmed(args, count):
            return _fail(f"Not confirmed. Give --confirm {count} to send to {count} people.", 1)
        return await _queue(app, args, versions, data, audience, when, count)
    finally:
        await app.close()


def _when(args: argparse.Namespace) -> datetime | str | None:
    from db.models import utcnow
    from handlers.admin.audience import DEFAULT_ZONE, parse_when
    from handlers.admin.broadcasts import FAR_AHEAD

    if args.at is None:
        return None if args.tz is None else "--tz goes with --at"
    found = parse_when(f"{args.at} {args.tz or DEFAULT_ZONE}")
    if found is None:
        return '--at "2027-04-14 08:00" and --tz Asia/Phnom_Penh (a zoneinfo name)'
    moment, _zone = found
    if moment <= utcnow():
        return "--at: that time has already passed"
    if moment > utcnow() + FAR_AHEAD:
        return "--at: that is more than a year away"
    return moment


def _confirmed(args: argparse.Namespace, count: int) -> bool:
    from handlers.admin.broadcasts import TYPE_THE_NUMBER_ABOVE

    if count <= TYPE_THE_NUMBER_ABOVE or args.confirm == count:
        return True
    if args.confirm is not None or not sys.stdin.isatty():
        return False
    typed = input(f"Type the number of recipients ({count}) to confirm: ").strip()
    return typed.replace(",", "") == str(count)


async def _queue(
    app: App,
    args: argparse.Namespace,
    versions: dict[str, Any],
    data: bytes | None,
    audience: Audience,
    when: datetime | None,
    count: int,
) -> int:
    from db import broadcasts as store
    from db import queries
    from db.models import utcnow

    settings = app.settings
    async with app.conversation.sessions() as session:
        admins = await queries.all_admins(session, bootstrap=app.conversation.admin_ids)
    preview_to = args.preview_to or (admins[0] if admins else None)
    if settings.telegram_bot_token is not None and preview_to is not None:
        problem = await _previews(app, preview_to, versions, data)
        if problem is not None:
            return _fail(problem, 1)
    elif data is not None:
        return _fail("a photo or document is uploaded with the preview: set ADMIN_IDS "
                     "(or --preview-to) and TELEGRAM_BOT_TOKEN")  # fmt: skip
    async with app.conversation.sessions() as session, session.begin():
        broadcast_id = await store.create_broadcast(
            session,
            created_by="shell",
            versions=versions,
            audience=audience,
            scheduled_for=when or utcnow(),
            rate=settings.broadcast_paid_rate if args.paid else settings.broadcast_rate,
            paid=args.paid,
            total=count,
            report_channel="telegram" if preview_to else None,
            report_chat=preview_to,
        )
        await queries.audit(
            session, actor="shell", action="broadcast", broadcast=broadcast_id,
            recipients=count, audience=audience.to_json(),
            scheduled_for=when.isoformat() if when else None, paid=args.paid,
        )  # fmt: skip
    if when is not None:
        print(f"Broadcast #{broadcast_id} is scheduled for {when:%Y-%m-%d %H:%M} UTC; the bot "
              "(or `petitionbot broadcast worker`) sends it then.")  # fmt: skip
        return 0
    if args.no_wait:
        print(f"Broadcast #{broadcast_id} is queued; the bot's broadcaster sends it.")
        return 0
    return await _follow(app, broadcast_id)


async def _previews(
    app: App, chat: str, versions: dict[str, Any], data: bytes | None
) -> str | None:
    """Send the admin each version as recipients will see it; the first upload gives the
    file id the others (and every recipient) reuse. A problem, or None."""
    from bot.channels.botapi import BotApiError, TelegramOutlet
    from db import queries
    from handlers.admin.audience import LANGUAGE_NAMES
    from handlers.base import Attachment, Reply
    from handlers.news import recipient_reply

    async with app.conversation.sessions() as session:
        languages = await queries.admin_languages(session, channel="telegram", ids=[chat])
    _ = app.translations.get(languages[chat]).gettext
    outlet = TelegramOutlet.from_settings(app.settings)
    try:
        for language, version in versions.items():
            reply = recipient_reply(version, app.translations.get(language).gettext)
            intro = _("Preview of the {language} version, exactly as they will see it:")
            await outlet.post(chat, intro.format(language=LANGUAGE_NAMES[language]))
            if data is not None and "file_id" not in version:
                kind = str(version["kind"])
                attachment = Attachment(kind, str(version.get("filename") or kind), data=data)
                upload = Reply(reply.text, reply.buttons, attachment=attachment)
                file_id = await outlet.upload(chat, upload)
                for each in versions.values():
                    each["file_id"] = file_id
                continue
            outcome = await outlet.send(chat, reply, paid=False)
            if outcome.status != "sent":
                return f"Telegram refused the {language} version: {outcome.error}"
    except (BotApiError, ValueError) as error:
        return f"Telegram refused the upload: {error}"
    finally:
        await outlet.close()
    print(f"Previews sent to {chat}.")
    return None


async def _follow(app: App, broadcast_id: int) -> int:
    """Send it here (or watch another worker send it), a line of figures every few seconds."""
    from bot.workers.broadcast import build_worker
    from db import broadcasts as store

    worker = build_worker(app)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        while True:
            await asyncio.sleep(FOLLOW_EVERY)
            async with app.conversation.sessions() as session:
                broadcast = await store.get_broadcast(session, broadcast_id=broadcast_id)
                figures = (await store.figures(session, ids=[broadcast_id]))[broadcast_id]
            status = broadcast.status if broadcast is not None else "gone"
            print(f"#{broadcast_id} {status}: {_line(figures)}", flush=True)
            if status not in ("scheduled", "running") or task.done():
                break
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await worker.close()
    return 0
