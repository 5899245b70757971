"""Facebook Messenger: a signed webhook becomes `Incoming`, `Reply` becomes Send API calls.

Messenger has no inline keyboards: a reply's buttons become quick replies (at most 13,
titles of at most 20 characters), and a longer list is shown a page at a time behind a
"More…" quick reply that this channel answers itself, without bothering the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import re
import signal
import time
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO

import aiohttp
from aiohttp import web

from bot.channels.outlet import Background, Outcome, beside_nothing
from bot.channels.weblog import AccessLog
from bot.config import Settings
from db import queries
from handlers.base import Button, Incoming, Kind, Reply
from words.i18n import N_, Translations

if TYPE_CHECKING:
    # Only for annotations: `messenger setup` then runs without loading the database layer.
    from bot.app import App

logger = logging.getLogger(__name__)

CHANNEL = "messenger"
WEBHOOK_PATH = "/messenger/webhook"
MAX_BODY = 1024 * 1024  # Messenger batches a few events per call; a megabyte is plenty
MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_TITLE = 20
MORE_PREFIX = "mm:"
MORE = N_("More…")
GREETING = N_("Sign the petition for every Cambodian's right to vote, wherever they live.")
GET_STARTED = "/start"
# The persistent menu, with the way out of the news (handlers/admin/broadcasts.py STOP_*).
MENU = (
    ("go:sign", N_("✍️ Sign the petition")),
    ("go:faq", N_("❓ Questions")),
    ("go:mine", N_("My signature")),
    ("go:lang", "ភាសា / Language"),
    ("n:off", N_("🔕 No more news")),
)
PROFILE_LOCALES = (("default", "en"), ("km_KH", "km"))
MAX_PENDING_PAGES = 10_000  # people in the middle of a paged list; the oldest are forgotten
MAX_SKEW = 60  # seconds an event may be dated ahead of this server's clock (clocks differ)
ANSWER_WITHIN = 15.0  # seconds a webhook call waits for its events' answers before its 200
# Graph API error codes that mean "try again later", whatever the HTTP status says.
_TEMPORARY_CODES = {1, 2, 4, 17, 32, 613}
# Our payloads are short ASCII codes ("b:17"); anything else in a quick reply is what the
# platform filled in for the person (their phone number or e-mail address).
_OUR_PAYLOAD = re.compile(r"[a-z]{1,8}:[A-Za-z0-9_.-]{0,64}")
_LINK = re.compile(r'<a\s+href="([^"]*)"[^>]*>(.*?)</a>', re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_BOUNDARIES = (". ", "។", "៕", "\n")


# ---------------------------------------------------------------- text and quick replies


def plain_text(text: str) -> str:
    """Telegram HTML as Messenger shows text: no tags, entities decoded, links kept."""

    def link(match: re.Match[str]) -> str:
        url, label = html.unescape(match.group(1)), _TAG.sub("", match.group(2))
        return label if html.unescape(label) == url else f"{label} ({url})"

    return html.unescape(_TAG.sub("", _LINK.sub(link, text)))


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` characters, cut after a sentence or a line where possible."""
    pieces: list[str] = []
    text = text.strip()
    while len(text) > limit:
        window = text[:limit]
        cut = max((window.rfind(mark) + len(mark) if mark in window else 0) for mark in _BOUNDARIES)
        if cut < limit // 4:
            # No sentence ends in a useful place: a space (Khmer marks words with invisible
            # ones), or, in one very long word, anywhere.
            space = max(window.rfind(" "), window.rfind("\u200b"))
            cut = space + 1 if space > limit // 4 else limit
        piece, text = text[:cut].strip(), text[cut:].strip()
        if piece:
            pieces.append(piece)
    if text:
        pieces.append(text)
    return pieces


def title(label: str) -> str:
    """A quick-reply title: at most 20 characters, a longer label cut with "…"."""
    if len(label) <= MAX_TITLE:
        return label
    end = MAX_TITLE - 1
    # Never leave a Khmer vowel or subscript without the consonant it belongs to.
    while end > 1 and (
        unicodedata.category(label[end]) in ("Mn", "Mc") or label[end - 1] == "\u17d2"
    ):
        end -= 1
    return label[:end].rstrip() + "…"


