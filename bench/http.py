"""The real bot over HTTP webhooks on PostgreSQL, one and two processes, beside an echo bot.

Everything between Telegram and the database runs as in production: each simulated signer
POSTs its updates (bench/signing.py's `signer_script`, as Telegram sends them, with the
secret header) to a balancer in this process, which hands each one to a `petitionbot run`
process in webhook mode on the PostgreSQL database `bench_http` (dropped, created and
migrated afresh before each run). The bot answers the webhook call once the update is
handled and committed; its replies go as Bot API calls to the fake Bot API
(tests/botapi_server.py), also in this process. A signer sends its next update only when
the webhook call has returned and the reply has reached the fake, as a person reads, then
taps. An update's latency runs from its POST to its reply seen; updates/s is all the
updates of the run over its wall time.

The balancer is round-robin per update and per person: each person's consecutive updates
go to the processes in turn, so with two processes they always alternate between them, and
only the database keeps one person's conversation in order.

An echo bot (aiogram's webhook handler around bench/signing.py's echo dispatcher, in
processes of its own) takes the same number of signers, updates and processes behind the
same balancer in the same run: the ratio bot/echo is what the petition costs over what
aiogram and the HTTP path cost anyway. Every signer starts at once (`--concurrency` as
many as `--signers`, 200 by default), after `--warmup` signers (20) who are not measured: a
new process's first updates build caches and open database connections. The table also
shows how the balancer spread the updates and the CPU seconds each process used (this one,
which runs the signers, the balancer and the fake, then each webhook process).

Checks, each printed as a FAILED line (exit status 1): every signer finished; signatures in
the database == signers who finished; no signer number told to two people, and the numbers
told are the ones in the database; every conversation in order (each step answered before
the next was sent, the button pressed next among those offered in that answer, the
thank-you last, everyone's row at rest); no unexpected Bot API call; no error in a bot
process's log.

    python -m bench.http [--signers 200] [--concurrency 200] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiogram.types import User
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from bench.signing import TOKEN, Phase, Step, UpdateFactory, build_echo_dispatcher, signer_script
from bot.channels.telegram import build_bot
from bot.config import Settings
from db.migrate import upgrade
from db.models import Signature
from db.models import User as Person
from db.protect import new_key
from db.session import create_engine, create_sessionmaker
from tests.botapi_server import FakeBotAPI, Params
from words.i18n import Translations
from words.text import ascii_digits

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "bench_http"  # the only database this bench touches: dropped and created
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header's name)
STEP_TIMEOUT = 60.0  # seconds for a webhook call and its reply (a loaded machine is slow)
START_TIMEOUT = 60.0  # seconds for a process to answer /healthz
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
KEYBOARD = "(reply keyboard)"  # offered by a reply keyboard: anything may be typed or pressed
FIRST_USER_ID = 7_000_000
BOT = "petitionbot, PostgreSQL"
ECHO = "echo (aiogram)"


# ---------------------------------------------------------------- the fake Bot API


@dataclass(frozen=True, slots=True)
class Seen:
    """A message the fake accepted for a chat: its text and the buttons under it."""

    text: str
    offers: frozenset[str]


def offered(markup: Any) -> frozenset[str]:
    """The callback payloads of an inline keyboard; KEYBOARD for a reply keyboard."""
    if not isinstance(markup, dict):
        return frozenset()
    if "keyboard" in markup:
        return frozenset({KEYBOARD})
    rows = markup.get("inline_keyboard") or []
    return frozenset(
        str(button["callback_data"])
        for row in rows
        for button in row
        if isinstance(button, dict) and "callback_data" in button
    )


class Inboxes(FakeBotAPI):
    """The fake Bot API, keeping each chat's messages in order and waking whoever waits for
    the next one (a scan of all calls for every step would cost the bench more than the bot)."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.inbox: defaultdict[str, list[Seen]] = defaultdict(list)
        self.methods: Counter[str] = Counter()
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def _record(self, method: str, params: Params) -> None:
        super()._record(method, params)
        self.methods[method] += 1
        if method != "sendMessage":
            return
        chat = str(params.get("chat_id"))
        text = params.get("text")
        markup = params.get("reply_markup")
        self.inbox[chat].append(Seen(str(text), offered(markup)))
        waiter = self._waiting.pop(chat, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def more_than(self, chat: str, count: int) -> None:
        """Wait until `chat` has been sent more than `count` messages."""
        while len(self.inbox[chat]) <= count:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[chat] = waiter
            await waiter


# ---------------------------------------------------------------- the balancer


def sender(body: bytes) -> int | None:
    """Who an update comes from (None when the body says nothing the balancer can use)."""
    try:
        update = json.loads(body)
    except ValueError:
        return None
    if not isinstance(update, dict):
        return None
    for kind in ("message", "callback_query", "my_chat_member"):
        event = update.get(kind)
        if isinstance(event, dict) and isinstance(event.get("from"), dict):
            person = event["from"].get("id")
            return person if isinstance(person, int) else None
    return None


class Balancer:
    """A reverse proxy in front of the processes: every update goes to the next process in
    that person's turn, so one person's consecutive updates alternate between processes."""

    def __init__(self) -> None:
        self.backends: list[str] = []
        self.forwarded: Counter[str] = Counter()
        self.url = ""
        self._turns: dict[int, int] = {}
        self._anyone = itertools.count()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Balancer]:
        """Listen on 127.0.0.1 on a free port while inside."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{WEBHOOK_PATH}"
        self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            yield self
        finally:
            await self._client.close()
            await self._runner.cleanup()

    def serve(self, backends: list[str]) -> None:
        """From now on, forward to these webhook URLs."""
        self.backends = backends
        self._turns.clear()
        self.forwarded.clear()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        person = sender(body)
        if person is None:
            turn = next(self._anyone)
        else:
            # Starting from the person's id spreads everyone's first update over the processes.
            turn = self._turns.get(person, person)
            self._turns[person] = turn + 1
        backend = self.backends[turn % len(self.backends)]
        self.forwarded[backend] += 1
        headers = {
            "Content-Type": "application/json",
            SECRET_HEADER: request.headers.get(SECRET_HEADER, ""),
        }
        try:
            async with self._client.post(backend, data=body, headers=headers) as response:
                answer = await response.read()
                return web.Response(
                    status=response.status,
                    body=answer,
                    headers={"Content-Type": response.headers.get("Content-Type", "text/plain")},
                )
        except aiohttp.ClientError:
            return web.Response(status=502, text="bad gateway")


# ---------------------------------------------------------------- the processes


def free_port() -> int:
    """A TCP port nobody listens on now (the process binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    """A webhook process this bench started."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def webhook(self) -> str:
        """Where its webhook listens."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def complaints(self) -> list[str]:
        """The lines of its log that say something went wrong (ERROR, CRITICAL, tracebacks)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        bad = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback")
        return [line for line in lines if bad.search(line)]

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (0 when it cannot be read)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        # utime and stime, the 14th and 15th fields of the line, counted after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def warnings(self) -> list[str]:
        """The WARNING lines of its log."""
        try:
            return [
                line
                for line in self.log.read_text(errors="replace").splitlines()
                if " WARNING " in line
            ]
        except OSError:
            return []


def process_env(**values: str) -> dict[str, str]:
    """This environment without the bot's own settings (a developer's token or database
    must not leak in), plus `values`."""
    own = ("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_", "DATA_KEY", "HASH_KEY",
           "ADMIN_IDS", "BROADCAST_", "METRICS_", "LOG_LEVEL", "PETITION_")  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(own)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    env.update(values)
    return env


async def start(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    """Start a process; its output goes to a log file of its own."""
    port = int(env["WEBHOOK_PORT"])
    log = workdir / f"{name.replace(' ', '-')}.log"
    with log.open("wb") as output:
        # In a folder of its own: no `.env` of a developer's checkout is read.
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    return Server(name, process, port, log)


async def wait_ready(server: Server, client: aiohttp.ClientSession) -> None:
    """Until the process answers /healthz; RuntimeError if it ends or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    url = f"http://127.0.0.1:{server.port}/healthz"
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} ended with {server.process.returncode}:\n{tail}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with client.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /healthz within {START_TIMEOUT:.0f} s")


