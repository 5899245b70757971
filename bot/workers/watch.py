"""Background duties while the bot serves: signing spikes reported to admins, retention,
milestones announced, the checkpoint of /stats's figures kept up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.channels.outlet import Notify
from db import alerts, broadcasts, dialect, milestones, queries, stats
from db.models import utcnow
from handlers.reading import places
from words.text import format_number, format_percent_of

logger = logging.getLogger(__name__)

SPIKE_MINIMUM = 20  # signatures in an hour from one country before anything is unusual
SPIKE_FACTOR = 5.0  # times the country's usual hourly rate
ALERT_EVERY = timedelta(hours=1)  # one alert per country per hour at most
CHECK_EVERY = 300.0  # seconds
MILESTONE_EVERY = 12.0  # seconds: admins hear of a milestone moments after it is passed
FIGURES_EVERY = 30.0  # seconds: how often the checkpoint of /stats's figures is looked at


class Watch:
    """Checks that run every few minutes; `check` does one round (tests call it directly)."""

    def __init__(self, app: App, notify: Notify) -> None:
        self.app = app
        self.notify = notify
        self._latest_signature: int | None = None  # at the last milestone count

    async def check(self, now: datetime | None = None) -> list[str]:
        """One round: alerts sent (as country codes) and retention applied when due."""
        now = now or utcnow()
        sent = await self._spikes(now)
        await self._retention(now)
        return sent

    async def _spikes(self, now: datetime) -> list[str]:
        async with self.app.conversation.sessions() as session:
            admins = await queries.all_admins(session, bootstrap=self.app.conversation.admin_ids)
            if not admins:
                return []
            spikes = await queries.signing_spikes(
                session, now=now, minimum=SPIKE_MINIMUM, factor=SPIKE_FACTOR
            )
            languages = await queries.admin_languages(session, channel="telegram", ids=admins)
        sent = []
        for country, count, usual in spikes:
            # Claimed in the database: with several processes watching, one tells.
            async with self.app.conversation.sessions() as session, session.begin():
                mine = await alerts.claim(
                    session, kind="spike", key=country, now=now, every=ALERT_EVERY
                )
            if not mine:
                continue
            logger.warning("signing spike from %s: %d in an hour", country, count)
            for admin, language in languages.items():
                _ = self.app.translations.get(language).gettext
                text = _(
                    "⚠️ Unusual: {count} signatures from {country} in the last hour (usually "
                    "about {usual} an hour). Check them, and if they are fake, set them aside "
                    "with /invalidate country={code} since=…"
                ).format(
                    count=format_number(count, language),
                    country=places.country_name(country, language),
                    usual=format_number(round(usual), language),
                    code=country,
                )
                try:
                    await self.notify(admin, text)
                except Exception:
                    logger.exception("could not alert an admin")
            sent.append(country)
        return sent

    async def _retention(self, now: datetime) -> None:
        settings = self.app.settings
        sessions = self.app.conversation.sessions
        async with sessions() as session, session.begin():
            questions, drafts = await queries.expire(
                session,
                questions_before=now - timedelta(days=settings.question_retention_days),
                drafts_before=now - timedelta(days=settings.draft_retention_days),
            )
            sent = await broadcasts.purge_outbox(
                session, finished_before=now - timedelta(days=settings.outbox_retention_days)
            )
            audited = await queries.purge_audit(
                session, before=now - timedelta(days=settings.audit_retention_days)
            )
        if questions or drafts or sent or audited:
            await dialect.forget_deleted(sessions)
            logger.info(
                "retention: %d questions, %d drafts, %d outbox rows, %d audit entries",
                questions, drafts, sent, audited,
            )  # fmt: skip
        if settings.campaign_closed_on is None:
            return
        due = datetime.combine(settings.campaign_closed_on, datetime.min.time(), tzinfo=UTC)
        due += timedelta(days=settings.retention_days)
        if now < due:
            return
        async with sessions() as session, session.begin():
            changed = await queries.anonymise(session, before=now, apply=True)
        if changed:
            await dialect.forget_deleted(sessions)
            logger.warning("retention period over: %d signatures anonymised", changed)

    async def milestones(self) -> list[int]:
        """One round for milestones: those passed unseen are recorded (signatures committed
        together can each have seen the total just short of one), then those not announced
        yet are claimed and told to the admins. Returns the milestones this round claimed.

        With several workers, each runs this; the claim (an update that only one can make)
        lets exactly one of them tell.
        """
        sessions, goal = self.app.conversation.sessions, self.app.conversation.goal
        async with sessions() as session, session.begin():
            latest = await milestones.latest_signature(session)
            if latest is not None and latest != self._latest_signature:
                # New signatures since the last count (or the first round): count once more.
                await milestones.refresh(session)
                total = await milestones.counted_total(session)
                await milestones.reach(session, total=total, goal=goal)
            pending = await milestones.unannounced(session)
            admins = await queries.all_admins(session, bootstrap=self.app.conversation.admin_ids)
        self._latest_signature = latest
        if not pending or not admins:
            return []  # kept for when someone can be told
        claimed = []
        async with sessions() as session, session.begin():
            for value in pending:
                if await milestones.claim(session, value=value):
                    claimed.append(value)
            total = await milestones.counted_total(session)
            languages = await queries.admin_languages(session, channel="telegram", ids=admins)
        if not claimed:
            return []
        logger.warning("milestone passed: %d signatures", max(claimed))
        for admin, language in languages.items():
            try:
                await self.notify(admin, self._milestone_text(claimed, total, goal, language))
            except Exception:
                logger.exception("could not tell an admin of a milestone")
        return claimed

    async def figures(
        self, now: datetime | None = None, behind: int = stats.CHECKPOINT_BEHIND
    ) -> bool:
        """Take a new checkpoint of /stats's figures when it is due (db/stats.py): counted on
        the read-only connection where there is one, then stored in a short transaction.
        True when one was taken."""
        now = now or utcnow()
        app = self.app
        with_reader = app.conversation.readers or app.conversation.sessions
        async with with_reader() as session:
            checkpoint = await stats.new_checkpoint(session, now=now, behind=behind)
        if checkpoint is None:
            return False
        async with app.conversation.sessions() as session, session.begin():
            await stats.keep(session, checkpoint)
        return True

    def _milestone_text(self, claimed: list[int], total: int, goal: int, language: str) -> str:
        # Milestones passed together (an import, or the first round after an upgrade) make
        # one message, about the goal or else the highest.
        _ = self.app.translations.get(language).gettext
        if goal in claimed:
            return _(
                "🎉 The petition has reached its goal of {goal} signatures! {count} people "
                "have signed so far."
            ).format(goal=format_number(goal, language), count=format_number(total, language))
        return _(
            "🎉 The petition has passed {milestone} signatures: {count} so far, {percent} of "
            "the goal of {goal}."
        ).format(
            milestone=format_number(max(claimed), language),
            count=format_number(total, language),
            percent=format_percent_of(total, goal, language),
            goal=format_number(goal, language),
        )

    @contextlib.asynccontextmanager
    async def running(
        self, every: float = CHECK_EVERY, milestones_every: float = MILESTONE_EVERY
    ) -> AsyncIterator[None]:
        """Run `check` every few minutes and `milestones` every few seconds in the
        background while the block runs."""

        async def loop(check: Callable[[], Awaitable[object]], pause: float) -> None:
            while True:
                try:
                    await check()
                except Exception:
                    logger.exception("a background check failed; will try again")
                await asyncio.sleep(pause)

        tasks = [
            asyncio.create_task(loop(self.check, every), name="watch"),
            asyncio.create_task(loop(self.milestones, milestones_every), name="milestones"),
            asyncio.create_task(loop(self.figures, FIGURES_EVERY), name="figures"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
