"""`/stats`: exact figures on a known data set, in English and Khmer, and the chart."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFont, features
from sqlalchemy import insert, select, update

from bot.app import App
from bot.channels import console
from bot.channels.telegram import build_bot, build_dispatcher
from db import queries
from db import stats as db_stats
from db.models import Signature, User, VolunteerCode
from drawings import chart
from handlers.admin import stats
from handlers.base import MESSAGE_LIMIT, Incoming, Reply, split_message
from tests.conftest import ADMIN
from tests.telegram_fakes import FakeUser, RecordingSession

# A fixed clock: the windows (today, 7 and 30 days) and the date shown are exact.
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "utcnow", lambda: NOW)


def _user(
    number: int, step: str = "idle", *, agreed: bool = False, channel: str = "telegram"
) -> dict[str, Any]:
    return {
        "channel": channel, "external_id": str(5000 + number), "language": "km",
        "step": step, "draft": {}, "updates_opt_in": False, "recent_updates": [],
        "blocked": False, "created_at": NOW, "last_seen_at": NOW,
        "agreed_at": NOW - timedelta(days=50) if agreed else None,
    }  # fmt: skip


def _signature(
    user: int | None, country: str, region: str | None, birth: str, language: str, channel: str,
    *, news: bool, code: str | None, when: datetime, aside: bool = False,
) -> dict[str, Any]:  # fmt: skip
    return {
        "user_id": user, "full_name": "Sok Dara", "country": country, "region": region,
        "birth_province": birth, "updates_opt_in": news, "language": language,
        "channel": channel, "source": "chat" if user else "import", "referrer_code": code,
        "created_at": when, "updated_at": when, "invalidated_at": NOW if aside else None,
    }  # fmt: skip


async def seed(app: App, *, admin_language: str) -> None:
    """Eight counted signatures (two imported), one set aside, nine users who have not signed
    (the admin among them)."""
    today = MIDNIGHT + timedelta(hours=9)
    three_days, ten_days, forty_days = (
        MIDNIGHT - timedelta(days=n, hours=-12) for n in (3, 10, 40)
    )
    signers = [_user(1, agreed=True), _user(2, agreed=True), _user(3, agreed=True),
               _user(4, agreed=True), _user(5, agreed=True),
               _user(6),  # signed before agreed_at was recorded: still counts as agreed
               _user(7, agreed=True)]  # fmt: skip
    waiting = [_user(11, "new"), _user(12, "language"), _user(13, "idle"),
               _user(14, "idle", agreed=True), _user(15, "consent"),
               _user(16, "name", agreed=True), _user(17, "country_confirm", agreed=True),
               _user(18, "review", agreed=True)]  # fmt: skip
    admin = {**_user(20, "idle", channel="console"), "external_id": str(ADMIN),
             "language": admin_language}  # fmt: skip
    lb, mine = "lb2027", "sharer1234"
    signatures = [
        _signature(1, "US", "California", "12", "km", "telegram", news=True, code=lb, when=today),
        _signature(2, "US", "California", "12", "km", "telegram", news=False, code=lb, when=today),
        _signature(3, "US", "Texas", "abroad", "en", "telegram", news=True, code=mine,
                   when=three_days),
        _signature(4, "US", None, "03", "en", "messenger", news=False, code=None,
                   when=three_days),
        _signature(5, "FR", "Île-de-France", "abroad", "km", "messenger", news=True, code=lb,
                   when=ten_days),
        _signature(None, "FR", "Île-de-France", "12", "km", "paper", news=False, code=lb,
                   when=ten_days),
        _signature(None, "AU", "Victoria", "12", "km", "paper", news=False, code=None,
                   when=forty_days),
        _signature(6, "KH", "Siem Reap", "17", "km", "telegram", news=True, code=None,
                   when=forty_days),
        # Set aside by an admin: counted nowhere.
        _signature(7, "US", "California", "12", "km", "telegram", news=True, code=lb,
                   when=today, aside=True),
    ]  # fmt: skip
    async with app.conversation.sessions() as session:
        # As signing does, the signers' rows say they have signed.
        signed = [{**row, "signed": True} for row in signers]
        await session.execute(insert(User), [*signed, *waiting, admin])
        # Signatures name their signer by number; the database gave the users their ids.
        rows = await session.execute(select(User.external_id, User.id))
        ids = {external_id: user_id for external_id, user_id in rows}
        for row in signatures:
            if row["user_id"] is not None:
                row["user_id"] = ids[str(5000 + row["user_id"])]
        await session.execute(insert(Signature), signatures)
        await session.execute(
            insert(VolunteerCode),
            [{"code": lb, "name": "Long Beach New Year 2027 & Picnic", "created_by": "shell",
              "created_at": NOW}],
        )  # fmt: skip
        await session.commit()


async def console_stats(app: App) -> list[Reply]:
    """What an admin gets for /stats: counted and drawn after the update, then sent."""
    delivered: list[Reply] = []

    async def deliver(replies: list[Reply]) -> bool:
        delivered.extend(replies)
        return True

    await app.conversation.process(
        channel="console",
        user_id=str(ADMIN),
        update_key=None,
        incoming=Incoming.message("/stats"),
        share_link=lambda code: None,
        deliver=deliver,
    )
    await app.conversation.settle()
    return delivered


ENGLISH = [
    """<b>📊 Petition figures, November 23, 2026</b>