async def stop(servers: list[Server]) -> None:
    """SIGTERM, then SIGKILL for a process still there after STOP_TIMEOUT."""
    for server in servers:
        if server.process.returncode is None:
            server.process.terminate()
    for server in servers:
        try:
            await asyncio.wait_for(server.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            server.process.kill()
            await server.process.wait()


@contextlib.asynccontextmanager
async def processes(
    engine: str, count: int, context: Context, database_url: str
) -> AsyncIterator[list[Server]]:
    """`count` webhook processes of the bot or of the echo bot, ready; stopped after."""
    servers: list[Server] = []
    try:
        for index in range(1, count + 1):
            port = free_port()
            env = process_env(
                TELEGRAM_BOT_TOKEN=TOKEN,
                TELEGRAM_API_URL=context.fake.url,
                WEBHOOK_URL=f"http://127.0.0.1:{port}",
                WEBHOOK_SECRET=context.secret,
                WEBHOOK_HOST="127.0.0.1",
                WEBHOOK_PORT=str(port),
                WEBHOOK_PATH=WEBHOOK_PATH,
                LOG_LEVEL="WARNING",
            )
            if engine == BOT:
                # Contact keys as a campaign runs, so the contact step of the script is asked.
                data_key, hash_key = context.keys
                env.update(
                    DATABASE_URL=database_url,
                    DATA_KEY=data_key,
                    HASH_KEY=hash_key,
                    BROADCAST_IN_BOT="false",  # no broadcaster to start in every process
                )
                command = [sys.executable, "-m", "bot", "run"]
                name = f"bot {index} of {count}"
            else:
                command = [sys.executable, "-m", "bench.http", "--serve-echo"]
                name = f"echo {index} of {count}"
            servers.append(await start(name, command, env, context.workdir))
        for server in servers:
            await wait_ready(server, context.client)
        yield servers
    finally:
        await stop(servers)


def serve_echo() -> int:
    """The echo bot's process: aiogram's webhook handler, answering once handled (as the
    bot does), replies to the Bot API given in the environment; until SIGTERM."""
    settings = Settings(
        _env_file=None,
        telegram_bot_token=os.environ["TELEGRAM_BOT_TOKEN"],
        telegram_api_url=os.environ["TELEGRAM_API_URL"],
    )

    async def serve() -> None:
        bot = build_bot(settings)  # the same Bot (session, defaults) as the petition bot's
        dispatcher = build_echo_dispatcher()
        web_app = web.Application()
        SimpleRequestHandler(
            dispatcher=dispatcher,
            bot=bot,
            secret_token=os.environ["WEBHOOK_SECRET"],
            handle_in_background=False,
        ).register(web_app, path=WEBHOOK_PATH)

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(text="ok")

        web_app.router.add_get("/healthz", healthz)
        setup_application(web_app, dispatcher, bot=bot)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await web.TCPSite(runner, "127.0.0.1", int(os.environ["WEBHOOK_PORT"])).start()
            await stopping.wait()
        finally:
            await runner.cleanup()
            await bot.session.close()

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve())
    return 0


