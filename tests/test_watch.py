"""Background duties: admins told of a signing spike once an hour; retention applied."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import select

from bot.app import build_app
from bot.config import Settings
from bot.workers.watch import Watch
from db.models import Signature, User, utcnow


async def add_signatures(app: object, country: str, count: int, *, hours_ago: float) -> None:
    sessions = app.conversation.sessions  # type: ignore[attr-defined]
    when = utcnow() - timedelta(hours=hours_ago)
    async with sessions() as session, session.begin():
        for number in range(count):
            user = User(channel="telegram", external_id=f"{country}{hours_ago}-{number}",
                        step="idle", draft={})  # fmt: skip
            session.add(user)
            await session.flush()
            session.add(Signature(
                user_id=user.id, full_name="Someone", country=country, birth_province="12",
                language="en", channel="telegram", created_at=when, updated_at=when,
            ))  # fmt: skip


async def test_a_spike_is_reported_to_admins_once_an_hour(
    make_settings: Callable[..., Settings],
) -> None:
    app = await build_app(make_settings(admin_ids="777"))
    told: list[tuple[str, str]] = []

    async def notify(admin: str, text: str) -> None:
        told.append((admin, text))

    try:
        await add_signatures(app, "FR", 14, hours_ago=50)  # France's usual: a trickle
        await add_signatures(app, "FR", 40, hours_ago=0.2)  # and then forty in an hour
        await add_signatures(app, "US", 10, hours_ago=0.2)  # too few to be unusual
        watch = Watch(app, notify)
        assert await watch.check() == ["FR"]
        [(admin, text)] = told
        assert admin == "777"
        assert "៤០" in text  # the admin never chose a language: Khmer, with Khmer digits
        assert "/invalidate country=FR" in text
        assert await watch.check(utcnow() + timedelta(minutes=30)) == []  # once an hour
        # Another process watching the same database does not tell it again.
        assert await Watch(app, notify).check(utcnow() + timedelta(minutes=30)) == []
        assert len(told) == 1
    finally:
        await app.close()


async def test_names_and_contacts_go_when_the_retention_period_is_over(
    make_settings: Callable[..., Settings],
) -> None:
    app = await build_app(make_settings(campaign_closed_on=date(2020, 1, 1), retention_days=30))

    async def notify(admin: str, text: str) -> None:
        raise AssertionError("no admin to tell")

    try:
        await add_signatures(app, "KH", 3, hours_ago=5)
        await Watch(app, notify).check()
        async with app.conversation.sessions() as session:
            rows = (await session.execute(select(Signature.full_name, Signature.country))).all()
        assert rows == [("(anonymised)", "KH")] * 3
    finally:
        await app.close()
