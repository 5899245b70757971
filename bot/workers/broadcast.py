"""The broadcaster: sends each broadcast's outbox at the platform's limits, never twice,
never losing a row.

One worker sends at a time (it holds the lease of `db/broadcasts.py`; others stand by).
For each running broadcast it claims rows in batches (pending → sending, committed before
any platform call), as far ahead as claims take to come back, sends them concurrently
behind a token bucket (the global rate; a 429 pauses every send for `retry_after`; one
message a second per chat at most), and records the results in batches. Both run without
BEGIN and COMMIT (a claim is one statement; each recorded row stands alone): on PostgreSQL
two round trips through the busy event loop instead of four. Rows in flight are bounded
by the window: a worker that dies leaves at most that many rows `sending`, which the next
one marks `unknown` and never resends. On SIGTERM the worker stops claiming, finishes what
is in flight and puts back the rest, so a redeploy leaves nothing unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.outlet import Outcome, Outlet, Reporter
from bot.metrics import Metrics
from db import broadcasts as store
from db import queries, sends
from db.models import Broadcast, utcnow
from handlers.admin.broadcasts import DEFAULT_RATE, progress_text
from handlers.news import recipient_reply
from words.i18n import Translations

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings

logger = logging.getLogger(__name__)

PAID_RATE = 1000.0  # Telegram's limit with allow_paid_broadcast (paid in Stars above 30/s)
MAX_ATTEMPTS = 5  # temporary failures (timeouts, 5xx, network) before a row is failed
BACKOFF = 2.0  # seconds before the first retry (2, 4, 8, 16): never 2 a second to a chat
POLL_EVERY = 1.0  # seconds between looks at the database when there is nothing to send
STANDBY_EVERY = 5.0  # seconds between tries for the lease while another worker holds it
REPORT_EVERY = 5.0  # seconds between edits of the admin's progress message
FLUSH_EVERY = 0.05  # seconds between looks at the results waiting to be recorded
FLUSH_WAIT = 0.2  # seconds a result may wait for others to be recorded with
PER_CHAT = 1.0  # seconds between two messages to the same chat
CLAIM_AHEAD = 2.0  # rows are claimed for this many times as long as a claim takes
CLAIM_FORGET = 0.9  # how much of the longest claim time is kept at each next claim
STOP_GRACE = 15.0  # seconds a stopping worker gives the sends in flight
SHARE_EVERY = 2.0  # seconds between looks at the answers the bots are sending
LEAST_SHARE = 0.2  # of its rate, what a broadcast keeps however busy the answers are
Clock = Callable[[], datetime]
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def window_for(rate: float) -> int:
    """Rows a worker may hold in flight at `rate`: half a second's worth, 20 to 500."""
    return max(20, min(500, math.ceil(rate * 0.5)))


# ---------------------------------------------------------------- the rate