# ---------------------------------------------------------------- the database


async def fresh_database(args: argparse.Namespace) -> str:
    """Drop and create `bench_http`, migrated; its URL."""
    base = str(args.postgres).rstrip("/")
    server = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        await server.dispose()
    url = f"{base}/{DATABASE}"
    engine = create_engine(url)
    try:
        await upgrade(engine)  # once, before the processes start (each would try otherwise)
    finally:
        await engine.dispose()
    return url


@dataclass(slots=True)
class Stored:
    """What the database holds after a run."""

    signatures: int
    numbers: list[int]
    unsettled: list[str]  # signers whose row is not at rest after the thank-you


async def read_database(url: str, user_ids: list[str]) -> Stored:
    """The signatures, their numbers, and the signers whose last step is not `idle`."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            total = await session.scalar(select(func.count()).select_from(Signature)) or 0
            numbers = [n for n in (await session.scalars(select(Signature.number))) if n]
            rows = await session.execute(
                select(Person.external_id, Person.step).where(
                    Person.channel == "telegram", Person.external_id.in_(user_ids)
                )
            )
            steps = {external_id: step for external_id, step in rows}
    finally:
        await engine.dispose()
    unsettled = [user for user in user_ids if steps.get(user) != "idle"]
    return Stored(total, numbers, unsettled)


# ---------------------------------------------------------------- the signers


@dataclass(slots=True)
class Talk:
    """One signer's conversation: what they send, and where each answer begins in their inbox."""

    chat: str
    steps: list[Step]
    bodies: list[bytes]
    starts: list[int] = field(default_factory=list)
    failure: str | None = None

    @property
    def finished(self) -> bool:
        """Whether every step was answered."""
        return self.failure is None and len(self.starts) == len(self.steps)


