"""`petitionbot`: run the bot, chat in a terminal, manage the database."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config import Settings, describe_error
from handlers.faq_content import ContentError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petitionbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run on Telegram and/or Messenger, or the console chat when neither is set"
    )
    chat = commands.add_parser("chat", help="the conversation in this terminal")
    chat.add_argument("--user-id", type=int, default=1, help="whose conversation (default 1)")
    faq = commands.add_parser("faq", help="the questions the bot answers")
    faq_commands = faq.add_subparsers(dest="faq_command", required=True)
    ask = faq_commands.add_parser("ask", help="which topic a question finds, and its score")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    check = faq_commands.add_parser("check", help="validate the FAQ file")
    check.add_argument("--file", type=Path, help="the file to check (default: FAQ_FILE)")
    messenger = commands.add_parser("messenger", help="the Facebook Page")
    messenger_commands = messenger.add_subparsers(dest="messenger_command", required=True)
    messenger_commands.add_parser(
        "setup", help="set the Page's Get Started button, greeting and menu"
    )
    commands.add_parser("new-key", help="print a fresh random key for DATA_KEY or HASH_KEY")
    commands.add_parser(
        "rotate-key", help="seal every stored contact again with the first key of DATA_KEY"
    )
    anonymise = commands.add_parser(
        "anonymise", help="replace names and contacts of older signatures (counts stay)"
    )
    anonymise.add_argument("--before", required=True, help="signatures made before this day")
    anonymise.add_argument("--apply", action="store_true", help="do it (default: only count)")
    for module in _extensions():
        module.add_commands(commands)
    db = commands.add_parser("db", help="database tasks")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="bring the schema up to date")
    return parser


def _extensions() -> list[Any]:
    # Organiser tools that add their own subcommands (each: add_commands, run).
    from bot import cli_broadcast, cli_codes, cli_data

    return [cli_data, cli_codes, cli_broadcast]


def _console_link(settings: Settings) -> Callable[[str], str | None]:
    # The console has no bot of its own: links point at the Telegram bot, when it is named.
    username = settings.telegram_bot_username

    def link(code: str) -> str | None:
        return f"https://t.me/{username}?start={code}" if username else None

    return link


async def _chat(settings: Settings, user_id: int) -> None:
    from bot.app import build_app
    from bot.channels import console

    app = await build_app(settings)
    try:
        await console.chat(
            app,
            user_id=user_id,
            stdin=sys.stdin,
            stdout=sys.stdout,
            share_link=_console_link(settings),
        )
    finally:
        await app.close()


async def _serve(settings: Settings) -> None:
    from bot.app import build_app
    from bot.channels import messenger, telegram

    app = await build_app(settings)
    try:
        if settings.telegram_bot_token is None:
            await messenger.run(app)
        elif settings.webhook_url:
            # Messenger's webhook shares Telegram's server.
            channel = messenger.MessengerChannel(app) if settings.messenger_enabled else None
            await telegram.run_webhook(app, channel.register if channel else None)
        elif settings.messenger_enabled:
            async with messenger.serving(app):
                await telegram.run_polling(app)
        else:
            await telegram.run_polling(app)
    finally:
        await app.close()


async def _messenger_setup(settings: Settings) -> int:
    from bot.channels import messenger

    if not settings.messenger_enabled:
        print("Configuration error: MESSENGER_PAGE_TOKEN: not set", file=sys.stderr)
        return 2
    return 0 if await messenger.setup_page(settings, sys.stdout) else 1


async def _db_upgrade(settings: Settings) -> None:
    from db.migrate import upgrade
    from db.session import create_engine

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _faq(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.faq import build_matcher
    from handlers.faq_content import check_faq, load_faq

    if args.faq_command == "check":
        path = args.file or settings.faq_file
        topics, problems = check_faq(path)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"{path}: {len(topics)} topics, each in Khmer and English")
        return 0
    matcher = build_matcher(load_faq(settings.faq_file))
    sure, close = matcher.answer(args.question)
    best = matcher.rank(args.question)[0]
    if args.json:
        print(json.dumps({
            "topic": sure.topic if sure else None,
            "score": round(best.score, 4),
            "best": best.topic,
            "suggestions": [{"topic": m.topic, "score": round(m.score, 4)} for m in close],
        }))  # fmt: skip
    elif sure is not None:
        print(f"{sure.topic} {sure.score:.2f}")
    else:
        close_list = ", ".join(f"{m.topic} {m.score:.2f}" for m in close)
        print(f"none (closest: {close_list})" if close else "none")
    return 0


async def _in_transaction(settings: Settings, task: Callable[[Any], Awaitable[int]]) -> int:
    """Run `task(session)` in one transaction on an up-to-date database."""
    from db.migrate import upgrade
    from db.session import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            return await task(session)
    finally:
        await engine.dispose()


async def _rotate_key(settings: Settings) -> int:
    from db import queries

    cipher = settings.contact_cipher()
    if cipher is None:
        print("DATA_KEY and HASH_KEY are not set: there is nothing to rotate.", file=sys.stderr)
        return 1
    changed = await _in_transaction(
        settings, lambda session: queries.rotate_contacts(session, cipher=cipher)
    )
    print(f"{changed} records sealed again with the first key of DATA_KEY; the others can go.")
    return 0


async def _anonymise(settings: Settings, before: str, apply: bool) -> int:
    from datetime import UTC, datetime

    from bot.text import ascii_digits
    from db import queries

    try:
        day = datetime.strptime(ascii_digits(before), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        print("--before: a day such as 2027-04-14", file=sys.stderr)
        return 2
    count = await _in_transaction(
        settings, lambda session: queries.anonymise(session, before=day, apply=apply)
    )
    if apply:
        print(f"{count} signatures made before {before} anonymised; the counts stay.")
    else:
        print(f"{count} signatures made before {before} would be anonymised (add --apply).")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `petitionbot` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        return 2
    interactive_chat = args.command == "chat" or (
        args.command == "run"
        and settings.telegram_bot_token is None
        and not settings.messenger_enabled
    )
    logging.basicConfig(
        level="WARNING" if interactive_chat else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "new-key":
            from db.protect import new_key

            print(new_key())
            return 0
        if args.command == "rotate-key":
            return asyncio.run(_rotate_key(settings))
        if args.command == "anonymise":
            return asyncio.run(_anonymise(settings, args.before, args.apply))
        if args.command == "faq":
            return _faq(args, settings)
        if args.command == "messenger":
            return asyncio.run(_messenger_setup(settings))
        for module in _extensions():
            code = module.run(args, settings)
            if code is not None:
                return int(code)
        if args.command == "db":
            asyncio.run(_db_upgrade(settings))
            print("Database is up to date.")
        elif interactive_chat:
            asyncio.run(_chat(settings, getattr(args, "user_id", 1)))
        else:
            asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        return 130
    except ContentError as error:
        # A content file organisers edit is wrong: say which entry, and stop.
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