def _text_option(button: Button) -> dict[str, str]:
    return {"content_type": "text", "title": title(button.label), "payload": button.payload}


@dataclass(slots=True)
class _Paged:
    """A list shown a page at a time: the question again, and its options page by page."""

    text: str
    pages: list[list[Button]]
    fixed: list[dict[str, str]]
    more: str


def _pages(options: list[Button], room: int) -> list[list[Button]]:
    if len(options) <= room:
        return [options]
    size = room - 1  # one place for "More…"
    return [options[i : i + size] for i in range(0, len(options), size)]


def _page_options(paged: _Paged, page: int) -> list[dict[str, str]]:
    options = paged.fixed + [_text_option(button) for button in paged.pages[page]]
    if len(paged.pages) > 1:
        # The last page leads back to the first, so every option stays in reach.
        target = (page + 1) % len(paged.pages)
        options.append(
            {
                "content_type": "text",
                "title": title(paged.more),
                "payload": f"{MORE_PREFIX}{target}",
            }
        )
    return options


def _contact_options(reply: Reply) -> list[dict[str, str]]:
    if reply.contact_label is None:
        return []
    # Messenger offers the number and address from the person's profile, when it has them.
    return [{"content_type": "user_phone_number"}, {"content_type": "user_email"}]


# ---------------------------------------------------------------- what arrives


@dataclass(frozen=True, slots=True)
class Event:
    """One messaging event worth answering: who, its id for dedupe, and what it means.

    `sent_at` is when Messenger dated it (seconds since the epoch), None when undated.
    """

    psid: str
    key: str | None
    incoming: Incoming
    sent_at: float | None = None


def parse_event(messaging: dict[str, Any]) -> Event | None:
    """What a webhook `messaging` item means; None for echoes, receipts and the unknown."""
    sender = (messaging.get("sender") or {}).get("id")
    if not isinstance(sender, str | int) or isinstance(sender, bool):
        return None
    psid = str(sender)
    fallback_key = f"{psid}:{messaging.get('timestamp')}"
    message = messaging.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None
        key = message.get("mid") if isinstance(message.get("mid"), str) else fallback_key
        quick = message.get("quick_reply")
        payload = quick.get("payload") if isinstance(quick, dict) else None
        if isinstance(payload, str) and payload:
            if _OUR_PAYLOAD.fullmatch(payload):
                return Event(psid, key, Incoming.button(payload))
            return Event(psid, key, Incoming.message(payload))
        if isinstance(message.get("text"), str):
            return Event(psid, key, Incoming.message(message["text"]))
        if message.get("attachments") or message.get("sticker_id"):
            return Event(psid, key, Incoming(Kind.OTHER))
        return None
    postback = messaging.get("postback")
    if isinstance(postback, dict):
        mid = postback.get("mid")
        key = mid if isinstance(mid, str) else f"pb:{fallback_key}"
        payload = postback.get("payload")
        if not isinstance(payload, str) or not payload:
            return None
        if payload == GET_STARTED:
            return Event(psid, key, Incoming.message(_start(postback.get("referral"))))
        if payload.startswith("/"):
            return Event(psid, key, Incoming.message(payload))
        return Event(psid, key, Incoming.button(payload))
    referral = messaging.get("referral")
    if isinstance(referral, dict) and referral.get("ref"):
        # Someone already talking to the Page opened an m.me link with a share code.
        return Event(psid, f"ref:{fallback_key}", Incoming.message(_start(referral)))
    return None  # delivery and read receipts, reactions, hand-over events...


def _start(referral: object) -> str:
    ref = referral.get("ref") if isinstance(referral, dict) else None
    return f"/start {ref}" if isinstance(ref, str) and ref.strip() else "/start"


def _seconds(millis: object) -> float | None:
    """A Messenger time (milliseconds since the epoch) in seconds; None if it is not one."""
    if isinstance(millis, int | float) and not isinstance(millis, bool) and abs(millis) < 1e16:
        return millis / 1000  # NaN fails the comparison; a huge integer never gets divided
    return None


class MalformedCall(ValueError):
    """A webhook body Messenger never sends; the message names the part, never its content."""


