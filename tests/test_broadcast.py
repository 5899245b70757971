"""Broadcasts, at the data level: who is in an audience, how rows are claimed, recorded and
recovered, and what admins type (filters, times, Telegram HTML).

The helpers here (people written straight into the database, a queued broadcast, the
outbox's states) are shared by the other broadcast tests and by `bench/broadcast.py`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.workers.broadcast import AUTOCOMMIT
from bot.workers.watch import Watch
from db import broadcasts as store
from db.models import AuditEntry, Broadcast, OutboxMessage, Signature, User, utcnow
from db.session import create_engine, create_sessionmaker
from handlers import news
from handlers.admin import audience, broadcasts

# ---------------------------------------------------------------- helpers

TEXT_KM = {"kind": "text", "text": "<b>ព័ត៌មាន</b> ថ្មី"}
TEXT_EN = {"kind": "text", "text": "<b>News</b> from the campaign"}


async def add_person(
    session: AsyncSession,
    external_id: str,
    *,
    channel: str = "telegram",
    language: str | None = "km",
    opted_in: bool = True,
    signed: tuple[str, str | None, str] | None = None,  # (country, region, province)
    blocked: bool = False,
    unreachable_at: datetime | None = None,
    last_seen_at: datetime | None = None,
    invalidated: bool = False,
) -> int:
    """A person (and their signature) written straight into the database; their row id."""
    now = utcnow()
    user = User(
        channel=channel, external_id=external_id, language=language, step="idle", draft={},
        updates_opt_in=opted_in, recent_updates=[], blocked=blocked, created_at=now,
        last_seen_at=last_seen_at or now, unreachable_at=unreachable_at,
    )  # fmt: skip
    session.add(user)
    await session.flush()
    if signed is not None:
        country, region, province = signed
        session.add(
            Signature(
                user_id=user.id,
                full_name="Sok Dara",
                country=country,
                region=region,
                birth_province=province,
                updates_opt_in=opted_in,
                language=language or "km",
                channel=channel,
                created_at=now,
                updated_at=now,
                invalidated_at=now if invalidated else None,
            )
        )
        await session.flush()
    return user.id


async def add_many(app: App, count: int, *, first: int = 10_000, language: str = "km") -> None:
    """`count` opted-in Telegram people (ids first, first+1, ...), in one statement."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"channel": "telegram", "external_id": str(first + n), "language": language,
         "step": "idle", "draft": {}, "updates_opt_in": True, "recent_updates": [],
         "blocked": False, "created_at": now, "last_seen_at": now}
        for n in range(count)
    ]  # fmt: skip
    async with app.conversation.sessions() as session, session.begin():
        for start in range(0, len(rows), 5000):
            await session.execute(insert(User), rows[start : start + 5000])


async def queue_broadcast(
    app: App,
    *,
    versions: dict[str, Any] | None = None,
    audience: store.Audience | None = None,
    at: datetime | None = None,
    rate: float = 25.0,
    paid: bool = False,
    report_chat: str | None = None,
) -> int:
    """A broadcast as the chat or the shell makes it; its id."""
    async with app.conversation.sessions() as session, session.begin():
        return await store.create_broadcast(
            session,
            created_by="test",
            versions=versions or {"km": TEXT_KM, "en": TEXT_EN},
            audience=audience or store.Audience(),
            scheduled_for=at or utcnow() - timedelta(seconds=1),
            rate=rate,
            paid=paid,
            total=0,
            report_channel="telegram" if report_chat else None,
            report_chat=report_chat,
        )


async def outbox(app: App, broadcast_id: int) -> dict[str, tuple[str, str | None]]:
    """external id → (status, error) of every outbox row of a broadcast."""
    async with app.conversation.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.external_id, OutboxMessage.status, OutboxMessage.error).where(
                OutboxMessage.broadcast_id == broadcast_id
            )
        )
        return {external_id: (status, error) for external_id, status, error in rows.all()}


# ---------------------------------------------------------------- audiences