Counted signatures: <b>8</b> of the goal of 10,000 (0.08%)
Today: <b>2</b> · last 7 days: <b>4</b> · last 30 days: <b>6</b>
Want news from the campaign: 4 (50%)
Set aside by an admin, not counted: 1
<i>Days are counted in UTC.</i>""",
    """<b>🌍 Where signers live</b>
• United States: 4 (50%)
• France: 2 (25%)
• Australia: 1 (12%)
• Cambodia: 1 (12%)

<b>📍 Regions in the top countries</b>
• <i>United States</i>: California 2 · Texas 1 · not given 1
• <i>France</i>: Île-de-France 2
• <i>Australia</i>: Victoria 1

<b>🏠 Province of birth</b>
• Phnom Penh: 4 (50%)
• Born outside Cambodia: 2 (25%)
• Kampong Cham: 1 (12%)
• Siemreap: 1 (12%)""",
    """<b>🗣 Language</b>
• Khmer: 6 (75%)
• English: 2 (25%)

<b>📱 Channel</b>
• Telegram: 4 (50%)
• Messenger: 2 (25%)
• On paper: 2 (25%)

<b>✍️ Source</b>
• In the chat: 6 (75%)
• Imported from paper: 2 (25%)

<b>🚦 From the first message to the signature</b>
• Wrote to the bot: 16
• Agreed to the petition text: 11 (69%)
• Signed: 6 (38%)

<b>Not signed yet (9): where they stopped</b>
• Have not chosen a language: 2 (22%)
• Saw the petition, did not start signing: 2 (22%)
• Reading the petition text, not agreed yet: 1 (11%)
• At their name: 1 (11%)
• At their country: 1 (11%)
• Checking their answers, not confirmed: 1 (11%)
• Agreed, then stopped before the end: 1 (11%)