def parse_body(body: object) -> list[Event]:
    """The events of one webhook call, in the order Messenger listed them, each dated.

    MalformedCall for a body that is not an object, whose `entry` is not a list of objects,
    or whose `messaging` is not a list of events with a sender.
    """
    if not isinstance(body, dict) or not isinstance(body.get("object"), str):
        raise MalformedCall("not a webhook call")
    entries = body.get("entry")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise MalformedCall("entry is not a list of objects")
    if body["object"] != "page":
        return []
    events = []
    for entry in entries:
        items = entry.get("messaging", [])
        if not isinstance(items, list):
            raise MalformedCall("messaging is not a list")
        for messaging in items:
            if not isinstance(messaging, dict) or not isinstance(messaging.get("sender"), dict):
                raise MalformedCall("a messaging event without a sender")
            if (event := parse_event(messaging)) is not None:
                sent_at = _seconds(messaging.get("timestamp"))
                if sent_at is None:
                    sent_at = _seconds(entry.get("time"))
                events.append(replace(event, sent_at=sent_at))
    return events


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `X-Hub-Signature-256` is the app secret's HMAC-SHA256 of the raw body."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


# ---------------------------------------------------------------- the Graph API


class GraphClient:
    """Calls on the Graph API as the Page, retried when the platform says "later"."""

    def __init__(self, settings: Settings, *, backoff: float = 0.5, tries: int = 3) -> None:
        if settings.messenger_page_token is None:
            raise ValueError("MESSENGER_PAGE_TOKEN is not set")
        self._token = settings.messenger_page_token.get_secret_value()
        self._base = f"{settings.messenger_api_url}/{settings.messenger_api_version}"
        self.backoff = backoff
        self.tries = tries
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        return self._session

    async def attempt(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """One POST, not retried: (HTTP status, the answer, its Retry-After header or "").
        Network failures and timeouts raise."""
        async with self._client().post(
            f"{self._base}/{path}", json=body, params={"access_token": self._token}
        ) as response:
            answer = await _json(response)
            return response.status, answer, response.headers.get("Retry-After", "")

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST `body` to `path` ("me/messages"); the answer, or None after logging why not."""
        session = self._client()
        for attempt in range(self.tries):
            last = attempt == self.tries - 1
            delay = self.backoff * 2**attempt
            try:
                async with session.post(
                    f"{self._base}/{path}", json=body, params={"access_token": self._token}
                ) as response:
                    answer = await _json(response)
                    if response.status == 200:
                        return answer
                    found = answer.get("error")
                    error: dict[str, Any] = found if isinstance(found, dict) else {}
                    code = error.get("code")
                    temporary = response.status == 429 or response.status >= 500
                    if not temporary and code not in _TEMPORARY_CODES:
                        # Logged by hand: an exception's text would show the URL, and the token.
                        logger.error(
                            "Graph API refused %s (HTTP %s, code %s): %s",
                            path, response.status, code, error.get("message", "no message"),
                        )  # fmt: skip
                        return None
                    delay = _retry_after(response.headers.get("Retry-After"), delay)
                    logger.warning(
                        "Graph API %s answered HTTP %s (try %s of %s)",
                        path, response.status, attempt + 1, self.tries,
                    )  # fmt: skip
            except (aiohttp.ClientError, TimeoutError) as problem:
                logger.warning(
                    "Graph API %s failed: %s (try %s of %s)",
                    path, type(problem).__name__, attempt + 1, self.tries,
                )  # fmt: skip
            if not last:
                await asyncio.sleep(delay)
        logger.error("Graph API %s: giving up after %s tries", path, self.tries)
        return None


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        answer = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(max(float(header), 0.0), 30.0) if header else default
    except ValueError:
        return default


# ---------------------------------------------------------------- the channel


def share_link(settings: Settings) -> Callable[[str], str | None]:
    """Links that open the Page's chat with a share code, when the Page's name is known."""
    page = settings.messenger_page_username

    def link(code: str) -> str | None:
        return f"https://m.me/{page}?ref={code}" if page else None

    return link


class MessengerChannel:
    """Feeds webhook events to the conversation and sends its replies."""

    def __init__(self, app: App, *, backoff: float = 0.5, tries: int = 3) -> None:
        settings = app.settings
        secret, verify_token = settings.messenger_app_secret, settings.messenger_verify_token
        if secret is None or verify_token is None:
            raise ValueError("the MESSENGER_* secrets are not set")
        self.app = app
        self.client = GraphClient(settings, backoff=backoff, tries=tries)
        self._secret = secret.get_secret_value().encode()
        self._verify_token = verify_token.get_secret_value()
        self._share_link = share_link(settings)
        self._max_age = settings.messenger_max_age
        self._tasks: set[asyncio.Task[None]] = set()
        self._paged: OrderedDict[str, _Paged] = OrderedDict()

    # ------------------------------------------------------------ the web side

    def register(self, web_app: web.Application) -> None:
        """Serve the webhook on `web_app`; on its shutdown, finish the events in hand."""
        web_app.router.add_get(WEBHOOK_PATH, self.verify)
        web_app.router.add_post(WEBHOOK_PATH, self.receive)
        web_app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _web_app: web.Application) -> None:
        await self.close()

    async def verify(self, request: web.Request) -> web.Response:
        """The subscription handshake: echo the challenge to whoever knows the verify token."""
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self._verify_token.encode()
        ):
            return web.Response(text=query.get("hub.challenge", ""))
        logger.warning("Messenger verification refused")
        return web.Response(status=403)

    async def receive(self, request: web.Request) -> web.Response:
        """A webhook call: signature first, then the events answered, then 200."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        # The server's client_max_size (MAX_BODY) also stops a chunked body that grows too big.
        body = await request.read()
        if len(body) > MAX_BODY:
            return web.Response(status=413)
        if not verify_signature(self._secret, body, request.headers.get("X-Hub-Signature-256")):
            logger.warning("Messenger webhook call with a missing or wrong signature refused")
            return web.Response(status=403)
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            logger.warning("Messenger webhook call with a body that is not JSON")
            return web.Response(status=400)
        try:
            events = parse_body(parsed)
        except MalformedCall as problem:
            logger.warning("Messenger webhook call not shaped like Messenger's (%s)", problem)
            return web.Response(status=400)
        handling = []
        for event in self._fresh(events):
            # Tasks start in creation order and take the person's turn first thing, so one
            # person's events are handled in the order Messenger sent them.
            task = asyncio.create_task(self.handle(event), name="messenger-event")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            handling.append(task)
        if handling:
            # Handled, committed and answered before Messenger hears 200: a process that
            # dies before then leaves the call unanswered, Messenger sends it again, and the
            # conversation recognises it and sends what it had to say (never lost). Past
            # ANSWER_WITHIN the 200 goes anyway (Messenger waits 20 s), the tasks go on.
            await asyncio.wait(handling, timeout=ANSWER_WITHIN)
        return web.Response(text="EVENT_RECEIVED")

    def _fresh(self, events: list[Event]) -> list[Event]:
        """The events dated within the last MESSENGER_MAX_AGE seconds.

        The dedupe remembers a person's last few events only: a rightly signed call
        captured and sent again later is told apart by its date. Refused events are
        counted in the log, never shown.
        """
        now = time.time()
        fresh = [
            event
            for event in events
            if event.sent_at is not None and now - self._max_age <= event.sent_at <= now + MAX_SKEW
        ]
        if len(fresh) < len(events):
            logger.warning(
                "Messenger webhook: %s of %s events refused, dated more than %s s ago, "
                "ahead of this server's clock, or not at all",
                len(events) - len(fresh), len(events), self._max_age,
            )  # fmt: skip
        return fresh

    async def drain(self) -> None:
        """Wait until every event received so far has been answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Finish the events in hand, then close the HTTP session."""
        await self.drain()
        await self.client.close()

    # ------------------------------------------------------------ the conversation side

    async def handle(self, event: Event) -> None:
        """Answer one event in the person's turn; "More…" is answered here, the rest by handlers."""
        try:
            incoming = event.incoming
            more = incoming.kind is Kind.BUTTON and incoming.text.startswith(MORE_PREFIX)
            if more and await self._more(event.psid, incoming.text.removeprefix(MORE_PREFIX)):
                return

            async def deliver(replies: list[Reply]) -> None:
                await self.send(event.psid, replies)

            await self.app.conversation.process(
                channel=CHANNEL,
                user_id=event.psid,
                update_key=event.key,
                incoming=incoming,
                share_link=self._share_link,
                deliver=deliver,
            )
        except Exception:
            logger.exception("a Messenger event failed")

    async def _more(self, psid: str, page: str) -> bool:
        held = await self.app.conversation.locks(f"{CHANNEL}:{psid}")
        try:
            paged = self._paged.get(psid)
            if paged is None or not page.isdigit() or int(page) >= len(paged.pages):
                return False  # stale: the handlers answer it like any old button
            await self._message(psid, paged.text, _page_options(paged, int(page)))
            return True
        finally:
            held.release()

    async def send(self, psid: str, replies: list[Reply]) -> None:
        """Send replies in order, quick replies under each; a failure stops the rest, logged.
        No "typing…" indicator: the answer follows the message at once, and the indicator
        would double the Graph API calls of every answer."""
        self._paged.pop(psid, None)
        for reply in replies:
            if reply.to is not None:
                continue  # for someone else (an owner): admins are on Telegram, not here
            pieces = split_text(plain_text(reply.text)) or ["…"]
            for piece in pieces[:-1]:
                if not await self._message(psid, piece, []):
                    return
            fixed = _contact_options(reply)
            options = reply.options()
            pages = _pages(options, MAX_QUICK_REPLIES - len(fixed))
            more = ""
            if len(pages) > 1:
                more = (await self._translator(psid))(MORE)
            paged = _Paged(pieces[-1], pages, fixed, more)
            if len(pages) > 1:
                self._remember(psid, paged)
            if not await self._message(psid, pieces[-1], _page_options(paged, 0)):
                return

    def _remember(self, psid: str, paged: _Paged) -> None:
        self._paged[psid] = paged
        self._paged.move_to_end(psid)
        while len(self._paged) > MAX_PENDING_PAGES:
            self._paged.popitem(last=False)

    async def _translator(self, psid: str) -> Callable[[str], str]:
        async with self.app.conversation.sessions() as session:
            language = await queries.user_language(session, channel=CHANNEL, external_id=psid)
        return self.app.translations.get(language).gettext

    async def _message(self, psid: str, text: str, options: list[dict[str, str]]) -> bool:
        message: dict[str, Any] = {"text": text}
        if options:
            message["quick_replies"] = options
        body = {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
        return await self.client.post("me/messages", body) is not None


# ---------------------------------------------------------------- broadcasts

# Send API errors that mean the person cannot be written to any more, or not now.
_GONE_CODES = {551}  # "This person isn't available right now."
_GONE_SUBCODES = {1545041}
_OUTSIDE_WINDOW_SUBCODE = 2018278


def broadcast_outcome(status: int, answer: dict[str, Any], retry_after: str) -> Outcome:
    """What a Send API answer means for a broadcast message."""
    from db.broadcasts import OUTSIDE_WINDOW

    if status == 200:
        return Outcome("sent", message_id=str(answer.get("message_id") or "") or None)
    found = answer.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    code, subcode = error.get("code"), error.get("error_subcode")
    message = str(error.get("message") or f"HTTP {status}")
    if code in _GONE_CODES or subcode in _GONE_SUBCODES:
        return Outcome("blocked", error=message)
    if subcode == _OUTSIDE_WINDOW_SUBCODE:
        return Outcome("skipped", error=OUTSIDE_WINDOW)
    if status == 429 or code in (4, 17, 32, 613):
        return Outcome("again", error=message, retry_after=_retry_after(retry_after, 10.0))
    if status >= 500 or code in _TEMPORARY_CODES:
        return Outcome("retry", error=message)
    return Outcome("failed", error=message)


class MessengerOutlet:
    """Broadcasts to Messenger people (bot/workers/broadcast.py): the text, and a
    "stop" quick reply.

    Messenger allows them only within 24 hours of the person's last message: the outbox
    skips the others before they get here. Photos and documents are Telegram files, so on
    Messenger the caption goes out alone.
    """

    def __init__(self, settings: Settings) -> None:
        self.client = GraphClient(settings, tries=1)

    async def send(self, external_id: str, reply: Reply, *, paid: bool, resume: int = 0) -> Outcome:
        """Send one broadcast message; what the platform said (never raises). A text longer
        than Messenger's limit goes in parts; when a part fails, the outcome says how many
        went, and the retry (`resume`) starts from the next: no part reaches anyone twice."""
        pieces = split_text(plain_text(reply.text))
        if not pieces:
            return Outcome("skipped", error="messenger: a file without text cannot go out there")
        options = [_text_option(button) for button in reply.options()][:MAX_QUICK_REPLIES]
        outcome = Outcome("skipped")
        for number, piece in enumerate(pieces, start=1):
            if number <= resume:
                continue  # went on an earlier try
            message: dict[str, Any] = {"text": piece}
            if number == len(pieces) and options:
                message["quick_replies"] = options
            body = {"recipient": {"id": external_id}, "messaging_type": "UPDATE",
                    "message": message}  # fmt: skip
            try:
                outcome = broadcast_outcome(*await self.client.attempt("me/messages", body))
            except (aiohttp.ClientError, TimeoutError) as problem:
                return Outcome("retry", error=type(problem).__name__, pieces=number - 1)
            if outcome.status != "sent":
                return replace(outcome, pieces=number - 1)
        return replace(outcome, pieces=len(pieces))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.client.close()


# ---------------------------------------------------------------- serving and page setup


async def _plain_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would announce its name and version; a public endpoint tells nothing.
    response.headers["Server"] = "petitionbot"


def build_web_app(channel: MessengerChannel) -> web.Application:
    """A server of its own for the webhook (when Telegram polls, or is not configured)."""
    web_app = web.Application(client_max_size=MAX_BODY)
    from bot.channels.service import add_service_routes  # the database layer, when serving

    channel.register(web_app)
    add_service_routes(web_app, channel.app)
    web_app.on_response_prepare.append(_plain_server_header)
    return web_app


@contextlib.asynccontextmanager
async def serving(app: App) -> AsyncIterator[MessengerChannel]:
    """The webhook server on WEBHOOK_HOST:WEBHOOK_PORT while the block runs."""
    settings = app.settings
    channel = MessengerChannel(app)
    runner = web.AppRunner(build_web_app(channel), access_log_class=AccessLog)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
        logger.info(
            "Messenger webhook listening on %s:%s%s",
            settings.webhook_host, settings.webhook_port, WEBHOOK_PATH,
        )  # fmt: skip
        yield channel
    finally:
        await runner.cleanup()


async def run(app: App, *, background: Background = beside_nothing) -> None:
    """Messenger alone, with `background` beside it (no way to write to admins: Messenger
    has no admins), until SIGINT or SIGTERM."""
    async with serving(app), background(None):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def profile_calls(translations: Translations) -> list[dict[str, Any]]:
    """The three Messenger Profile settings, the same every time: Get Started, greeting, menu."""
    greeting = [
        {"locale": locale, "text": translations.get(language).gettext(GREETING)}
        for locale, language in PROFILE_LOCALES
    ]
    menus = [
        {
            "locale": locale,
            "composer_input_disabled": False,
            "call_to_actions": [
                {
                    "type": "postback",
                    "title": translations.get(language).gettext(text),
                    "payload": payload,
                }
                for payload, text in MENU
            ],
        }
        for locale, language in PROFILE_LOCALES
    ]
    return [
        {"get_started": {"payload": GET_STARTED}},
        {"greeting": greeting},
        {"persistent_menu": menus},
    ]


async def setup_page(settings: Settings, out: TextIO) -> bool:
    """Set the Page's Get Started button, greeting and menu; say what was set."""
    client = GraphClient(settings)
    ok = True
    try:
        for body in profile_calls(Translations(settings.locales_dir)):
            [(name, value)] = body.items()
            done = await client.post("me/messenger_profile", body) is not None
            ok = ok and done
            out.write(f"{name}: {'set' if done else 'FAILED'}\n")
            for line in _describe(name, value):
                out.write(f"  {line}\n")
    finally:
        await client.close()
    return ok


def _describe(name: str, value: Any) -> list[str]:
    if name == "get_started":
        return [f"payload {value['payload']}"]
    if name == "greeting":
        return [f"{item['locale']}: {item['text']}" for item in value]
    return [
        f"{menu['locale']}: "
        + ", ".join(f"{item['title']} ({item['payload']})" for item in menu["call_to_actions"])
        for menu in value
    ]