PEOPLE: dict[str, dict[str, Any]] = {
    "ca_km": {"signed": ("US", "California", "02")},
    "wa_en": {"language": "en", "signed": ("US", "Washington", "12")},
    "fr_km": {"signed": ("FR", None, "17")},
    "fan_en": {"language": "en"},  # opted in without signing
    "quiet": {"opted_in": False, "signed": ("US", "California", "02")},
    "spammer": {"blocked": True, "signed": ("US", "California", "02")},
    "gone": {"signed": ("US", "Massachusetts", "02"), "unreachable": "after"},
    "back": {"signed": ("KH", "Phnom Penh", "abroad"), "unreachable": "before"},
    "fb_en": {"channel": "messenger", "language": "en", "signed": ("US", "california", "02")},
    "console": {"channel": "console"},
    "fake": {"signed": ("US", "California", "02"), "invalidated": True},
}


async def seed(app: App) -> dict[int, str]:
    """The people above; row id → name."""
    now = utcnow()
    names = {}
    async with app.conversation.sessions() as session, session.begin():
        for name, traits in PEOPLE.items():
            values = {key: value for key, value in traits.items() if key != "unreachable"}
            if traits.get("unreachable") == "after":  # blocked the bot after writing
                values["last_seen_at"] = now - timedelta(days=2)
                values["unreachable_at"] = now - timedelta(days=1)
            elif traits.get("unreachable") == "before":  # and wrote again since
                values["last_seen_at"] = now - timedelta(hours=1)
                values["unreachable_at"] = now - timedelta(days=1)
            names[await add_person(session, name, **values)] = name
    return names


async def matching(app: App, audience: store.Audience) -> set[str]:
    """Who the outbox of a broadcast to `audience` holds (and the count agrees)."""
    async with app.conversation.sessions() as session:
        counted = await store.count_audience(session, audience=audience)
    broadcast_id = await queue_broadcast(app, audience=audience)
    async with app.conversation.sessions() as session, session.begin():
        assert await store.start_due(session, now=utcnow()) == [broadcast_id]
    rows = await outbox(app, broadcast_id)
    assert sum(counted.values()) == len(rows)
    return set(rows)


async def test_audiences_hold_exactly_the_right_people(app: App) -> None:
    await seed(app)
    signers = {"ca_km", "wa_en", "fr_km", "back", "fb_en"}
    everyone = signers | {"fan_en", "fake"}  # a set-aside signature still wants news
    assert await matching(app, store.Audience()) == everyone
    assert await matching(app, store.Audience(signers_only=True)) == signers
    assert await matching(app, store.Audience(languages=("km",))) == {
        "ca_km", "fr_km", "back", "fake"}  # fmt: skip
    assert await matching(app, store.Audience(languages=("en",), signers_only=True)) == {
        "wa_en", "fb_en"}  # fmt: skip
    regions = (("US", "California"), ("US", "Washington"), ("US", "Massachusetts"))
    assert await matching(app, store.Audience(regions=regions)) == {"ca_km", "wa_en", "fb_en"}
    assert await matching(app, store.Audience(countries=("FR",))) == {"fr_km"}
    assert await matching(
        app, store.Audience(countries=("FR",), regions=(("US", "CALIFORNIA"),))
    ) == {"fr_km", "ca_km", "fb_en"}
    assert await matching(app, store.Audience(provinces=("02",))) == {"ca_km", "fb_en"}
    assert await matching(app, store.Audience(provinces=("abroad",))) == {"back"}
    assert await matching(app, store.Audience(countries=("US",), languages=("km",))) == {
        "ca_km"}  # fmt: skip


async def test_each_recipient_gets_their_language_or_the_only_version(app: App) -> None:
    await seed(app)
    both = await queue_broadcast(app)
    english_only = await queue_broadcast(app, versions={"en": TEXT_EN})
    async with app.conversation.sessions() as session, session.begin():
        assert await store.start_due(session, now=utcnow()) == [both, english_only]
    async with app.conversation.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.broadcast_id, OutboxMessage.external_id, OutboxMessage.language)
        )
        languages = {(b, name): language for b, name, language in rows.all()}
    assert languages[(both, "ca_km")] == "km"
    assert languages[(both, "wa_en")] == "en"
    assert languages[(english_only, "ca_km")] == "en"
    assert news.version_for({"km": TEXT_KM}, "en") == "km"