def talks_for(factory: UpdateFactory, signers: int, first_user_id: int) -> list[Talk]:
    """Every signer's updates, encoded before the clock starts."""
    talks = []
    for index in range(signers):
        user = User(id=first_user_id + index, is_bot=False, first_name="Signer")
        steps = signer_script(index)
        updates = [factory.make(user, step) for step in steps]
        bodies = [
            update.model_dump_json(exclude_none=True, by_alias=True).encode() for update in updates
        ]
        talks.append(Talk(str(user.id), steps, bodies))
    return talks


@dataclass(slots=True)
class Context:
    """What every run shares: the fake, the balancer, the client, the secrets."""

    fake: Inboxes
    balancer: Balancer
    client: aiohttp.ClientSession
    workdir: Path
    secret: str
    keys: tuple[str, str]  # DATA_KEY and HASH_KEY
    factory: UpdateFactory
    patterns: list[re.Pattern[str]]
    notes: list[str] = field(default_factory=list)


async def converse(talk: Talk, context: Context, latencies: list[float]) -> None:
    """One signer: each update once the answer to the one before has come."""
    headers = {"Content-Type": "application/json", SECRET_HEADER: context.secret}
    inbox = context.fake.inbox[talk.chat]
    clock = time.perf_counter
    for step, body in enumerate(talk.bodies):
        doing = f"step {step + 1} {talk.steps[step]}"
        before = len(inbox)
        started = clock()
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                post = context.client.post(context.balancer.url, data=body, headers=headers)
                async with post as response:
                    await response.read()
                if response.status != 200:
                    talk.failure = f"{doing}: the webhook answered {response.status}"
                    return
                await context.fake.more_than(talk.chat, before)
        except TimeoutError:
            talk.failure = f"{doing}: no answer in {STEP_TIMEOUT:.0f} s"
            return
        except aiohttp.ClientError as error:
            talk.failure = f"{doing}: {type(error).__name__}"
            return
        latencies.append(clock() - started)
        talk.starts.append(before)


async def run_phase(name: str, talks: list[Talk], context: Context, concurrency: int) -> Phase:
    """Every signer's conversation, `concurrency` signers at a time."""
    phase = Phase(name)
    pending: Iterator[Talk] = iter(talks)

    async def worker() -> None:
        # A free worker takes the next signer, like a new person arriving.
        for talk in pending:
            await converse(talk, context, phase.latencies)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(talks))):
            group.create_task(worker())
    phase.wall = time.perf_counter() - started
    return phase


# ---------------------------------------------------------------- the checks