class Pacer:
    """A token bucket: `await take()` before each send, at `rate` a second, with a burst of
    2 % of a second's worth to absorb the event loop's late wake-ups. `pause(s)` holds
    every sender for `s` seconds (a 429)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._paused_until = 0.0

    @property
    def rate(self) -> float:
        """Messages a second."""
        return 1.0 / self._interval

    @rate.setter
    def rate(self, value: float) -> None:
        self._interval = 1.0 / value
        self._slack = (max(1.0, value * 0.02) - 1.0) * self._interval

    async def take(self) -> None:
        """Wait for the next slot."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._paused_until > now:
                await asyncio.sleep(self._paused_until - now)
                continue
            slot = max(self._next, now - self._slack)
            self._next = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)
            if self._paused_until <= loop.time():
                return

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` from now."""
        until = asyncio.get_running_loop().time() + seconds
        self._paused_until = max(self._paused_until, until)
        self._next = max(self._next, self._paused_until)

    @property
    def paused(self) -> bool:
        """Whether a pause is in force."""
        return self._paused_until > asyncio.get_running_loop().time()


# ---------------------------------------------------------------- the worker


@dataclass(slots=True)
class Worker:
    """Sends every running broadcast; starts scheduled ones when due (by `clock`)."""

    sessions: async_sessionmaker[AsyncSession]
    lease: store.Lease
    translations: Translations
    outlets: dict[str, Outlet]
    reporter: Reporter | None = None
    clock: Clock = utcnow
    max_rate: float = DEFAULT_RATE
    max_paid_rate: float = PAID_RATE
    window: int | None = None  # rows in flight; None: `window_for(rate)`
    poll_every: float = POLL_EVERY
    report_every: float = REPORT_EVERY
    backoff: float = BACKOFF  # seconds before the first retry; doubled for each next one
    pacers: dict[str, Pacer] = field(default_factory=dict)
    metrics: Metrics | None = None  # the bot's, when the worker runs beside it

    async def run(self, stop: asyncio.Event, *, exit_when_idle: bool = False) -> None:
        """Hold the lease and send until `stop` (or, with `exit_when_idle`, until nothing is
        scheduled or running); stand by while another worker holds the lease."""
        standing_by = False
        while not stop.is_set():
            if not await self.lease.acquire():
                if not standing_by:
                    logger.info("another worker is broadcasting; standing by")
                standing_by = True
                await _wait(stop, STANDBY_EVERY)
                continue
            standing_by = False
            try:
                await self.recover()
                while not stop.is_set() and await self.lease.alive():
                    busy = await self.tick(stop)
                    if exit_when_idle and not busy:
                        return
                    await _wait(stop, self.poll_every)
            except Exception:
                logger.exception("the broadcaster failed; starting again in a few seconds")
                await _wait(stop, STANDBY_EVERY)
            finally:
                await self.lease.release()

    async def recover(self) -> dict[int, int]:
        """Rows a dead worker left in flight become `unknown` (call with the lease held)."""
        async with self.sessions() as session, session.begin():
            found = await store.recover(session, now=self.clock())
        for broadcast_id, count in found.items():
            logger.warning(
                "broadcast %d: %d messages were in flight when a worker stopped; marked "
                "unknown, not sent again",
                broadcast_id,
                count,
            )
        return found

    async def tick(self, stop: asyncio.Event | None = None) -> bool:
        """One round: start the broadcasts that are due, send the running ones as far as
        they go now. True while any broadcast is scheduled or running."""
        stop = stop or asyncio.Event()
        async with self.sessions() as session, session.begin():
            started = await store.start_due(session, now=self.clock())
        for broadcast_id in started:
            logger.info("broadcast %d started", broadcast_id)
        async with self.sessions() as session:
            active = await store.active_broadcasts(session)
        running = [broadcast for broadcast in active if broadcast.status == "running"]
        if not running:
            return bool(active)  # nothing to send now: one look at the database was enough
        for broadcast in running:
            if not stop.is_set():
                await self.deliver(broadcast, stop)
        async with self.sessions() as session:
            return bool(await store.active_broadcasts(session))

    async def deliver(self, broadcast: Broadcast, stop: asyncio.Event) -> None:
        """Send what can be sent of one broadcast now; finish it when nothing is left."""
        report = await self._report_target(broadcast)
        run = _Run(self, broadcast, stop, report)
        await run.run()
        now = self.clock()
        async with self.sessions() as session, session.begin():
            done = await store.finish_if_done(session, broadcast_id=broadcast.id, now=now)
            current = await store.get_broadcast(session, broadcast_id=broadcast.id)
        if current is None or report is None:
            return
        if done or current.status == "cancelled":
            state = "done" if done else "cancelled"
            started = store.as_utc(current.started_at or now)
            await self._final_report(report, broadcast.id, state, (now - started).total_seconds())

    async def close(self) -> None:
        """Close the platforms' connections."""
        for outlet in self.outlets.values():
            await outlet.close()

    # ------------------------------------------------------------ the admin's report

    async def _report_target(self, broadcast: Broadcast) -> _Report | None:
        # Admins read the progress on Telegram (the console has nobody to write to later).
        if self.reporter is None or broadcast.report_channel != "telegram":
            return None
        if not broadcast.report_chat:
            return None
        chat = broadcast.report_chat
        async with self.sessions() as session:
            languages = await queries.admin_languages(session, channel="telegram", ids=[chat])
        report = _Report(chat, languages[chat], broadcast.report_message_id)
        if report.message_id is None:
            figures = await self._figures(broadcast.id)
            report.message_id = await self._say(report, broadcast.id, figures, "sending", 0.0)
            async with self.sessions() as session, session.begin():
                await store.set_report_message(
                    session, broadcast_id=broadcast.id, message_id=report.message_id
                )
        return report

    async def _figures(self, broadcast_id: int) -> store.Figures:
        async with self.sessions() as session:
            return (await store.figures(session, ids=[broadcast_id]))[broadcast_id]

    def _text(
        self,
        report: _Report,
        broadcast_id: int,
        figures: store.Figures,
        state: str,
        *,
        rate: float = 0.0,
        elapsed: float = 0.0,
    ) -> str:
        gettext = self.translations.get(report.language).gettext
        return progress_text(
            gettext, report.language, broadcast_id=broadcast_id, figures=figures, state=state,
            rate=rate, elapsed=elapsed,
        )  # fmt: skip

    async def _say(
        self, report: _Report, broadcast_id: int, figures: store.Figures, state: str, rate: float
    ) -> str | None:
        assert self.reporter is not None
        await self.pacer("telegram").take()
        return await self.reporter.post(
            report.chat, self._text(report, broadcast_id, figures, state, rate=rate)
        )

    async def progress(self, report: _Report, broadcast_id: int, rate: float) -> None:
        """Edit the admin's status message with the current figures."""
        if self.reporter is None or report.message_id is None:
            return
        figures = await self._figures(broadcast_id)
        text = self._text(report, broadcast_id, figures, "sending", rate=rate)
        await self.pacer("telegram").take()
        await self.reporter.edit(report.chat, report.message_id, text)

    async def _final_report(
        self, report: _Report, broadcast_id: int, state: str, elapsed: float
    ) -> None:
        assert self.reporter is not None
        figures = await self._figures(broadcast_id)
        text = self._text(report, broadcast_id, figures, state, elapsed=elapsed)
        pacer = self.pacer("telegram")
        if report.message_id is not None:
            await pacer.take()
            await self.reporter.edit(report.chat, report.message_id, text)
        # A new message too: an edit does not notify anyone.
        await pacer.take()
        await self.reporter.post(report.chat, text)

    def pacer(self, channel: str) -> Pacer:
        """The token bucket of a platform (one per worker: a 429 holds every broadcast)."""
        if channel not in self.pacers:
            self.pacers[channel] = Pacer(self.max_rate)
        return self.pacers[channel]


@dataclass(slots=True)
class _Timings:
    """How long the database took for one kind of statement, over a run (for the log)."""

    count: int = 0
    total: float = 0.0
    longest: float = 0.0

    def add(self, seconds: float) -> None:
        """Count one more."""
        self.count += 1
        self.total += seconds
        self.longest = max(self.longest, seconds)

    def __str__(self) -> str:
        average = self.total / self.count if self.count else 0.0
        return (
            f"{self.count} ({average * 1000:.0f} ms on average, {self.longest * 1000:.0f} at most)"
        )


@dataclass(slots=True)
class _Report:
    chat: str
    language: str
    message_id: str | None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# ---------------------------------------------------------------- one broadcast's run


class _Run:
    """Claim → send → record for one broadcast, until nothing is due or the worker stops."""

    def __init__(
        self, worker: Worker, broadcast: Broadcast, stop: asyncio.Event, report: _Report | None
    ) -> None:
        self.worker = worker
        self.broadcast = broadcast
        self.stop = stop
        self.report = report
        ceiling = worker.max_paid_rate if broadcast.paid else worker.max_rate
        self.rate = max(0.1, min(broadcast.rate or DEFAULT_RATE, ceiling))
        self.window = worker.window or window_for(self.rate)
        # The fewest rows a claim takes: a twentieth of a second's worth. How far ahead rows
        # are claimed follows how long claims take (`_low_water`): a claim must come back
        # before the rows queued are gone, on a database across the network as on a file.
        self.batch = max(1, min(self.window // 4, math.ceil(self.rate * 0.05)))
        self.claim_took = 0.0  # seconds a claim takes: the longest lately, slowly forgotten
        self.queues: dict[str, deque[store.Claimed]] = {}
        self.deferred: dict[int, tuple[store.Claimed, asyncio.TimerHandle]] = {}
        self.sending: set[asyncio.Task[None]] = set()
        self.results: list[store.Result] = []
        self.held = 0  # rows claimed whose result is not yet committed
        self.exhausted = False
        self.closing = False
        self.changed = asyncio.Event()
        self.recent: dict[str, float] = {}  # chat → when it last got a message
        self.replies = {
            language: recipient_reply(version, worker.translations.get(language).gettext)
            for language, version in broadcast.versions.items()
        }
        self.done = 0
        self.started = time.monotonic()
        self.claims = _Timings()
        self.records = _Timings()

    def _kick(self) -> None:
        self.changed.set()

    async def _changed(self, timeout: float | None = None) -> None:
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    async def run(self) -> None:
        self.worker.pacer("telegram").rate = self.rate
        if not self.broadcast.paid:
            await self._share(forget=True)
        # Messenger knows no paid broadcasts: it keeps the ordinary rate.
        self.worker.pacer("messenger").rate = min(self.rate, self.worker.max_rate)
        lanes = [asyncio.create_task(self._lane(channel)) for channel in store.CHANNELS]
        # The claimer and the flusher are never cancelled: a claim or a record cut short
        # after its commit would leave rows in flight that nobody holds any more.
        helpers = [asyncio.create_task(self._claimer()), asyncio.create_task(self._flusher())]
        reporter = asyncio.create_task(self._reporter())
        sharing = asyncio.create_task(self._sharer())
        try:
            await asyncio.gather(*lanes)
        finally:
            self.exhausted = self.closing = True
            for task in lanes:
                task.cancel()
            if self.sending:
                await asyncio.wait(self.sending, timeout=STOP_GRACE)
            reporter.cancel()
            sharing.cancel()
            await asyncio.gather(*helpers, reporter, sharing, return_exceptions=True)
            # After the sends in flight (a 429 among them put its row back in a queue) and
            # after the claimer's last claim (its rows are queued too): nothing claimed and
            # unsent is left marked as in flight.
            self._put_back()
            await self._flush_all()
            if self.done:
                elapsed = time.monotonic() - self.started
                logger.info(
                    "broadcast %d: %d messages settled in %.1f s (%.0f a second); claims %s; "
                    "records %s",
                    self.broadcast.id, self.done, elapsed, self.done / elapsed, self.claims,
                    self.records,
                )  # fmt: skip

    def _queued(self) -> int:
        return sum(len(queue) for queue in self.queues.values()) + len(self.deferred)

    def _low_water(self) -> int:
        """Rows to keep queued: what goes out while a claim is on its way, twice over (at
        least a batch; at most a quarter of the window, the rest being for rows in flight
        and results still to record)."""
        ahead = math.ceil(self.rate * self.claim_took * CLAIM_AHEAD)
        return max(self.batch, min(self.window // 4, ahead))

    async def _claimer(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop.is_set() and not self.closing:
            free = self.window - self.held
            queued = self._queued()
            low = self._low_water()
            if queued < low and free >= self.batch:
                # Topped up to twice the low-water mark: one claim then lasts at least as
                # long as the next one takes, however slow the database is just now.
                limit = min(free, 2 * low - queued)
                began = loop.time()
                try:
                    async with self.worker.sessions() as session:
                        # The claim is one statement: committed as it runs, without a BEGIN
                        # and a COMMIT to wait for (round trips, on PostgreSQL).
                        await session.connection(execution_options=AUTOCOMMIT)
                        rows = await store.claim(
                            session,
                            broadcast_id=self.broadcast.id,
                            limit=limit,
                            now=self.worker.clock(),
                        )
                except Exception:
                    logger.exception("claiming outbox rows failed; trying again")
                    await _wait(self.stop, 1.0)
                    continue
                took = loop.time() - began
                self.claim_took = max(took, self.claim_took * CLAIM_FORGET)
                self.claims.add(took)
                if not rows.touched:
                    self.exhausted = True
                    self._kick()
                    return
                self.held += len(rows)
                for row in rows:
                    self.queues.setdefault(row.channel, deque()).append(row)
                self._kick()
            else:
                await self._changed(0.5)

    async def _lane(self, channel: str) -> None:
        """Send one platform's rows, each after a token of its bucket."""
        pacer = self.worker.pacer(channel)
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            queue = self.queues.get(channel)
            if not queue:
                if (
                    self.exhausted
                    and not self.sending
                    and not self.deferred
                    and not any(self.queues.values())
                ):
                    self._kick()
                    return
                await self._changed(0.5)
                continue
            row = queue.popleft()
            last = self.recent.get(row.external_id)
            if last is not None and loop.time() - last < PER_CHAT:
                self._defer(row, PER_CHAT - (loop.time() - last))
                continue
            try:
                await pacer.take()
            except asyncio.CancelledError:
                queue.appendleft(row)
                raise
            if self.stop.is_set():
                queue.appendleft(row)
                return
            self.recent[row.external_id] = loop.time()
            task = asyncio.create_task(self._send(row, pacer))
            self.sending.add(task)
            task.add_done_callback(self._sent)
            if len(self.recent) > 4 * self.window + 1000:
                self._forget(loop.time())

    def _sent(self, task: asyncio.Task[None]) -> None:
        self.sending.discard(task)
        self._kick()

    def _forget(self, now: float) -> None:
        self.recent = {chat: at for chat, at in self.recent.items() if now - at < PER_CHAT}

    def _defer(self, row: store.Claimed, delay: float) -> None:
        def back() -> None:
            if self.deferred.pop(row.id, None) is not None:
                self.queues.setdefault(row.channel, deque()).append(row)
                self._kick()

        handle = asyncio.get_running_loop().call_later(delay, back)
        self.deferred[row.id] = (row, handle)

    async def _send(self, row: store.Claimed, pacer: Pacer) -> None:
        outlet = self.worker.outlets.get(row.channel)
        reply = self.replies.get(row.language) or next(iter(self.replies.values()))
        if outlet is None:
            outcome = Outcome("skipped", error=f"{row.channel} is not set up on the broadcaster")
        else:
            try:
                outcome = await outlet.send(
                    row.external_id, reply, paid=self.broadcast.paid, resume=row.pieces_sent
                )
            except Exception as error:  # an outlet must not raise; if it does, try later
                logger.exception("sending a broadcast message failed unexpectedly")
                outcome = Outcome("retry", error=type(error).__name__)
        if outcome.status == "again":
            # The platform said "too many requests": everything waits, and this row goes
            # first once the pause is over.
            pacer.pause(max(outcome.retry_after, 1.0))
            logger.warning("%s asks to wait %.0f s; all sends paused", row.channel,
                           outcome.retry_after)  # fmt: skip
            resumed = dataclasses.replace(row, pieces_sent=max(row.pieces_sent, outcome.pieces))
            self.queues.setdefault(row.channel, deque()).appendleft(resumed)
            return
        self.done += 1
        if self.worker.metrics is not None:
            self.worker.metrics.broadcast.labels(outcome.status).inc()
        self.results.append(_result(row, outcome, self.worker.clock(), self.worker.backoff))

    def _put_back(self) -> None:
        """Stopping: rows claimed but not sent go back to pending, untouched."""
        for _row, handle in self.deferred.values():
            handle.cancel()
        rows = [row for row, _handle in self.deferred.values()]
        self.deferred.clear()
        for queue in self.queues.values():
            rows += queue
            queue.clear()
        self.results += [
            store.Result(
                row.id, "pending", attempts=row.attempts, error=None, pieces_sent=row.pieces_sent
            )
            for row in rows
        ]

    async def _flusher(self) -> None:
        waited = 0.0
        while not self.closing:
            await asyncio.sleep(FLUSH_EVERY)
            waited += FLUSH_EVERY
            # Recorded together: a batch's worth, or whatever waited long enough.
            if len(self.results) >= self.batch or (self.results and waited >= FLUSH_WAIT):
                await self._flush()
                waited = 0.0
            elif not self.results:
                waited = 0.0

    async def _flush(self) -> None:
        if not self.results:
            return
        batch, self.results = self.results, []
        began = time.monotonic()
        try:
            async with self.worker.sessions() as session:
                # No transaction to open and commit either: each row's update stands alone,
                # and one written again after a failure changes nothing (a settled row is
                # left as it is).
                await session.connection(execution_options=AUTOCOMMIT)
                await store.record(session, results=batch, now=self.worker.clock())
        except Exception:
            # Never dropped: the rows stay in flight until their results are written.
            logger.exception("recording broadcast results failed; trying again")
            self.results = batch + self.results
            await asyncio.sleep(1.0)
            return
        self.records.add(time.monotonic() - began)
        self.held -= len(batch)
        self._kick()

    async def _flush_all(self) -> None:
        for _attempt in range(30):
            if not self.results:
                return
            await self._flush()
        if self.results:
            logger.error("%d broadcast results could not be recorded", len(self.results))

    async def _sharer(self) -> None:
        """Telegram has one overall rate for a bot: what the bots send in answer to people
        (counted in the database by every process, db/sends.py) is taken off this
        broadcast's, down to LEAST_SHARE of it. A paid broadcast has a limit of its own."""
        looks = 1  # the first look was taken before the run began
        while not self.closing and not self.broadcast.paid:
            await _wait(self.stop, SHARE_EVERY)
            await self._share(forget=looks % 30 == 0)
            looks += 1

    async def _share(self, *, forget: bool = False) -> None:
        try:
            async with self.worker.sessions() as session, session.begin():
                answers = await sends.answers_rate(session, channel="telegram")
                if forget:
                    await sends.forget_sent(session, channel="telegram")
        except Exception:
            logger.warning("could not read the answers' rate", exc_info=True)
            answers = 0.0
        pacer = self.worker.pacer("telegram")
        pacer.rate = max(self.rate * LEAST_SHARE, self.rate - answers)

    async def _reporter(self) -> None:
        if self.report is None:
            return
        while True:
            await asyncio.sleep(self.worker.report_every)
            elapsed = time.monotonic() - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            try:
                await self.worker.progress(self.report, self.broadcast.id, rate)
            except Exception:
                logger.exception("updating the progress message failed")


def _result(row: store.Claimed, outcome: Outcome, now: datetime, backoff: float) -> store.Result:
    attempts = row.attempts + 1
    pieces = max(row.pieces_sent, outcome.pieces)
    if outcome.status == "retry":
        if attempts >= MAX_ATTEMPTS:
            error = f"gave up after {attempts} tries: {outcome.error or 'temporary error'}"
            return store.Result(
                row.id, "failed", error=error, attempts=attempts, pieces_sent=pieces
            )
        delay = min(300.0, backoff * 2 ** (attempts - 1)) * random.uniform(1.0, 1.25)  # noqa: S311
        return store.Result(
            row.id, "pending", error=outcome.error, attempts=attempts,
            not_before=now + timedelta(seconds=delay), pieces_sent=pieces,
        )  # fmt: skip
    return store.Result(
        row.id,
        outcome.status,
        message_id=outcome.message_id,
        error=outcome.error,
        attempts=attempts if outcome.status != "skipped" else row.attempts,
        user_id=row.user_id if outcome.status == "blocked" else None,
        pieces_sent=pieces,
    )


# ---------------------------------------------------------------- wiring


def build_worker(app: App, **overrides: Any) -> Worker:
    """The worker for this app: Telegram and Messenger as configured."""
    return _build(
        app.settings,
        app.engine,
        app.conversation.sessions,
        app.translations,
        {"metrics": app.metrics, **overrides},
    )


def _build(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    translations: Translations,
    overrides: dict[str, Any],
) -> Worker:
    outlets: dict[str, Outlet] = {}
    reporter: Reporter | None = None
    if settings.telegram_bot_token is not None:
        from bot.channels.botapi import TelegramOutlet

        connections = window_for(settings.broadcast_paid_rate)
        telegram = TelegramOutlet.from_settings(settings, connections=connections)
        outlets["telegram"] = telegram
        reporter = telegram
    if settings.messenger_enabled:
        from bot.channels.messenger import MessengerOutlet

        outlets["messenger"] = MessengerOutlet(settings)
    values: dict[str, Any] = {
        "sessions": sessions,
        "lease": store.lease_for(engine),
        "translations": translations,
        "outlets": outlets,
        "reporter": reporter,
        "max_rate": settings.broadcast_rate,
        "max_paid_rate": settings.broadcast_paid_rate,
    }
    values.update(overrides)
    return Worker(**values)


@contextlib.asynccontextmanager
async def standalone_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Worker]:
    """A worker in a process of its own (`petitionbot broadcast worker`): the database and
    the catalogs, without the conversation's content (the FAQ, the petition)."""
    from db.migrate import upgrade
    from db.session import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        translations = Translations(settings.locales_dir)
        worker = _build(settings, engine, create_sessionmaker(engine), translations, overrides)
        try:
            yield worker
        finally:
            await worker.close()
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def running_worker(app: App) -> AsyncIterator[Worker]:
    """The broadcaster in the background while the block runs (beside polling or the
    webhook); on the way out it finishes the sends in flight."""
    worker = build_worker(app)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="broadcaster")
    try:
        yield worker
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, STOP_GRACE + 5)
        await worker.close()