async def test_a_scheduled_broadcast_starts_once_and_only_when_due(app: App) -> None:
    await seed(app)
    at = datetime(2027, 4, 14, 1, 0, tzinfo=UTC)
    broadcast_id = await queue_broadcast(app, at=at)
    async with app.conversation.sessions() as session, session.begin():
        assert await store.start_due(session, now=at - timedelta(seconds=1)) == []
    async with app.conversation.sessions() as session, session.begin():
        assert await store.start_due(session, now=at) == [broadcast_id]
        assert await store.start_due(session, now=at) == []  # started once
    found = await outbox(app, broadcast_id)
    assert len(found) == 7
    assert {status for status, _error in found.values()} == {"pending"}


# ---------------------------------------------------------------- claims, results, crashes


async def started(app: App, **options: Any) -> int:
    broadcast_id = await queue_broadcast(app, **options)
    async with app.conversation.sessions() as session, session.begin():
        await store.start_due(session, now=utcnow())
    return broadcast_id


async def test_two_workers_claiming_at_once_never_take_the_same_row(
    app: App, database_url: str
) -> None:
    await add_many(app, 300)
    broadcast_id = await started(app)
    # A second process: its own engine and connection on the same database.
    other = create_engine(database_url)
    others = create_sessionmaker(other)

    async def claims(sessions: Any) -> list[int]:
        taken: list[int] = []
        while True:
            async with sessions() as session, session.begin():
                rows = await store.claim(session, broadcast_id=broadcast_id, limit=7, now=utcnow())
            if not rows:
                return taken
            taken += [row.id for row in rows]
            await asyncio.sleep(0)

    try:
        mine, theirs = await asyncio.gather(claims(app.conversation.sessions), claims(others))
    finally:
        await other.dispose()
    assert len(mine) + len(theirs) == 300
    assert not set(mine) & set(theirs)
    assert mine  # both took some
    assert theirs


async def test_people_who_opted_out_meanwhile_are_skipped_not_sent(app: App) -> None:
    names = await seed(app)
    broadcast_id = await started(app)
    ids = {name: user_id for user_id, name in names.items()}
    hours_ago = utcnow() - timedelta(hours=30)
    async with app.conversation.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == ids["ca_km"]).values(updates_opt_in=False)
        )
        await session.execute(
            update(User).where(User.id == ids["fb_en"]).values(last_seen_at=hours_ago)
        )
        claimed = await store.claim(session, broadcast_id=broadcast_id, limit=100, now=utcnow())
    assert {row.external_id for row in claimed} == {"wa_en", "fr_km", "fan_en", "back", "fake"}
    rows = await outbox(app, broadcast_id)
    assert rows["ca_km"] == ("skipped", store.OPTED_OUT)
    assert rows["fb_en"] == ("skipped", store.OUTSIDE_WINDOW)


async def test_rows_in_flight_at_a_crash_become_unknown_and_are_never_claimed_again(
    app: App,
) -> None:
    await add_many(app, 20)
    broadcast_id = await started(app)
    now = utcnow()
    async with app.conversation.sessions() as session, session.begin():
        first = await store.claim(session, broadcast_id=broadcast_id, limit=5, now=now)
        await store.record(
            session,
            results=[
                store.Result(first[0].id, "sent", message_id="1", attempts=1),
                store.Result(
                    first[1].id,
                    "pending",
                    error="Bad Gateway",
                    attempts=1,
                    not_before=now + timedelta(seconds=30),
                ),
            ],
            now=now,
        )
    # The worker dies here, with three rows in flight; the next one recovers them.
    async with app.conversation.sessions() as session, session.begin():
        assert await store.recover(session, now=now) == {broadcast_id: 3}
        rest = await store.claim(session, broadcast_id=broadcast_id, limit=100, now=now)
    claimed = {row.id for row in rest}
    assert len(claimed) == 15
    assert not claimed & {row.id for row in first}  # neither the sent nor the unknown ones
    async with app.conversation.sessions() as session, session.begin():
        later = await store.claim(
            session, broadcast_id=broadcast_id, limit=100, now=now + timedelta(seconds=31)
        )
        assert [row.id for row in later] == [first[1].id]  # the retry, once due
        numbers = (await store.figures(session, ids=[broadcast_id]))[broadcast_id]
    assert (numbers.sent, numbers.unknown, numbers.sending) == (1, 3, 16)


