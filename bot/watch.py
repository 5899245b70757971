"""Background duties while the bot serves: signing spikes reported to admins, retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.text import format_number
from db import queries
from db.models import utcnow
from handlers import places

logger = logging.getLogger(__name__)

SPIKE_MINIMUM = 20  # signatures in an hour from one country before anything is unusual
SPIKE_FACTOR = 5.0  # times the country's usual hourly rate
ALERT_EVERY = timedelta(hours=1)  # one alert per country per hour at most
CHECK_EVERY = 300.0  # seconds

Notify = Callable[[str, str], Awaitable[None]]  # (admin's user id, text)


class Watch:
    """Checks that run every few minutes; `check` does one round (tests call it directly)."""

    def __init__(self, app: App, notify: Notify) -> None:
        self.app = app
        self.notify = notify
        self._alerted: dict[str, datetime] = {}

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
            if now - self._alerted.get(country, now - 2 * ALERT_EVERY) < ALERT_EVERY:
                continue
            self._alerted[country] = now
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
        if settings.campaign_closed_on is None:
            return
        due = datetime.combine(settings.campaign_closed_on, datetime.min.time(), tzinfo=UTC)
        due += timedelta(days=settings.retention_days)
        if now < due:
            return
        async with self.app.conversation.sessions() as session, session.begin():
            changed = await queries.anonymise(session, before=now, apply=True)
        if changed:
            logger.warning("retention period over: %d signatures anonymised", changed)

    @contextlib.asynccontextmanager
    async def running(self, every: float = CHECK_EVERY) -> AsyncIterator[None]:
        """Run `check` every few minutes in the background while the block runs."""

        async def loop() -> None:
            while True:
                try:
                    await self.check()
                except Exception:
                    logger.exception("a background check failed; will try again")
                await asyncio.sleep(every)

        task = asyncio.create_task(loop(), name="watch")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