<b>🔗 Top share codes</b>
• <code>lb2027</code> (Long Beach New Year 2027 &amp; Picnic): 4
• <code>sharer1234</code>: 1""",
]


async def test_an_admin_sees_the_exact_figures_and_the_action_is_audited(
    admin_app: App, tmp_path: Path
) -> None:
    await seed(admin_app, admin_language="en")
    replies = await console_stats(admin_app)

    assert [reply.text for reply in replies] == ENGLISH
    assert all(len(reply.text) <= MESSAGE_LIMIT for reply in replies)
    photo = replies[0].attachment
    assert photo is not None
    assert photo.kind == "photo"
    assert photo.filename == "stats.png"
    assert [reply.attachment for reply in replies[1:]] == [None, None]
    async with admin_app.conversation.sessions() as session:
        entry = (await queries.latest_audit(session, limit=1))[0]
    assert (entry.actor, entry.action, entry.detail) == (f"console:{ADMIN}", "stats", {})

    # The console saves the chart beside the text and says where.
    text, _options = console.render(replies, tmp_path)
    saved = tmp_path / "stats.png"
    assert f"[file saved: {saved}]" in text
    assert "Counted signatures: 8 of the goal of 10,000 (0.08%)" in text
    with Image.open(saved) as image:
        assert (image.format, image.size) == ("PNG", (chart.WIDTH, chart.HEIGHT))


async def test_a_khmer_admin_reads_khmer_digits_and_names(admin_app: App) -> None:
    await seed(admin_app, admin_language="km")
    replies = await console_stats(admin_app)

    headline, where, how = (reply.text for reply in replies)
    assert "<b>៨</b>" in headline
    assert "១០,០០០" in headline
    assert "(០.០៨%)" in headline
    assert "<b>២</b>" in headline
    assert "<b>៤</b>" in headline
    assert "<b>៦</b>" in headline
    assert "២៣ វិច្ឆិកា ២០២៦" in headline
    assert "• សហរដ្ឋអាមេរិក៖ ៤ (៥០%)" in where
    assert "• រាជធានីភ្នំពេញ៖ ៤ (៥០%)" in where
    assert "California ២" in where
    # Every figure is in Khmer digits: ASCII digits are left only in share codes and their
    # names (and in the words "last 7 days" while a catalog lacks their Khmer).
    words = re.sub("last (7|30) days", "", headline)
    assert re.search("[0-9]", words) is None
    assert re.search("[0-9]", where) is None
    codes = r"<code>[^<]*</code>( \([^)]*\))?"  # a share code and its volunteer's name
    assert re.search("[0-9]", re.sub(codes, "", how)) is None
    assert "៖ ១៦" in how


async def test_an_empty_campaign_gets_zeros_and_a_chart(admin_app: App) -> None:
    for text in ("/start", "English"):
        await admin_app.conversation.process(
            channel="console", user_id=str(ADMIN), update_key=None,
            incoming=Incoming.message(text), share_link=lambda code: None,
        )  # fmt: skip
    replies = await console_stats(admin_app)

    headline, where, how = (reply.text for reply in replies)
    assert "Counted signatures: <b>0</b> of the goal of 10,000 (0%)" in headline
    assert "Set aside" not in headline
    assert where == "<b>🌍 Where signers live</b>\nNo signatures yet."
    assert how.startswith(
        "<b>🚦 From the first message to the signature</b>\n• Wrote to the bot: 1\n"
    )
    assert "• Agreed to the petition text: 0 (0%)\n• Signed: 0 (0%)" in how
    assert "No signature came through a share code yet." in how
    assert replies[0].attachment is not None
    assert replies[0].attachment.data
    with Image.open(io.BytesIO(replies[0].attachment.data)) as image:
        assert image.size == (chart.WIDTH, chart.HEIGHT)


async def test_long_sections_are_split_between_lines_under_telegrams_limit() -> None:
    lines = [f"• line {number} " + "x" * 90 for number in range(100)]
    messages = split_message(lines)
    assert len(messages) == 3
    assert all(len(message) <= MESSAGE_LIMIT for message in messages)
    assert "\n".join(messages).split("\n") == lines


async def test_khmer_on_the_chart_is_shaped(
    admin_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(admin_app, admin_language="km")
    drawn: list[tuple[str, str]] = []
    render = chart.render

    def spy(data: chart.ChartData, words: chart.ChartText, *, language: str) -> bytes:
        drawn.append((language, words.title))
        return render(data, words, language=language)

    monkeypatch.setattr(chart, "render", spy)
    await console_stats(admin_app)
    if not features.check_feature("raqm"):
        # Without libraqm Khmer cannot be shaped: the chart must be in English instead.
        assert drawn == [("en", "Petition signatures")]
        pytest.skip("libraqm is not available: Khmer shaping cannot be checked here")
    km = admin_app.translations.get("km").gettext
    assert drawn == [("km", km("Petition signatures"))]
    # Shaped, a subscript consonant (coeng) sits under its base and takes no width of its
    # own: the same word is narrower than with the basic (unshaped) layout.
    word = "ហត្ថលេខាលើញត្តិ"
    basic = ImageFont.truetype(str(chart.FONT_FILE), 40, layout_engine=ImageFont.Layout.BASIC)
    shaped = chart.font(40)
    assert isinstance(shaped, ImageFont.FreeTypeFont)
    assert shaped.layout_engine == ImageFont.Layout.RAQM
    assert shaped.getlength(word) < basic.getlength(word)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The languages the charts drawn meanwhile were labelled in."""
    languages: list[str] = []
    render = chart.render

    def spy(data: chart.ChartData, words: chart.ChartText, *, language: str) -> bytes:
        languages.append(language)
        return render(data, words, language=language)

    monkeypatch.setattr(chart, "render", spy)
    return languages