def number_patterns() -> list[re.Pattern[str]]:
    """The thank-you's "You are signer number {number}." as each catalog words it, with the
    number (ASCII or Khmer digits) captured."""
    translations = Translations(ROOT / "locales")
    patterns = []
    for language in ("en", "km"):
        worded = translations.get(language).gettext("You are signer number {number}.")
        before, _, after = worded.partition("{number}")
        patterns.append(re.compile(re.escape(before) + r"([0-9០-៩][0-9០-៩,]*)" + re.escape(after)))
    return patterns


def told_number(texts: list[str], patterns: list[re.Pattern[str]]) -> list[int]:
    """Every signer number in these messages."""
    found = []
    for message in texts:
        for pattern in patterns:
            found += [int(ascii_digits(m).replace(",", "")) for m in pattern.findall(message)]
    return found


def check_order(talk: Talk, inbox: list[Seen], patterns: list[re.Pattern[str]]) -> str | None:
    """What is out of order in one finished conversation, if anything."""
    ends = [*talk.starts[1:], len(inbox)]
    for step, (begin, end) in enumerate(zip(talk.starts, ends, strict=True)):
        answer = inbox[begin:end]
        if not answer:
            return f"step {step + 1} {talk.steps[step]} got no answer before the next was sent"
        if step + 1 < len(talk.steps):
            kind, payload = talk.steps[step + 1]
            offers = frozenset().union(*(seen.offers for seen in answer))
            if kind == "button" and payload not in offers and KEYBOARD not in offers:
                texts = " | ".join(seen.text[:80] for seen in answer)
                return (
                    f"after step {step + 1} {talk.steps[step]} the answer does not offer "
                    f"{payload!r} (offers {sorted(offers)}): {texts!r}"
                )
        elif not told_number([seen.text for seen in answer], patterns):
            return f"the last answer is not the thank-you: {answer[-1].text[:200]!r}"
    return None


def check_bot(
    talks: list[Talk], fake: Inboxes, stored: Stored, patterns: list[re.Pattern[str]]
) -> list[str]:
    """The petition run's problems: unfinished, miscounted, numbers told twice, disorder."""
    problems = []
    unfinished = [talk for talk in talks if not talk.finished]
    if unfinished:
        problems.append(
            f"{len(unfinished)} of {len(talks)} signers did not finish; "
            f"user {unfinished[0].chat}: {unfinished[0].failure}"
        )
    finished = len(talks) - len(unfinished)
    if stored.signatures != finished:
        problems.append(
            f"{stored.signatures} signatures in the database, {finished} signers went through "
            "every step"
        )
    told: dict[int, list[str]] = defaultdict(list)
    for talk in talks:
        texts = [seen.text for seen in fake.inbox[talk.chat]]
        numbers = told_number(texts, patterns)
        if talk.finished and len(numbers) != 1:
            problems.append(f"user {talk.chat} was told {len(numbers)} signer numbers: {numbers}")
        for number in numbers:
            told[number].append(talk.chat)
    twice = {number: chats for number, chats in told.items() if len(chats) > 1}
    if twice:
        number, chats = min(twice.items())
        problems.append(
            f"{len(twice)} signer numbers told to more than one person; "
            f"number {number} to users {', '.join(chats)}"
        )
    if sorted(told) != sorted(stored.numbers):
        missing = sorted(set(stored.numbers) - set(told))[:5]
        extra = sorted(set(told) - set(stored.numbers))[:5]
        problems.append(
            f"numbers told ({len(told)}) are not the database's ({len(stored.numbers)}): "
            f"in the database only {missing}, told only {extra}"
        )
    disorder = [
        (talk.chat, found)
        for talk in talks
        if talk.finished and (found := check_order(talk, fake.inbox[talk.chat], patterns))
    ]
    if disorder:
        chat, found = disorder[0]
        problems.append(f"{len(disorder)} conversations out of order; user {chat}: {found}")
    finished_ids = {talk.chat for talk in talks if talk.finished}
    unsettled = [user for user in stored.unsettled if user in finished_ids]
    if unsettled:
        problems.append(
            f"{len(unsettled)} signers went through every step but their row is not at rest "
            f"(step 'idle') in the database; user {unsettled[0]}"
        )
    return problems


