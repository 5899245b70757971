"""/stats counts from a checkpoint and the signatures added after it: whatever adds,
changes, withdraws, erases, anonymises or sets aside signatures, the figures are those of a
count of every signature, and those who have not signed are found by their row's mark."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.app import App
from bot.workers.watch import Watch
from db import exports, queries, stats
from db.models import Signature, StatsCheckpoint, User, utcnow
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser
from tests.test_admin import sign


async def _quiet(_admin: int, _text: str) -> None:
    return None


async def checkpoint_taken(app: App) -> None:
    """A checkpoint over every signature so far (as the watch takes them a minute later)."""
    later = utcnow() + timedelta(minutes=2)
    assert await Watch(app, _quiet).figures(now=later, behind=0)


async def figures_and_truth(app: App) -> tuple[stats.Figures, stats.Figures, bool]:
    """What /stats shows, what a count of every signature gives, and whether the checkpoint
    was used."""
    now = utcnow()
    async with app.conversation.sessions() as session:
        used = await stats._from_checkpoint(session) is not None
        shown = await stats.figures(session, now=now)
        truth = await stats._figures(session, await stats._tally(session), now=now)
    return shown, truth, used


async def test_the_figures_stay_exact_whatever_happens_to_the_signatures(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    signers = [people(user_id) for user_id in range(971, 977)]
    for someone, country in zip(signers, ["US", "US", "FR", "AU", "KH", "US"], strict=True):
        await sign(someone, country)
    await checkpoint_taken(admin_app)
    shown, truth, used = await figures_and_truth(admin_app)
    assert used
    assert shown == truth
    assert shown.total == 6

    # Signatures added after the checkpoint are counted from their ids.
    await sign(people(977), "NZ")
    shown, truth, used = await figures_and_truth(admin_app)
    assert used
    assert shown == truth
    assert shown.total == 7
    assert ("NZ", 1) in shown.by_country

    # Each change below is made the way the bot makes it, and each makes the checkpoint
    # stale (the counter moves), so the figures are counted in full until the next one.
    withdrawing = signers[0]
    await withdrawing.send("/mysignature")
    await withdrawing.press("s:withdraw")
    await withdrawing.press("w:y")
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert shown.total == 6
    await checkpoint_taken(admin_app)

    await signers[1].send("/delete")
    await signers[1].click("Yes, erase everything")
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert shown.total == 5
    await checkpoint_taken(admin_app)

    organiser = people(ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")
    await organiser.send("/invalidate country=FR since=2020-01-01")
    await organiser.click("Set them aside")
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert shown.set_aside == 1
    assert shown.total == 4
    await checkpoint_taken(admin_app)

    # News asked for from the chat, after signing without.
    before = shown.opted_in
    await signers[3].press("n:on")
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert shown.opted_in == before + 1
    await checkpoint_taken(admin_app)

    # A change made by code that forgets to say so is caught all the same: the counter is
    # moved by the statement itself, whoever sends it.
    async with admin_app.conversation.sessions() as session, session.begin():
        await session.execute(
            update(Signature).where(Signature.country == "KH").values(country="TH")
        )
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert ("TH", 1) in shown.by_country
    await checkpoint_taken(admin_app)

    # Paper signatures come in with new ids: counted after the checkpoint.
    now = utcnow()
    paper = [
        {"user_id": None, "full_name": f"Paper {n}", "country": "CA", "language": "km",
         "birth_province": "12", "region": None, "channel": "paper", "source": "import",
         "created_at": now - timedelta(days=400), "updated_at": now}
        for n in range(3)
    ]  # fmt: skip
    async with admin_app.conversation.sessions() as session, session.begin():
        await exports.add_signatures(session, rows=paper)
    shown, truth, used = await figures_and_truth(admin_app)
    assert used
    assert shown == truth
    assert ("CA", 3) in shown.by_country

    # Past the end of retention, everything is anonymised: the figures stay.
    async with admin_app.conversation.sessions() as session, session.begin():
        await queries.anonymise(session, before=utcnow() + timedelta(days=1), apply=True)
    shown, truth, used = await figures_and_truth(admin_app)
    assert not used
    assert shown == truth
    assert shown.total == truth.total == 7


async def test_a_checkpoint_leaves_out_the_last_minute_and_the_watch_takes_it_when_due(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    for user_id in (981, 982):
        await sign(people(user_id))
    watch = Watch(admin_app, _quiet)
    # The two signatures are seconds old: the checkpoint stops before them (on PostgreSQL a
    # signature of the last minute may still wait for its commit behind a later one).
    assert await watch.figures(behind=0)
    async with admin_app.conversation.sessions() as session:
        kept = (await session.execute(select(StatsCheckpoint))).scalar_one()
        assert kept.through_id == 0
    # Not due again until more than `behind` signatures came after it.
    assert not await watch.figures(now=utcnow() + timedelta(minutes=2))
    assert await watch.figures(now=utcnow() + timedelta(minutes=2), behind=1)
    async with admin_app.conversation.sessions() as session:
        kept = (await session.execute(select(StatsCheckpoint))).scalar_one()
        latest = (await session.execute(select(func.max(Signature.id)))).scalar_one()
        assert kept.through_id == latest
    shown, truth, used = await figures_and_truth(admin_app)
    assert used
    assert shown == truth
    assert shown.total == 2


async def test_who_has_signed_is_marked_on_their_row(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    async def marked() -> dict[str, bool]:
        async with admin_app.conversation.sessions() as session:
            rows = await session.execute(select(User.external_id, User.signed))
            return {external_id: signed for external_id, signed in rows}

    someone = people(991)
    await someone.send("/start")
    await someone.press("l:en")
    assert (await marked())["991"] is False
    await sign(someone)
    assert (await marked())["991"] is True
    shown, truth, _ = await figures_and_truth(admin_app)
    assert shown.funnel == truth.funnel
    assert shown.funnel.signed == 1
    await someone.send("/mysignature")
    await someone.press("s:withdraw")
    await someone.press("w:y")
    assert (await marked())["991"] is False
    shown, _, _ = await figures_and_truth(admin_app)
    assert shown.funnel.signed == 0
    assert sum(n for _, _, n in shown.funnel.stops) == 1