async def test_without_shaping_a_khmer_admin_gets_an_english_chart(
    admin_app: App, monkeypatch: pytest.MonkeyPatch, drawn: list[str]
) -> None:
    await seed(admin_app, admin_language="km")
    monkeypatch.setattr(chart, "khmer_ready", lambda: False)
    replies = await console_stats(admin_app)
    assert drawn == ["en"]
    assert "<b>៨</b>" in replies[0].text  # the text itself stays in Khmer


async def test_a_non_admin_gets_the_unknown_command_answer(admin_app: App) -> None:
    session = RecordingSession()
    bot = build_bot(admin_app.settings, session=session)
    stranger = FakeUser(build_dispatcher(admin_app), bot, session, 888)
    await stranger.send("/stats")

    unknown = admin_app.translations.get("km").gettext
    assert unknown("I don't know that command. Here is what I can do:") in stranger.text()
    assert session.photos() == []
    async with admin_app.conversation.sessions() as db:
        assert await queries.latest_audit(db, limit=1) == []


async def test_an_admin_on_telegram_gets_the_chart_as_a_photo(admin_app: App) -> None:
    await seed(admin_app, admin_language="en")
    session = RecordingSession()
    bot = build_bot(admin_app.settings, session=session)
    organiser = FakeUser(build_dispatcher(admin_app), bot, session, ADMIN)
    await organiser.send("/start")
    await organiser.press("l:en")
    before = len(session.calls)

    await organiser.send("/stats")
    calls = session.calls[before:]
    assert [type(call).__name__ for call in calls] == ["SendPhoto", "SendMessage", "SendMessage"]
    photo = session.photos()[0]
    assert photo.chat_id == ADMIN
    assert photo.caption is not None
    assert photo.caption.startswith("<b>📊 Petition figures")
    assert "Counted signatures: <b>8</b> of the goal of 10,000 (0.08%)" in photo.caption
    upload = photo.photo.data  # type: ignore[union-attr]
    with Image.open(io.BytesIO(upload)) as image:
        assert (image.format, image.size) == ("PNG", (1200, 900))
    assert "🌍 Where signers live" in organiser.text()
    assert "🔗 Top share codes" in organiser.text()


async def test_without_the_khmer_font_the_chart_is_english_and_it_is_logged_once(
    admin_app: App,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    drawn: list[str],
) -> None:
    await seed(admin_app, admin_language="km")
    monkeypatch.setattr(chart, "FONT_FILE", tmp_path / "missing.ttf")
    chart.khmer_ready.cache_clear()
    chart.font.cache_clear()
    try:
        first = await console_stats(admin_app)
        await console_stats(admin_app)
    finally:
        chart.khmer_ready.cache_clear()
        chart.font.cache_clear()
    assert drawn == ["en", "en"]
    said = f"no Khmer font at {tmp_path / 'missing.ttf'}: charts in English"
    if not features.check_feature("raqm"):  # that is found missing first, and said instead
        said = "libraqm is missing (Pillow without raqm/fribidi): charts in English"
    assert [r.message for r in caplog.records if r.name == "drawings.chart"] == [said]
    assert first[0].attachment is not None
    assert first[0].attachment.data is not None
    with Image.open(io.BytesIO(first[0].attachment.data)) as image:
        assert image.size == (chart.WIDTH, chart.HEIGHT)