def check_echo(talks: list[Talk]) -> list[str]:
    """The echo run's problems: every update answered."""
    unfinished = [talk for talk in talks if not talk.finished]
    if not unfinished:
        return []
    first = unfinished[0]
    return [f"{len(unfinished)} signers did not finish; user {first.chat}: {first.failure}"]


# ---------------------------------------------------------------- the run


def progress(line: str) -> None:
    """Where the bench is, on stderr (the figures go to stdout)."""
    print(line, file=sys.stderr, flush=True)


@dataclass(slots=True)
class Row:
    """One line of the table."""

    engine: str
    processes: int
    phase: Phase
    share: str  # how the balancer spread the updates
    cpu: str  # CPU seconds of this process (the bench) and of each webhook process
    ratio: float | None = None


def print_table(rows: list[Row]) -> None:
    """One aligned line per run."""
    header = ("engine", "processes", "updates", "wall s", "updates/s", "p50 ms", "p99 ms",
              "ratio-to-echo", "per process", "CPU s bench/processes")  # fmt: skip
    lines = [
        (
            row.engine,
            str(row.processes),
            str(row.phase.updates),
            f"{row.phase.wall:.2f}",
            f"{row.phase.rate:.0f}",
            f"{row.phase.percentile_ms(0.50):.1f}",
            f"{row.phase.percentile_ms(0.99):.1f}",
            f"{row.ratio:.2f}" if row.ratio is not None else "",
            row.share,
            row.cpu,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *lines)) for i in range(len(header))]
    for line in (header, *lines):
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())


