"""Telegram through aiogram 3: updates become `Incoming`, `Reply` becomes Bot API calls."""

# ruff: noqa: E402 (aiogram is imported after its models are told to build on first use)
from __future__ import annotations

from bot.channels.on_demand import import_aiogram

import_aiogram()

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatMemberStatus, ChatType, ParseMode
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import App
from bot.channels.botapi import keyboard_for
from bot.channels.outlet import Background, Notify, beside_nothing
from bot.channels.service import add_service_routes
from bot.channels.weblog import AccessLog
from bot.config import Settings
from db import broadcasts as broadcast_store
from db.models import utcnow
from handlers.base import Attachment, Button, Incoming, Kind, Media, Reply
from words.i18n import N_

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
# my_chat_member: Telegram says when someone blocks the bot (they get no more news).
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
COMMANDS = (
    ("start", N_("Start: read the petition")),
    ("sign", N_("Sign the petition")),
    ("mysignature", N_("See, change or withdraw your signature")),
    ("faq", N_("Questions about voting from abroad")),
    ("mydata", N_("Everything we keep about you")),
    ("delete", N_("Erase all your data")),
    ("stop", N_("No more news from the campaign")),
    ("privacy", N_("How your data is protected")),
    ("language", N_("Change the language")),
    ("help", N_("What this bot can do")),
    ("cancel", N_("Stop what you are doing")),
)


def build_bot(settings: Settings, session: Any = None) -> Bot:
    """A Bot for the configured token, talking to the official or a self-hosted Bot API."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    if session is None:
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(settings.telegram_api_url)
            if settings.telegram_api_url
            else TelegramAPIServer.from_base("https://api.telegram.org")
        )
    return Bot(
        token=settings.telegram_bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def to_incoming(message: Message) -> Incoming:
    """What a Telegram message means, channel-neutrally."""
    forwarded = message.forward_origin is not None
    if message.text is not None:
        found = Incoming.message(message.text, forwarded=forwarded)
        if found.kind is Kind.TEXT and message.entities:
            # Formatting kept, for the few steps that need it (composing a broadcast).
            return replace(found, html=message.html_text)
        return found
    if message.photo:
        media = Media("photo", message.photo[-1].file_id)
        return Incoming(Kind.OTHER, forwarded=forwarded, media=media, html=_caption(message))
    if message.document is not None:
        media = Media("document", message.document.file_id, message.document.file_name)
        return Incoming(Kind.OTHER, forwarded=forwarded, media=media, html=_caption(message))
    if message.contact is not None:
        sender = message.from_user.id if message.from_user else None
        return Incoming(
            Kind.CONTACT,
            contact_phone=message.contact.phone_number,
            contact_is_own=sender is not None and message.contact.user_id == sender,
            forwarded=forwarded,
        )
    return Incoming(Kind.OTHER, forwarded=forwarded)


def _caption(message: Message) -> str | None:
    return message.html_text if message.caption else None


def to_markup(reply: Reply) -> Any:
    """The keyboard Telegram shows under a reply, as aiogram's object."""
    buttons = tuple(tuple(row) for row in reply.buttons)
    return _markup(buttons, reply.contact_label, reply.remove_keyboard)


@lru_cache(maxsize=1024)
def _markup(
    buttons: tuple[tuple[Button, ...], ...], contact_label: str | None, remove_keyboard: bool
) -> Any:
    # The same keyboards recur for every signer (26 provinces, 13 countries, per language):
    # validated once, from the Bot API's JSON that background work sends as it is.
    data = keyboard_for(buttons, contact_label, remove_keyboard)
    if data is None:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    return ReplyKeyboardRemove.model_validate(data)