async def test_beyond_the_top_ten_countries_and_five_regions_the_rest_is_summed(
    admin_app: App,
) -> None:
    await seed(admin_app, admin_language="en")  # US 4, FR 2, AU 1, KH 1: 21 in all here
    when = MIDNIGHT - timedelta(days=2)
    more = [
        _signature(None, "US", region, "12", "en", "paper", news=False, code=None, when=when)
        for region in ("Ohio", "Utah", "Iowa", "Maine")
    ] + [
        _signature(None, country, None, "12", "en", "paper", news=False, code=None, when=when)
        for country in ("BE", "CA", "CH", "DE", "GB", "JP", "KR", "NZ", "TH")
    ]  # fmt: skip
    async with admin_app.conversation.sessions() as session:
        await session.execute(insert(Signature), more)
        await session.commit()

    where = (await console_stats(admin_app))[1].text
    assert "• Cambodia: 1 (4.8%)\n• Other countries (3): 3 (14%)\n" in where
    assert (
        "• <i>United States</i>: California 2 · Iowa 1 · Maine 1 · Ohio 1 · Texas 1 · elsewhere 2\n"
    ) in where


async def test_if_the_chart_cannot_be_drawn_the_figures_still_come(
    admin_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(admin_app, admin_language="en")

    def broken(data: chart.ChartData, words: chart.ChartText, *, language: str) -> bytes:
        raise OSError("unknown file format")

    monkeypatch.setattr(chart, "render", broken)
    replies = await console_stats(admin_app)
    assert [reply.text for reply in replies] == ENGLISH
    assert [reply.attachment for reply in replies] == [None, None, None]


async def test_top_codes_and_days_are_right_with_and_without_signatures_set_aside(
    admin_app: App,
) -> None:
    # Eleven codes with two signatures each, and one with three of which two are set aside:
    # it falls from first to last, and the tenth code must take its place.
    when = MIDNIGHT - timedelta(days=1)
    rows = [
        _signature(None, "US", None, "12", "en", "paper", news=False, code=f"c{number:02}",
                   when=when)
        for number in range(1, 12) for _twice in range(2)
    ] + [
        _signature(None, "FR", "Alsace", "12", "en", "paper", news=False, code="zz",
                   when=when - timedelta(days=5), aside=index < 2)
        for index in range(3)
    ]  # fmt: skip
    async with admin_app.conversation.sessions() as session:
        await session.execute(insert(Signature), rows)
        await session.commit()
        found = await db_stats.figures(session, now=NOW)
        assert found.top_codes == [(f"c{number:02}", None, 2) for number in range(1, 11)]
        assert (found.total, found.set_aside) == (23, 2)
        assert found.by_country == [("US", 22), ("FR", 1)]
        assert found.by_region["FR"] == [("Alsace", 1)]
        assert found.per_day == [(date(2026, 11, 17), 1), (date(2026, 11, 22), 22)]
        assert (found.today, found.week, found.month) == (0, 23, 23)

        await session.execute(update(Signature).values(invalidated_at=None))
        found = await db_stats.figures(session, now=NOW)
        assert found.top_codes[:2] == [("zz", None, 3), ("c01", None, 2)]
        assert (found.total, found.set_aside) == (25, 0)
        assert found.by_country == [("US", 22), ("FR", 3)]
        assert found.per_day == [(date(2026, 11, 17), 3), (date(2026, 11, 22), 22)]


async def test_others_are_answered_while_stats_are_counted(
    admin_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /stats reads every signature (half a second at 100,000): it runs in a transaction of
    # its own, so a signer who writes meanwhile is answered without waiting for it.
    counting, may_finish = asyncio.Event(), asyncio.Event()
    real = stats.figures

    async def slow_figures(*args: Any, **kwargs: Any) -> Any:
        counting.set()
        await may_finish.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(stats, "figures", slow_figures)
    asked = asyncio.create_task(console_stats(admin_app))
    await asyncio.wait_for(counting.wait(), 10)
    signer = await asyncio.wait_for(
        admin_app.conversation.process(
            channel="console", user_id="4242", update_key=None,
            incoming=Incoming.message("/start"), share_link=lambda code: None,
        ),
        10,
    )  # fmt: skip
    assert signer != []
    assert not asked.done()
    may_finish.set()
    replies = await asked
    assert replies[0].text.startswith("<b>📊")