async def one_run(
    engine: str, count: int, args: argparse.Namespace, context: Context, first_user_id: int
) -> tuple[Row, list[str]]:
    """One engine with `count` processes behind the balancer: its row and its problems."""
    label = f"{engine}, {count} process{'es' if count > 1 else ''}"
    progress(f"{label}: starting")
    database_url = await fresh_database(args) if engine == BOT else ""
    warmup = talks_for(context.factory, args.warmup, first_user_id)
    talks = talks_for(context.factory, args.signers, first_user_id + args.warmup)
    calls_before = Counter(context.fake.methods)
    began = time.monotonic()
    async with processes(engine, count, context, database_url) as servers:
        progress(f"{label}: ready in {time.monotonic() - began:.1f} s; signing")
        context.balancer.serve([server.webhook for server in servers])
        # A new process's first updates build caches and open connections: not measured.
        await run_phase(label, warmup, context, args.concurrency)
        context.balancer.forwarded.clear()
        cpu_before = [server.cpu_seconds() for server in servers]
        own_before = time.process_time()
        phase = await run_phase(label, talks, context, args.concurrency)
        own = time.process_time() - own_before
        cpu_after = [server.cpu_seconds() for server in servers]
        share = "/".join(str(context.balancer.forwarded[server.webhook]) for server in servers)
        progress(f"{label}: {phase.updates} updates in {phase.wall:.1f} s")
    theirs = "+".join(f"{b - a:.1f}" for a, b in zip(cpu_before, cpu_after, strict=True))
    problems: list[str] = []
    for server in servers:
        complaints = server.complaints()
        if complaints:
            problems.append(
                f"{server.name} logged {len(complaints)} error lines; first: "
                f"{complaints[0][:300]} (log: {server.log.name})"
            )
        warned = server.warnings()
        if warned:
            context.notes.append(
                f"{server.name} logged {len(warned)} warnings; first: {warned[0][:300]}"
            )
    everyone = warmup + talks
    if engine == BOT:
        stored = await read_database(database_url, [talk.chat for talk in everyone])
        found = check_bot(everyone, context.fake, stored, context.patterns)
        problems += [f"{label}: {problem}" for problem in found]
        calls = context.fake.methods - calls_before
        context.notes.append(
            f"{label}: {stored.signatures} signatures ({args.warmup} of them while warming "
            "up); Bot API calls: " + ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
        )
    else:
        problems += [f"{label}: {problem}" for problem in check_echo(everyone)]
    return Row(engine, count, phase, share, f"{own:.1f}/{theirs}"), problems


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    """Echo and bot for each process count; the table, the checks; the exit code."""
    problems: list[str] = []
    rows: list[Row] = []
    fake = Inboxes()
    connector = aiohttp.TCPConnector(limit=0)  # one connection per signer, as from Telegram
    async with (
        fake,
        Balancer().running() as balancer,
        aiohttp.ClientSession(connector=connector) as client,
    ):
        keys = (new_key(), secrets.token_urlsafe(48))
        context = Context(
            fake,
            balancer,
            client,
            workdir,
            secrets.token_urlsafe(32),
            keys,
            UpdateFactory(),
            number_patterns(),
        )
        first_user_id = FIRST_USER_ID
        try:
            for count in args.processes:
                # Echo first, then the bot, for each process count: both under the same noise.
                pair = []
                for engine in (ECHO, BOT):
                    row, found = await one_run(engine, count, args, context, first_user_id)
                    first_user_id += args.warmup + args.signers
                    problems += found
                    pair.append(row)
                echo, bot = pair
                if echo.phase.rate:
                    bot.ratio = bot.phase.rate / echo.phase.rate
                rows += pair
        except (RuntimeError, OSError, SQLAlchemyError) as error:
            # A process that did not start, a database server out of reach.
            problems.append(f"{type(error).__name__}: {error}")
        unexpected = sorted({name for name, _params in fake.unexpected()})
        if unexpected:
            problems.append(f"Bot API calls the fake does not know: {', '.join(unexpected)}")
    warmed = f" (after {args.warmup} to warm the processes up, not counted)" if args.warmup else ""
    print(
        f"{args.signers} signers{warmed}, {args.concurrency} at once, {len(signer_script(0))} "
        f"updates each; PostgreSQL database {DATABASE}, fresh for each bot run; the balancer "
        "gives each person's updates to the processes in turn"
    )
    print()
    print_table(rows)
    print()
    for note in context.notes:
        print(note)
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print(
            "checks: every signer finished; signatures == signers; no number told twice; "
            "every conversation in order; no error logged"
        )
    return 1 if problems else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.http",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--signers", type=int, default=200, help="simulated signers (200)")
    parser.add_argument("--concurrency", type=int, help="signers at once (default: all of them)")
    parser.add_argument(
        "--warmup", type=int, default=20, help="signers before the measured ones, per run (20)"
    )
    parser.add_argument(
        "--processes", default="1,2", help="process counts to run, comma-separated (1,2)"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432",
        help=f"the PostgreSQL server, without a database: {DATABASE} is dropped and created",
    )
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        return args
    if args.concurrency is None:
        args.concurrency = args.signers
    if args.signers < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--signers and --concurrency must be at least 1, --warmup at least 0")
    try:
        args.processes = [int(part) for part in args.processes.split(",") if part.strip()]
    except ValueError:
        parser.error("--processes: numbers, comma-separated")
    if not args.processes or min(args.processes) < 1:
        parser.error("--processes: at least one process")
    if not str(args.postgres).startswith("postgresql+asyncpg://"):
        parser.error("--postgres must start with postgresql+asyncpg://")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --serve-echo, be one of its echo processes)."""
    args = parse_args(argv)
    if args.serve_echo:
        return serve_echo()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="petitionbot-bench-http-") as tmpdir:
        code = asyncio.run(bench(args, Path(tmpdir)))
        logs = sorted(Path(tmpdir).glob("*.log"))
        if code and logs:
            keep = Path(tempfile.mkdtemp(prefix="petitionbot-bench-http-logs-"))
            for log in logs:
                (keep / log.name).write_bytes(log.read_bytes())
            print(f"process logs kept in {keep}")
        return code


if __name__ == "__main__":
    sys.exit(main())
