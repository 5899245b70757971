"""`petitionbot`: run the bot, chat in a terminal, manage the database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.config import Settings, describe_error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petitionbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run on Telegram, or the console chat when no token is set")
    chat = commands.add_parser("chat", help="the conversation in this terminal")
    chat.add_argument("--user-id", type=int, default=1, help="whose conversation (default 1)")
    db = commands.add_parser("db", help="database tasks")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="bring the schema up to date")
    return parser


def _console_link(settings: Settings) -> object:
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
            share_link=_console_link(settings),  # type: ignore[arg-type]
        )
    finally:
        await app.close()


async def _telegram(settings: Settings) -> None:
    from bot.app import build_app
    from bot.channels import telegram

    app = await build_app(settings)
    try:
        if settings.webhook_url:
            await telegram.run_webhook(app)
        else:
            await telegram.run_polling(app)
    finally:
        await app.close()


async def _db_upgrade(settings: Settings) -> None:
    from db.migrate import upgrade
    from db.session import create_engine

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `petitionbot` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        return 2
    interactive_chat = args.command == "chat" or (
        args.command == "run" and settings.telegram_bot_token is None
    )
    logging.basicConfig(
        level="WARNING" if interactive_chat else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "db":
            asyncio.run(_db_upgrade(settings))
            print("Database is up to date.")
        elif interactive_chat:
            asyncio.run(_chat(settings, getattr(args, "user_id", 1)))
        else:
            asyncio.run(_telegram(settings))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