async def test_results_written_again_change_nothing(app: App) -> None:
    """The worker writes results without a transaction, and after a failure writes the same
    ones again: rows the first write settled (sent, blocked, or back to pending for a retry)
    are left as they are."""
    await add_many(app, 4)
    broadcast_id = await started(app)
    now = utcnow()
    async with app.conversation.sessions() as session:
        await session.connection(execution_options=AUTOCOMMIT)
        sent, retry, blocked, sending = await store.claim(
            session, broadcast_id=broadcast_id, limit=4, now=now
        )
    results = [
        store.Result(sent.id, "sent", message_id="7", attempts=1),
        store.Result(retry.id, "pending", error="Bad Gateway", attempts=1,
                     not_before=now + timedelta(seconds=30)),
        store.Result(blocked.id, "blocked", error="Forbidden", attempts=1,
                     user_id=blocked.user_id),
    ]  # fmt: skip
    for moment in (now, now + timedelta(seconds=1)):
        async with app.conversation.sessions() as session:
            await session.connection(execution_options=AUTOCOMMIT)
            await store.record(session, results=results, now=moment)
    async with app.conversation.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.attempts,
                   OutboxMessage.updated_at)
            .where(OutboxMessage.broadcast_id == broadcast_id)
        )  # fmt: skip
        found = {row.id: (row.status, row.attempts, store.as_utc(row.updated_at)) for row in rows}
    assert found == {
        sent.id: ("sent", 1, now),
        retry.id: ("pending", 1, now),
        blocked.id: ("blocked", 1, now),
        sending.id: ("sending", 0, now),
    }


async def test_a_cancelled_broadcast_skips_what_is_left(app: App) -> None:
    await add_many(app, 10)
    broadcast_id = await started(app)
    async with app.conversation.sessions() as session, session.begin():
        await store.claim(session, broadcast_id=broadcast_id, limit=4, now=utcnow())
        assert await store.cancel_broadcast(session, broadcast_id=broadcast_id, now=utcnow())
        assert not await store.cancel_broadcast(session, broadcast_id=broadcast_id, now=utcnow())
        assert await store.claim(session, broadcast_id=broadcast_id, limit=9, now=utcnow()) == []
        numbers = (await store.figures(session, ids=[broadcast_id]))[broadcast_id]
    assert (numbers.sending, numbers.skipped, numbers.pending) == (4, 6, 0)


async def test_a_person_who_blocked_the_bot_is_opted_out_everywhere(app: App) -> None:
    async with app.conversation.sessions() as session, session.begin():
        user_id = await add_person(session, "77", signed=("US", None, "02"))
        assert await store.mark_unreachable(
            session, channel="telegram", external_id="77", now=utcnow()
        )
        assert not await store.mark_unreachable(
            session, channel="telegram", external_id="78", now=utcnow()
        )
    async with app.conversation.sessions() as session:
        user = await session.get(User, user_id)
        signature = (await session.execute(select(Signature))).scalar_one()
        assert await store.count_audience(session, audience=store.Audience()) == {}
    assert user is not None
    assert (user.updates_opt_in, user.unreachable_at is not None) == (False, True)
    assert signature.updates_opt_in is False


# ---------------------------------------------------------------- what admins type