class TelegramChannel:
    """Feeds Telegram updates to the conversation and sends its replies."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.router = Router(name="petition")
        # No filters on the route: aiogram runs a plain (non-async) filter in a worker thread,
        # and that detour let a person's later button press overtake their message.
        self.router.message.register(self.on_message)
        self.router.callback_query.register(self.on_callback)
        self.router.my_chat_member.register(self.on_member)
        self._me: asyncio.Task[str | None] | None = None

    async def _username(self, bot: Bot) -> str | None:
        """The bot's username, asked of Telegram once per process (the first updates that
        arrive together share the one getMe call); asked again only after a failure."""
        if self._me is None or (self._me.done() and self._me.exception() is not None):
            self._me = asyncio.create_task(self._get_me(bot), name="telegram-getme")
        return await asyncio.shield(self._me)

    @staticmethod
    async def _get_me(bot: Bot) -> str | None:
        return (await bot.me()).username

    async def _process(
        self,
        bot: Bot,
        user_id: int,
        chat_id: int,
        update: Update,
        incoming: Incoming,
        query: CallbackQuery | None = None,
    ) -> None:
        username: list[str | None] = []

        async def prepare() -> None:
            # Inside the person's turn: awaiting before it could let a later update of the
            # same person overtake this one.
            if query is not None:
                try:
                    await query.answer()
                except TelegramAPIError as error:  # an old query can no longer be answered
                    logger.debug("answerCallbackQuery failed: %s", error)
            try:
                username.append(await self._username(bot))
            except (AiogramError, aiohttp.ClientError, TimeoutError) as error:
                # Without it, share links wait for the next update; the answer still goes.
                logger.warning("getMe failed: %s", type(error).__name__)

        def share_link(code: str) -> str | None:
            name = username[0] if username else None
            return f"https://t.me/{name}?start={code}" if name else None

        async def deliver(replies: list[Reply]) -> bool:
            return await self.send(bot, chat_id, replies)

        await self.app.conversation.process(
            channel=CHANNEL,
            user_id=str(user_id),
            update_key=str(update.update_id),
            incoming=incoming,
            share_link=share_link,
            deliver=deliver,
            prepare=prepare,
        )

    async def on_message(self, message: Message, bot: Bot, event_update: Update) -> None:
        """A message in a private chat (groups and channels are not for signing)."""
        if message.chat.type != ChatType.PRIVATE:
            return
        if message.from_user is None or message.from_user.is_bot:
            return
        incoming = to_incoming(message)
        await self._process(bot, message.from_user.id, message.chat.id, event_update, incoming)

    async def on_callback(self, query: CallbackQuery, bot: Bot, event_update: Update) -> None:
        """A press on an inline button."""
        chat_id = query.message.chat.id if query.message else query.from_user.id
        incoming = Incoming.button(query.data or "")
        await self._process(bot, query.from_user.id, chat_id, event_update, incoming, query)

    async def on_member(self, update: ChatMemberUpdated) -> None:
        """Someone blocked the bot: no more news for them, and not reachable until they
        write again (unblocking alone changes nothing: they opt in again if they wish)."""
        if update.chat.type != ChatType.PRIVATE:
            return
        if update.new_chat_member.status != ChatMemberStatus.KICKED:
            return
        key = f"{CHANNEL}:{update.chat.id}"
        held = await self.app.conversation.locks(key)  # in the person's turn
        try:
            async with self.app.conversation.sessions() as session, session.begin():
                known = await broadcast_store.mark_unreachable(
                    session, channel=CHANNEL, external_id=str(update.chat.id), now=utcnow()
                )
        finally:
            held.release()
        if known:
            logger.info("a user blocked the bot; they get no more news")

    async def send(self, bot: Bot, chat_id: int, replies: list[Reply]) -> bool:
        """Send replies in order; False when one to the person failed (it is logged, never
        raised into the dispatcher: any error of a call, an undecodable answer included).

        A reply addressed to someone else (`Reply.to`: an owner told of an admin's action)
        goes to their chat; their failure (they never opened the bot) stops nothing else."""
        sent = True
        for reply in replies:
            target = int(reply.to) if reply.to and reply.to.isdigit() else chat_id
            if await self._send_one(bot, target, reply):
                # Counted against the bot's overall rate, which broadcasts share.
                self.app.metrics.answered(CHANNEL)
            elif reply.to is None:
                sent = False  # the others still go: each answer stands on its own
        return sent

    @staticmethod
    async def _send_one(bot: Bot, chat_id: int, reply: Reply) -> bool:
        """One reply; a 429 (the bot's overall rate) is waited out once, if briefly."""
        for attempt in (1, 2):
            try:
                if reply.attachment is not None:
                    await send_attachment(bot, chat_id, reply, reply.attachment)
                else:
                    await bot.send_message(chat_id, reply.text, reply_markup=to_markup(reply))
                return True
            except TelegramRetryAfter as error:
                if attempt == 2 or error.retry_after > REPLY_WAIT:
                    logger.warning("sending to a chat: 429 for %s s; not sent", error.retry_after)
                    return False
                await asyncio.sleep(error.retry_after)
            except (AiogramError, aiohttp.ClientError, TimeoutError) as error:
                logger.warning("sending to a chat failed: %s", type(error).__name__)
                return False
        return False


CAPTION_LIMIT = 1024
REPLY_WAIT = 10  # seconds of a 429 worth waiting out for an answer to someone


async def send_attachment(bot: Bot, chat_id: int, reply: Reply, attachment: Attachment) -> Any:
    """A photo or document with the reply's text as caption (a long text follows it)."""
    if attachment.file_id is not None:
        file: Any = attachment.file_id
    else:
        file = BufferedInputFile(attachment.data or b"", filename=attachment.filename)
    caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
    markup = to_markup(reply) if caption is not None else None
    if attachment.kind == "photo":
        sent = await bot.send_photo(chat_id, file, caption=caption, reply_markup=markup)
    else:
        sent = await bot.send_document(chat_id, file, caption=caption, reply_markup=markup)
    if caption is None and reply.text:
        sent = await bot.send_message(chat_id, reply.text, reply_markup=to_markup(reply))
    return sent


def build_dispatcher(app: App) -> Dispatcher:
    """The production dispatcher (tests feed updates into this same one)."""
    # Conversation state lives in our database, not in aiogram's FSM storage.
    dispatcher = Dispatcher(disable_fsm=True)
    dispatcher.include_router(TelegramChannel(app).router)
    # aiogram writes a line at INFO for every update handled: at DEBUG they are noise no
    # more (failures still come at WARNING and above).
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    return dispatcher


async def set_commands(bot: Bot, app: App) -> None:
    """The command menu in Khmer and English; a failure is logged, not fatal."""
    for language in ("en", "km"):
        gettext = app.translations.get(language).gettext
        commands = [BotCommand(command=name, description=gettext(text)) for name, text in COMMANDS]
        try:
            await bot.set_my_commands(
                commands, language_code=None if language == "en" else language
            )
        except (TelegramAPIError, OSError) as error:
            logger.warning("setMyCommands (%s) failed: %s", language, error)


POLL_TIMEOUT = 25  # seconds a getUpdates call waits for news


def _notifier(bot: Bot) -> Notify:
    async def notify(admin: str, text: str) -> None:
        await bot.send_message(int(admin), text)

    return notify


async def run_polling(
    app: App, stop: asyncio.Event | None = None, *, background: Background = beside_nothing
) -> None:
    """Long polling: the default, needs no public address. SIGINT, SIGTERM or `stop` end it.
    `background` runs beside it (the CLI passes the workers: bot/workers), with a way to
    write to admins through this bot.

    Each batch of updates is handled (and committed) before the next getUpdates confirms it
    with a higher offset, so a crash loses nothing: Telegram sends the batch again, and the
    updates already handled are recognised and skipped. The updates of one batch are handled
    together, which lets the conversation share database trips between people.
    """
    bot = build_bot(app.settings)
    dispatcher = build_dispatcher(app)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await bot.delete_webhook(drop_pending_updates=False)
        except TelegramAPIError as error:
            logger.warning("deleteWebhook failed: %s", error)
        await set_commands(bot, app)
        logger.info("Telegram long polling started")
        async with background(_notifier(bot)):
            await _poll(bot, dispatcher, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        await app.conversation.settle()  # a large export in the making still reaches its admin
        await bot.session.close()


async def _poll(bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    offset: int | None = None
    failures = 0
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            fetching = asyncio.ensure_future(
                bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
                )
            )
            await asyncio.wait([fetching, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not fetching.done():
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetching
                return
            try:
                updates = fetching.result()
            except (TimeoutError, AiogramError, aiohttp.ClientError, OSError) as error:
                # Any failure of the one call (a proxy's HTML error page that aiogram cannot
                # decode included): wait, then ask again. Polling never ends on one of them.
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                logger.warning(
                    "getUpdates failed (%s); again in %.1f s", type(error).__name__, delay
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopping), delay)
                continue
            failures = 0
            if not updates:
                continue
            results = await asyncio.gather(
                *(dispatcher.feed_update(bot, update) for update in updates),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    logger.error("an update failed in the dispatcher: %r", type(result))
            offset = updates[-1].update_id + 1
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping


async def _plain_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would announce its name and version; a public endpoint tells nothing.
    response.headers["Server"] = "petitionbot"


class _WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler, answering 400 (not 500 and a traceback) to a body that is
    not an update; the secret is checked first, so nobody without it gets anything parsed."""

    async def handle(self, request: web.Request) -> web.Response:
        """Check the secret, then the update's shape, then let aiogram feed it on."""
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self.verify_secret(secret, self.bot):
            try:
                # The body as aiogram will read it: text in the request's charset, then JSON.
                body = await request.json(loads=self.bot.session.json_loads)
                update = Update.model_validate(body, context={"bot": self.bot})
                update.event_type  # noqa: B018 (raises when it holds no event aiogram knows)
            except (ValueError, LookupError, RecursionError):
                # Not JSON, an unknown charset, too deeply nested, no update, or no event in it.
                logger.warning("Telegram webhook call with a body that is not an update refused")
                return web.Response(status=400)
        return await super().handle(request)


def build_webhook_app(
    app: App,
    bot: Bot,
    dispatcher: Dispatcher,
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """The aiohttp application that receives Telegram's webhook calls (and others' routes)."""
    settings = app.settings
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    web_app = web.Application(client_max_size=1024 * 1024)
    # Answer Telegram only once the update is handled and committed: a crash before that
    # leaves it unanswered, so Telegram delivers it again (and a repeat is recognised).
    _WebhookHandler(
        dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False
    ).register(web_app, path=settings.webhook_path)
    add_service_routes(web_app, app)
    if extra_routes is not None:
        extra_routes(web_app)  # e.g. the Messenger webhook, on the same server
    web_app.on_response_prepare.append(_plain_server_header)
    setup_application(web_app, dispatcher, bot=bot)
    return web_app


async def run_webhook(
    app: App,
    extra_routes: Callable[[web.Application], None] | None = None,
    *,
    background: Background = beside_nothing,
) -> None:
    """Webhook mode: Telegram calls us at WEBHOOK_URL + WEBHOOK_PATH until SIGINT or SIGTERM,
    with `background` beside it as in `run_polling`."""
    settings = app.settings
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ValueError("WEBHOOK_URL and WEBHOOK_SECRET are both needed for webhook mode")
    bot = build_bot(settings)
    dispatcher = build_dispatcher(app)
    runner = web.AppRunner(
        build_webhook_app(app, bot, dispatcher, extra_routes), access_log_class=AccessLog
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
        await bot.set_webhook(
            url=settings.webhook_url + settings.webhook_path,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
        await set_commands(bot, app)
        logger.info("webhook listening on %s:%s", settings.webhook_host, settings.webhook_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with background(_notifier(bot)):
            await stop.wait()
    finally:
        await runner.cleanup()
        await app.conversation.settle()  # a large export in the making still reaches its admin
        await bot.session.close()
