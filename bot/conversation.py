"""Runs updates through the handlers: in order per person, in a transaction, once.

Updates from different people are handled in batches: one transaction loads everyone's
row (which also lists the ids of their latest updates, so a redelivery is recognised),
runs each handler in turn, writes the changed rows back in one statement and commits once.
Through aiosqlite each trip to the database costs a thread hand-off (a few hundred
microseconds here), so sharing the trips is what lets one SQLite file keep up with a busy
campaign. A handler that fails makes its batch roll back; the batch is then run again one
update at a time, so only the failing update is lost, and its sender is told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.flood import FloodGuard, Verdict
from bot.metrics import Metrics
from db import dialect, queries
from db.models import utcnow
from db.protect import ContactCipher
from handlers import route
from handlers.base import Context, Incoming, Later, Reply
from handlers.reading.content import Content
from words.i18n import Translations

logger = logging.getLogger(__name__)

MAX_BATCH = 64  # large enough to share trips, small enough to keep each transaction short
RECENT_UPDATES = 32  # per person; platforms redeliver within minutes, not 32 messages later
FORGET_AFTER = 0.05  # seconds before replies sent are forgotten in a transaction of their own


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, key: str) -> _Held:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._release_ref(key)
            raise
        return _Held(self, key, lock)

    def _release_ref(self, key: str) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


@dataclass(slots=True)
class _Held:
    owner: KeyedLocks
    key: str
    lock: asyncio.Lock

    def release(self) -> None:
        self.lock.release()
        self.owner._release_ref(self.key)


@dataclass(slots=True)
class _Job:
    channel: str
    user_id: str
    update_key: str | None
    incoming: Incoming
    share_link: Callable[[str], str | None]
    done: asyncio.Future[list[Reply]]
    kept: int | None = None  # the row keeping its replies until they are sent


# What a channel's `deliver` says: True or None when every reply went, False when one failed.
Deliver = Callable[[list[Reply]], Awaitable[bool | None]]


@dataclass(slots=True)
class Conversation:
    """Everything a handler needs, built once by the app factory."""

    sessions: async_sessionmaker[AsyncSession]
    translations: Translations
    content: Content
    goal: int
    admin_ids: frozenset[str] = frozenset()
    cipher: ContactCipher | None = None
    question_days: int = 90  # how long unanswered questions are kept (the privacy notice)
    readers: async_sessionmaker[AsyncSession] | None = None  # long reads (db/session.py)
    metrics: Metrics = field(default_factory=Metrics)
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    flood: FloodGuard = field(default_factory=FloodGuard)
    _languages: dict[str, str] = field(default_factory=dict)
    _queue: list[_Job] = field(default_factory=list)
    _drainer: asyncio.Task[None] | None = None
    _follow_ups: set[asyncio.Task[None]] = field(default_factory=set)
    _sent: list[int] = field(default_factory=list)  # kept replies now sent, to forget
    _forgetter: asyncio.Task[None] | None = None

    async def process(
        self,
        *,
        channel: str,
        user_id: str,
        update_key: str | None,
        incoming: Incoming,
        share_link: Callable[[str], str | None],
        deliver: Deliver | None = None,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Reply]:
        """Answer one update; [] when the same update was already handled.

        Call this before awaiting anything else for the update: the person's turn is taken
        here, in call order. Work that must wait (a platform call) goes in `prepare`, run at
        the start of the turn. `deliver` sends the replies after the commit, still in the
        person's turn, so their answers reach them in the order of their messages.
        """
        key = f"{channel}:{user_id}"
        verdict = self.flood.check(key)
        if verdict is not Verdict.HANDLE:
            # Checked before queueing, so a flood costs neither the database nor other people.
            if verdict is Verdict.DROP:
                return []
            logger.warning("flood limit reached by a user on %s; further updates dropped", channel)
            replies = [self._slow_down(key)]
            if deliver is not None:
                await deliver(replies)
            return replies
        # One update per person at a time, in the order they came; across workers the row
        # lock taken when their row is loaded keeps the same order.
        held = await self.locks(key)
        try:
            if prepare is not None:
                await prepare()
            done: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()
            job = _Job(channel, user_id, update_key, incoming, share_link, done)
            self._queue.append(job)
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.create_task(self._drain(), name="conversation-batches")
            answered = await done
            # A reply with only work to do later (/stats) says nothing now.
            replies = [r for r in answered if r.text or r.attachment is not None]
            if deliver is not None and replies:
                sent = await deliver(replies)
                if sent is not False and job.kept is not None:
                    self._forget_soon(job.kept)
        finally:
            held.release()
        for reply in answered:
            if reply.later is not None:
                self._follow_up(channel, user_id, reply.later, deliver)
        return replies

    def _follow_up(
        self,
        channel: str,
        user_id: str,
        later: Later,
        deliver: Deliver | None,
    ) -> None:
        """Run slow work after the update, in the background; send what it returns."""

        async def run() -> None:
            try:
                replies = await later(self.sessions)
            except Exception:
                logger.exception("follow-up work on %s failed", channel)
                replies = await self._sorry(channel, user_id)
            if deliver is not None and replies:
                try:
                    await deliver(replies)
                except Exception:
                    logger.exception("could not send the follow-up on %s", channel)

        task = asyncio.create_task(run(), name="conversation-follow-up")
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    async def settle(self) -> None:
        """Wait for the follow-up work in progress (tests, and a clean shutdown)."""
        while self._follow_ups:
            await asyncio.gather(*self._follow_ups, return_exceptions=True)
        if self._forgetter is not None:
            await self._forgetter

    def _forget_soon(self, kept: int) -> None:
        """Sent: the kept replies can go. The next batch's transaction forgets them (no extra
        commit while people are busy); when none comes soon, a small one of its own does."""
        self._sent.append(kept)
        if self._forgetter is None or self._forgetter.done():
            self._forgetter = asyncio.create_task(self._forget(), name="conversation-sent")

    async def _forget(self) -> None:
        await asyncio.sleep(FORGET_AFTER)
        if not self._sent:
            return
        sent, self._sent[:] = list(self._sent), []
        try:
            async with self.sessions() as session, session.begin():
                await queries.replies_sent(session, ids=sent)
        except Exception:
            # Kept a day at most; sent again only if the platform redelivers the update.
            logger.exception("could not forget %d replies already sent", len(sent))

    def _slow_down(self, key: str) -> Reply:
        return self._slow_down_in(self._languages.get(key))

    def _slow_down_in(self, language: str | None) -> Reply:
        _ = self.translations.get(language).gettext
        return Reply(_("You are sending messages very fast. Please wait a few seconds."))

    async def close(self) -> None:
        """Let the batch and the follow-up work in progress finish."""
        if self._drainer is not None:
            await self._drainer
        await self.settle()

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue[:] = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        try:
            async with self.sessions() as session, session.begin():
                answers = await self._handle(session, batch)
            if session.info.get(dialect.FORGET):
                await dialect.forget_deleted(self.sessions)
        except Exception:
            if len(batch) > 1:
                # Run them one by one, so only the update that fails is lost.
                for job in batch:
                    await self._run([job])
                return
            logger.exception("update on %s failed; rolled back", batch[0].channel)
            answers = [await self._sorry(batch[0].channel, batch[0].user_id)]
        for job, replies in zip(batch, answers, strict=True):
            if not job.done.done():
                job.done.set_result(replies)

    async def _handle(self, session: AsyncSession, batch: list[_Job]) -> list[list[Reply]]:
        if self._sent:
            # Replies sent since the last batch: forgotten in this batch's transaction.
            sent, self._sent[:] = list(self._sent), []
            await queries.replies_sent(session, ids=sent)
        users = await queries.load_users(
            session, identities=[(job.channel, job.user_id) for job in batch]
        )
        answers: list[list[Reply]] = []
        to_keep: list[tuple[_Job, int, list[Any]]] = []
        for job in batch:
            user = users[(job.channel, job.user_id)]
            if user.blocked and not self._is_admin(job, user):
                # Blocked by an admin: no answer at all, and nothing they send is stored.
                answers.append([])
                continue
            if job.update_key is not None:
                # The update's id is recorded on the person's row, in this same transaction.
                if job.update_key in user.recent_updates:
                    answers.append(await self._again(session, job, user.id))
                    continue
                user.recent_updates = [*user.recent_updates, job.update_key][-RECENT_UPDATES:]
            user.last_seen_at = utcnow()
            verdict, user.burst_started_at, user.burst_count = self.flood.check_burst(
                user.burst_started_at, user.burst_count, user.last_seen_at
            )
            if verdict is not Verdict.HANDLE:
                # Over the limit counted by every process together (see bot/flood.py).
                if verdict is Verdict.WARN:
                    logger.warning(
                        "flood limit reached by a user on %s (all processes)", job.channel
                    )
                answers.append(
                    [self._slow_down_in(user.language)] if verdict is Verdict.WARN else []
                )
                continue
            if user.language:
                # Only for the flood warning's language: a cache, cleared when it grows big.
                if len(self._languages) > 100_000:
                    self._languages.clear()
                self._languages[f"{job.channel}:{job.user_id}"] = user.language
            started = time.perf_counter()
            replies = await route(self._context(session, user, job), job.incoming)
            self.metrics.handling.observe(time.perf_counter() - started)
            self.metrics.updates.labels(job.channel).inc()
            answers.append(replies)
            records = [record for reply in replies if (record := reply.to_record()) is not None]
            if job.update_key is not None and records:
                to_keep.append((job, user.id, records))
        await queries.save_users(session, users=users.values())
        erased = queries.erased_in(session)
        to_keep = [kept for kept in to_keep if kept[1] not in erased]
        if to_keep:
            # Kept with the update, in its transaction: a crash before the send loses nothing.
            ids = await queries.keep_replies(
                session, kept=[(user_id, job.update_key or "", records)
                               for job, user_id, records in to_keep]
            )  # fmt: skip
            for (job, _user_id, _records), kept in zip(to_keep, ids, strict=True):
                job.kept = kept
        return answers

    async def _again(self, session: AsyncSession, job: _Job, user_id: int) -> list[Reply]:
        """A redelivered update: handled before, so not again; but what it had to say and was
        never confirmed sent (the process died in between) is said now."""
        found = await queries.kept_replies(
            session, user_id=user_id, update_key=job.update_key or ""
        )
        if found is None:
            logger.debug("a redelivered update on %s was already answered", job.channel)
            return []
        job.kept, records = found
        logger.info("a redelivered update on %s: its answer is sent now", job.channel)
        return [Reply.from_record(record) for record in records]

    def _is_admin(self, job: _Job, user: queries.UserState) -> bool:
        # ADMIN_IDS and admins added from the chat are Telegram user ids (the console acts as
        # that id); a number that happens to match on another platform is nobody's admin
        # there. An admin is never silenced by a block (one set before they became admin).
        return job.channel in queries.ADMIN_CHANNELS and (
            job.user_id in self.admin_ids or user.admin_row
        )

    def _context(self, session: AsyncSession, user: queries.UserState, job: _Job) -> Context:
        return Context(
            user=user,
            session=session,
            gettext=self.translations.get(user.language).gettext,
            content=self.content,
            goal=self.goal,
            share_link=job.share_link,
            channel=job.channel,
            translator_for=lambda language: self.translations.get(language).gettext,
            is_admin=self._is_admin(job, user),
            admin_ids=self.admin_ids,
            cipher=self.cipher,
            question_days=self.question_days,
            readers=self.readers,
        )

    async def _sorry(self, channel: str, user_id: str) -> list[Reply]:
        # Nothing was written (the transaction rolled back); say so instead of going quiet.
        try:
            async with self.sessions() as session:
                language = await queries.user_language(
                    session, channel=channel, external_id=user_id
                )
        except Exception:
            language = None
        _ = self.translations.get(language).gettext
        return [Reply(_("Sorry, something went wrong on our side. Please try again."))]
