"""The number of signatures counted is kept, not counted again at every signing: whatever
adds, withdraws, erases or sets aside signatures keeps it equal to the signatures
themselves, and what the signer is told comes from it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from bot.app import App
from db import exports, queries
from db.models import Counter, Signature, utcnow
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser
from tests.test_admin import sign


async def kept_and_real(app: App) -> tuple[int, int]:
    async with app.conversation.sessions() as session:
        kept = (
            await session.execute(select(Counter.value).where(Counter.name == queries.COUNTED))
        ).scalar_one()
        real = (
            await session.execute(
                select(func.count(Signature.id)).where(Signature.invalidated_at.is_(None))
            )
        ).scalar_one()
    return kept, real


async def test_every_change_keeps_the_count(
    admin_app: App, people: Callable[[int], FakeUser]
) -> None:
    signers = [people(user_id) for user_id in range(951, 957)]
    for someone in signers:
        await sign(someone)
    assert await kept_and_real(admin_app) == (6, 6)
    await signers[-1].press("rv:ok")  # a second confirm from last week's button: no double
    assert await kept_and_real(admin_app) == (6, 6)

    withdrawing = signers[0]
    await withdrawing.send("/mysignature")
    await withdrawing.press("s:withdraw")
    await withdrawing.press("w:y")
    assert await kept_and_real(admin_app) == (5, 5)

    await signers[1].send("/delete")
    await signers[1].click("Yes, erase everything")
    assert await kept_and_real(admin_app) == (4, 4)

    organiser = people(ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")
    await sign(people(958), "FR")
    await organiser.send("/invalidate country=FR since=2020-01-01")
    await organiser.click("Set them aside")
    assert await kept_and_real(admin_app) == (4, 4)
    await organiser.send("/invalidate country=FR since=2020-01-01")  # none left to set aside
    assert await kept_and_real(admin_app) == (4, 4)

    now = utcnow()
    paper = [
        {"user_id": None, "full_name": f"Paper {n}", "country": "US", "language": "km",
         "birth_province": "12", "region": None, "channel": "paper", "source": "import",
         "created_at": now, "updated_at": now}
        for n in range(3)
    ]  # fmt: skip
    async with admin_app.conversation.sessions() as session, session.begin():
        await exports.add_signatures(session, rows=paper)
    assert await kept_and_real(admin_app) == (7, 7)

    # A set-aside signer who withdraws was not counted: the count stays.
    fr = people(958)
    await fr.send("/mysignature")
    await fr.press("s:withdraw")
    await fr.press("w:y")
    assert await kept_and_real(admin_app) == (7, 7)

    newcomer = people(959)
    await sign(newcomer)
    assert "8 of 10,000 signatures so far" in newcomer.text()
    assert await kept_and_real(admin_app) == (8, 8)
