"""`petitionbot run`, `chat` and `messenger setup`: the bot itself, on its channels."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from bot.config import Settings


def add_commands(commands: Any) -> None:
    """Add `run`, `chat` and `messenger setup`."""
    commands.add_parser(
        "run", help="run on Telegram and/or Messenger, or the console chat when neither is set"
    )
    chat = commands.add_parser("chat", help="the conversation in this terminal")
    chat.add_argument("--user-id", type=int, default=1, help="whose conversation (default 1)")
    messenger = commands.add_parser("messenger", help="the Facebook Page")
    messenger_commands = messenger.add_subparsers(dest="messenger_command", required=True)
    messenger_commands.add_parser(
        "setup", help="set the Page's Get Started button, greeting and menu"
    )


def is_chat(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether this command talks with the person at the terminal (then logs stay quiet)."""
    return args.command == "chat" or (
        args.command == "run"
        and settings.telegram_bot_token is None
        and not settings.messenger_enabled
    )


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of these; None otherwise."""
    if args.command == "messenger":
        return asyncio.run(_messenger_setup(settings))
    if is_chat(args, settings):
        asyncio.run(_chat(settings, getattr(args, "user_id", 1)))
        return 0
    if args.command == "run":
        asyncio.run(_serve(settings))
        return 0
    return None


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
    from bot import workers
    from bot.app import build_app
    from bot.channels import messenger, telegram

    app = await build_app(settings)
    background = workers.beside(app)  # the broadcaster and the watch, beside the channels
    try:
        if settings.telegram_bot_token is None:
            await messenger.run(app, background=background)
        elif settings.webhook_url:
            # Messenger's webhook shares Telegram's server.
            channel = messenger.MessengerChannel(app) if settings.messenger_enabled else None
            await telegram.run_webhook(
                app, channel.register if channel else None, background=background
            )
        elif settings.messenger_enabled:
            async with messenger.serving(app):
                await telegram.run_polling(app, background=background)
        else:
            await telegram.run_polling(app, background=background)
    finally:
        await app.close()


async def _messenger_setup(settings: Settings) -> int:
    from bot.channels import messenger

    if not settings.messenger_enabled:
        print("Configuration error: MESSENGER_PAGE_TOKEN: not set", file=sys.stderr)
        return 2
    return 0 if await messenger.setup_page(settings, sys.stdout) else 1