def test_typed_filters_are_read_or_refused_with_the_part_at_fault() -> None:
    empty = store.Audience()
    found = audience.parse_audience(
        "country=US region=California, Washington State,massachusetts", empty
    )
    assert found == store.Audience(
        regions=(("US", "California"), ("US", "Washington"), ("US", "Massachusetts"))
    )
    found = audience.parse_audience("province=Battambang,សៀមរាប signers language=km", empty)
    assert found == store.Audience(languages=("km",), provinces=("02", "17"), signers_only=True)
    found = audience.parse_audience("countries=France,Australia", found)  # type: ignore[arg-type]
    assert isinstance(found, store.Audience)
    assert found.countries == ("FR", "AU")
    assert found.provinces == ("02", "17")  # other filters stay
    assert audience.parse_audience("country=Narnia", empty) == (audience.NO_COUNTRY, "Narnia")
    assert audience.parse_audience("region=Texas", empty) == (audience.ONE_COUNTRY, "")
    assert audience.parse_audience("language=fr", empty) == (audience.NO_LANGUAGE, "fr")
    assert audience.parse_audience("hello there", empty) == (
        audience.UNREADABLE, "hello there")  # fmt: skip
    assert audience.parse_audience("colour=red", empty) == (audience.UNREADABLE, "colour=red")


def test_times_are_read_in_their_zone() -> None:
    expected = datetime(2027, 4, 14, 1, 0, tzinfo=UTC)
    assert audience.parse_when("2027-04-14 08:00 Asia/Phnom_Penh") == (
        expected, "Asia/Phnom_Penh")  # fmt: skip
    assert audience.parse_when("២០២៧-០៤-១៤ ០៨:០០") == (expected, "Asia/Phnom_Penh")
    assert audience.parse_when("2027-04-13 18:00 America/Los_Angeles") == (
        datetime(2027, 4, 14, 1, 0, tzinfo=UTC), "America/Los_Angeles")  # fmt: skip
    assert audience.parse_when("2027-04-14 08:00 Mars/Olympus") is None
    assert audience.parse_when("2027-02-30 08:00") is None
    assert audience.parse_when("tomorrow morning") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('<b>Hello</b> <i>world</i> <a href="https://x.org">link</a>', None),
        ("Q&amp;A", None),
        ("Q&A", "write & as &amp;"),
        ("<b>bold", "<b> is never closed"),
        ("<b><i>x</b></i>", "</b> closes a tag that is not open"),
        ("<script>x</script>", "<script> is not a tag Telegram knows"),
        ("1 < 2", "write < as &lt;"),
        ("x" * 4097, "4097 characters; Telegram allows 4096"),
    ],
)
def test_shell_texts_are_checked_as_telegram_html(text: str, problem: str | None) -> None:
    found = broadcasts.check_html(text, limit=4096)
    assert found == problem if problem is None else found is not None and problem in found


async def test_retention_purges_who_got_old_news_and_old_audit_but_keeps_the_figures(
    app: App,
) -> None:
    """Who got which news is personal data too: 90 days after a broadcast finished its
    outbox rows go (its figures stay for /broadcasts), and admin actions after two years."""
    await add_many(app, 6)
    old, recent = await started(app), await started(app)
    now = utcnow()
    async with app.conversation.sessions() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.broadcast_id == old).values(status="sent")
        )
        for broadcast_id, days in ((old, 100), (recent, 10)):
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .values(status="done", finished_at=now - timedelta(days=days))
            )
        for days in (800, 5):
            session.add(
                AuditEntry(actor="telegram:777", action="stats", detail={},
                           at=now - timedelta(days=days))
            )  # fmt: skip
        before = await store.figures(session, ids=[old, recent])

    async def notify(_admin: str, _text: str) -> None:
        raise AssertionError("nothing to tell")

    await Watch(app, notify).check(now)
    async with app.conversation.sessions() as session:
        left = await session.execute(
            select(OutboxMessage.broadcast_id, func.count()).group_by(OutboxMessage.broadcast_id)
        )
        assert dict(left.all()) == {recent: 6}
        assert await store.figures(session, ids=[old, recent]) == before
        assert before[old].sent == 6
        ages = (await session.execute(select(AuditEntry.at))).scalars().all()
        assert [(now - at.replace(tzinfo=at.tzinfo or UTC)).days for at in ages] == [5]
