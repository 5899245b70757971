"""The signing flow through the real dispatcher, as a person on Telegram sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from db.models import Signature, User
from handlers.reading import places
from tests.telegram_fakes import BOT_USERNAME, FakeUser, RecordingSession

Person = Callable[..., FakeUser]


def opened(app: App, token: str | None) -> str | None:
    """A contact detail as the signer gave it (the database holds it encrypted)."""
    assert app.conversation.cipher is not None
    assert token is not None
    assert "@" not in token
    assert "+" not in token
    return app.conversation.cipher.open(token)


def translator(app: App, language: str) -> Callable[[str], str]:
    return app.translations.get(language).gettext


async def signatures(app: App) -> list[Signature]:
    async with app.conversation.sessions() as session:
        return list((await session.execute(select(Signature).order_by(Signature.id))).scalars())


async def user_row(app: App, user_id: int) -> User:
    async with app.conversation.sessions() as session:
        query = select(User).where(User.channel == "telegram", User.external_id == str(user_id))
        return (await session.execute(query)).scalar_one()


async def sign_up_to_name(
    app: App, someone: FakeUser, language: str = "en"
) -> Callable[[str], str]:
    _ = translator(app, language)
    await someone.send("/start")
    await someone.press(f"l:{language}")
    await someone.click(_("✍️ Sign the petition"))
    await someone.click(_("✅ I agree"))
    return _


async def test_signs_the_petition_in_khmer(app: App, person: Person) -> None:
    km = translator(app, "km")
    someone = person(1001)

    await someone.send("/start")
    assert set(someone.buttons()) == {"ភាសាខ្មែរ", "English"}
    assert km("Please choose your language.") in someone.text()

    await someone.click("ភាសាខ្មែរ")
    assert app.conversation.content.petition("km").title in someone.text()
    await someone.click(km("✍️ Sign the petition"))
    assert {km("✅ I agree"), km("No, thank you")} == set(someone.buttons())
    await someone.click(km("✅ I agree"))
    # A Khmer keyboard puts zero-width spaces between words; they are not stored.
    await someone.send("សុខ\u200bសុភា")
    await someone.click(places.country_name("US", "km"))
    await someone.send("Washington State")
    await someone.click("សៀមរាប")
    assert km("📱 Share my phone number") in someone.keyboard()
    await someone.share_contact("85512345678")
    await someone.click(km("Yes, please"))
    review = someone.text()
    assert "សុខសុភា" in review
    assert "Washington" in review
    assert "សៀមរាប" in review
    await someone.click(km("✅ Confirm and sign"))

    thanks = someone.text()
    assert km("Thank you, {name}! Your signature is recorded.").format(name="សុខសុភា") in thanks
    assert km("You are signer number {number}.").format(number="១") in thanks
    assert f"https://t.me/{BOT_USERNAME}?start=" in thanks
    assert "១០,០០០" in thanks  # the goal, in Khmer digits

    [signature] = await signatures(app)
    assert (signature.full_name, signature.country, signature.region) == (
        "សុខសុភា",
        "US",
        "Washington",
    )
    assert (signature.birth_province, opened(app, signature.phone), signature.email) == (
        "17",
        "+85512345678",
        None,
    )
    assert (signature.language, signature.channel, signature.source) == ("km", "telegram", "chat")
    assert signature.updates_opt_in is True


async def test_signs_in_english_typing_a_country_and_changing_an_answer(
    app: App, person: Person
) -> None:
    someone = person(1002)
    _ = await sign_up_to_name(app, someone)
    await someone.send("Jean-Pierre Sok")
    await someone.click(_("Another country"))
    await someone.send("Frnace")  # a typo still finds the country, to be confirmed
    assert "France" in someone.buttons()
    await someone.click("France")
    await someone.click(_("Skip"))
    await someone.send("battambong")  # a typed province, misspelt
    await someone.send("sok@example.org")
    await someone.click(_("No, thank you"))
    assert "Jean-Pierre Sok" in someone.text()

    await someone.click(_("✏️ Change an answer"))
    await someone.click(_("Name"))
    await someone.send("Sok Jean-Pierre")
    assert _("Please check your answers:") in someone.text()
    assert "Sok Jean-Pierre" in someone.text()
    await someone.click(_("✅ Confirm and sign"))

    assert _("You are signer number {number}.").format(number="1") in someone.text()
    [signature] = await signatures(app)
    assert signature.full_name == "Sok Jean-Pierre"
    assert (signature.country, signature.region, signature.birth_province) == ("FR", None, "02")
    assert (opened(app, signature.email), signature.updates_opt_in, signature.language) == (
        "sok@example.org", False, "en",
    )  # fmt: skip


async def finish(someone: FakeUser, _: Callable[[str], str], name: str = "Sok Dara") -> None:
    await someone.send(name)
    await someone.press("co:US")
    await someone.press("r:skip")
    await someone.press("b:12")
    await someone.press("ct:skip")
    await someone.press("u:n")
    await someone.click(_("✅ Confirm and sign"))


async def test_a_share_link_counts_the_new_signer_to_the_referrer(app: App, person: Person) -> None:
    first = person(2001)
    _ = await sign_up_to_name(app, first)
    await finish(first, _)
    code = (await user_row(app, 2001)).share_code
    assert code
    assert f"?start={code}" in first.text()

    friend = person(2002)
    await friend.send(f"/start {code}")
    await friend.press("l:en")
    await friend.click(_("✍️ Sign the petition"))
    await friend.click(_("✅ I agree"))
    await finish(friend, _, "Chan Sophal")
    assert _("You are signer number {number}.").format(number="2") in friend.text()
    assert "2 of 10,000 signatures so far (0.02%)." in friend.text()
    referred = [s for s in await signatures(app) if s.referrer_code == code]
    assert len(referred) == 1
    assert referred[0].full_name == "Chan Sophal"


async def test_a_double_tapped_confirm_signs_once(app: App, person: Person) -> None:
    someone = person(3001)
    _ = await sign_up_to_name(app, someone)
    await someone.send("Sok Dara")
    for payload in ("co:US", "r:skip", "b:12", "ct:skip", "u:n"):
        await someone.press(payload)
    await someone.press("rv:ok")
    await someone.press("rv:ok")  # the second tap of a double tap
    assert _("That button is from an earlier message.") in someone.text()
    assert len(await signatures(app)) == 1


async def test_a_redelivered_update_is_answered_once(app: App, person: Person) -> None:
    someone = person(3002)
    update = someone.text_update("/start")
    assert await someone.send_update(update)
    assert await someone.send_update(update) == []


async def test_a_restart_mid_flow_resumes_at_the_same_step(
    app: App, person: Person, session: RecordingSession
) -> None:
    someone = person(4001)
    _ = await sign_up_to_name(app, someone)
    await someone.send("Sok Dara")
    await someone.press("co:CA")

    # A new process on the same database: new app, dispatcher and bot.
    restarted = await build_app(app.settings)
    try:
        bot = build_bot(restarted.settings, session=session)
        again = FakeUser(build_dispatcher(restarted), bot, session, 4001)
        await again.send("Ontario")
        assert _("In which province of Cambodia were you born?") in again.text()
        await again.press("b:21")
        await again.press("ct:skip")
        await again.press("u:y")
        assert "Ontario" in again.text()
        assert "Sok Dara" in again.text()
        await again.press("rv:ok")
        [signature] = await signatures(restarted)
        assert (signature.country, signature.region, signature.birth_province) == (
            "CA",
            "Ontario",
            "21",
        )
    finally:
        await restarted.close()


async def test_language_changes_mid_flow_and_the_next_reply_uses_it(
    app: App, person: Person
) -> None:
    km = translator(app, "km")
    someone = person(5001)
    await sign_up_to_name(app, someone)
    await someone.send("/language")
    await someone.click("ភាសាខ្មែរ")
    assert km("From now on I will write in English.") in someone.text()
    # The pending question is asked again, now in Khmer.
    assert km("What is your full name? Please type it in Khmer or Latin letters.") in someone.text()
    await someone.send("Sok Dara")
    assert km("Which country do you live in now?") in someone.text()


async def test_cancel_mid_flow_saves_nothing(app: App, person: Person) -> None:
    someone = person(5002)
    _ = await sign_up_to_name(app, someone)
    await someone.send("Sok Dara")
    await someone.send("/cancel")
    assert _("Stopped. Nothing was saved. You can sign whenever you like.") in someone.text()
    assert await signatures(app) == []
    row = await user_row(app, 5002)
    assert (row.step, row.draft) == ("idle", {})


async def test_signing_twice_shows_the_signature_which_can_be_changed_or_withdrawn(
    app: App, person: Person
) -> None:
    someone = person(6001)
    _ = await sign_up_to_name(app, someone)
    await finish(someone, _)

    await someone.send("/sign")
    assert _("You have already signed.") in someone.text()
    assert "Sok Dara" in someone.text()

    await someone.click(_("✏️ Change an answer"))
    await someone.click(_("State, province or city"))
    await someone.send("Lowell, MA")
    await someone.click(_("✅ Save changes"))
    assert _("Your signature has been updated.") in someone.text()
    [signature] = await signatures(app)
    assert signature.region == "Massachusetts"

    await someone.send("/mysignature")
    await someone.click(_("Withdraw my signature"))
    await someone.click(_("No, keep it"))
    assert len(await signatures(app)) == 1
    await someone.send("/mysignature")
    await someone.click(_("Withdraw my signature"))
    await someone.click(_("Yes, withdraw it"))
    assert _("Your signature has been withdrawn and your answers deleted.") in someone.text()
    assert await signatures(app) == []
    await someone.send("/mysignature")
    assert _("You have not signed yet.") in someone.text()


async def test_a_shared_contact_must_be_the_senders_own(app: App, person: Person) -> None:
    someone = person(7001)
    _ = await sign_up_to_name(app, someone)
    for payload in ("co:KH",):
        await someone.send("Sok Dara")
        await someone.press(payload)
    await someone.press("r:skip")
    await someone.press("b:12")
    await someone.share_contact("85512345678", own=False)
    assert _("Please share your own phone number, not someone else's.") in someone.text()
    assert (await user_row(app, 7001)).step == "contact"
    # A number typed in Khmer digits, in the Cambodian way, is read.
    await someone.send("០១២ ៣៤៥ ៦៧៨")
    assert opened(app, (await user_row(app, 7001)).draft["phone"]) == "+85512345678"


async def draft_and_step(app: App, user_id: int) -> tuple[str, dict[str, Any]]:
    row = await user_row(app, user_id)
    return row.step, row.draft


async def test_bad_inputs_get_a_clear_answer_and_change_nothing(app: App, person: Person) -> None:
    someone = person(8001)
    _ = await sign_up_to_name(app, someone)
    ask_name = _("What is your full name? Please type it in Khmer or Latin letters.")
    before = await draft_and_step(app, 8001)

    await someone.sticker()
    assert _("I can only read text here.") in someone.text()
    assert ask_name in someone.text()
    await someone.send("x" * 5000)
    assert _("That message is too long for this question.") in someone.text()
    await someone.send("12345")
    assert _("A name has no numbers. Please type your name in letters.") in someone.text()
    await someone.send("https://example.com/spam")
    assert _("Please type only your name, without links.") in someone.text()
    await someone.send("A")
    assert _("That name is too short. Please type your full name.") in someone.text()
    await someone.send("Sok\x07Dara")
    assert _("Please type your name in Khmer or Latin letters only.") in someone.text()
    await someone.send("/frobnicate")
    assert _("I don't know that command. Here is what I can do:") in someone.text()
    await someone.press("co:US")  # a button from an earlier message
    assert _("That button is from an earlier message.") in someone.text()
    assert ask_name in someone.text()
    await someone.press("zz:not-a-payload")
    assert _("That button is from an earlier message.") in someone.text()
    await someone.send(
        "Sok Dara", forward_origin={"type": "hidden_user", "date": 0, "sender_user_name": "Someone"}
    )
    assert _("Please type your answer yourself instead of forwarding a message.") in someone.text()
    assert await draft_and_step(app, 8001) == before

    await someone.send("Sok Dara")
    await someone.send("hello")  # text where a button is expected is read as a country name
    assert (
        _("I could not find that country. Please check the spelling, or type its name in English.")
        in someone.text()
    )
    await someone.send("Kanada")
    await someone.click(places.country_name("CA", "en"))
    assert await draft_and_step(app, 8001) == (
        "region",
        {**before[1], "name": "Sok Dara", "country": "CA", "region": None, "candidates": []},
    )
    await someone.press("r:skip")
    await someone.send("Atlantis")
    assert _("I could not find that province. Please choose it from the list.") in someone.text()
    await someone.press("b:abroad")
    await someone.send("not a phone")
    assert (
        _("That is not a phone number or e-mail address I can use. Please check it, or press Skip.")
        in someone.text()
    )
    await someone.send(_("Skip"))  # the reply keyboard's Skip arrives as text
    assert (
        _(
            "May we send you news of the campaign and greetings at Khmer New Year? "
            "You can stop them at any time."
        )
        in someone.text()
    )
    await someone.send("maybe")
    assert _("Please choose one of the buttons below.") in someone.text()
    assert (await user_row(app, 8001)).step == "updates"


async def test_typing_a_button_label_presses_it(app: App, person: Person) -> None:
    km = translator(app, "km")
    someone = person(8002)
    await someone.send("/start")
    await someone.send("English")
    assert app.conversation.content.petition("en").title in someone.text()
    await someone.send("/language")
    await someone.send("ភាសាខ្មែរ")
    await someone.send("/sign")
    await someone.send(km("✅ I agree"))
    await someone.send("សុខ ដារ៉ា")
    await someone.send(places.country_name("JP", "km"))
    await someone.send(km("Skip"))
    await someone.send("ភ្នំពេញ")
    await someone.send(km("Skip"))
    await someone.send(km("No, thank you"))
    await someone.send(km("✅ Confirm and sign"))
    async with app.conversation.sessions() as session:
        total = (await session.execute(select(func.count(Signature.id)))).scalar_one()
    assert total == 1
    [signature] = await signatures(app)
    assert (signature.country, signature.birth_province, signature.language) == ("JP", "12", "km")


async def test_a_person_row_remembers_only_their_latest_update_ids(
    app: App, person: Person
) -> None:
    someone = person(9001)
    first = someone.text_update("/help")
    await someone.send_update(first)
    for _ in range(40):
        await someone.send("/help")
    row = await user_row(app, 9001)
    assert len(row.recent_updates) == 32
    assert str(first.update_id) not in row.recent_updates


async def test_a_failing_update_is_rolled_back_alone_and_its_sender_told(
    app: App, person: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import signing

    real_name_step = signing.TEXT_STEPS["name"]

    async def fragile(ctx: Any, incoming: Any) -> Any:
        if incoming.text == "Boom":
            raise RuntimeError("a bug in a handler")
        return await real_name_step(ctx, incoming)

    monkeypatch.setitem(signing.TEXT_STEPS, "name", fragile)
    unlucky, lucky = person(9101), person(9102)
    _ = await sign_up_to_name(app, unlucky)
    await sign_up_to_name(app, lucky)
    before = await draft_and_step(app, 9101)

    # Sent at the same moment, the two land in one batch.
    await asyncio.gather(unlucky.send("Boom"), lucky.send("Sok Dara"))

    assert unlucky.text() == _("Sorry, something went wrong on our side. Please try again.")
    assert _("Which country do you live in now?") in lucky.text()
    assert await draft_and_step(app, 9101) == before
    assert (await draft_and_step(app, 9102))[1]["name"] == "Sok Dara"
    await unlucky.send("Chan Dara")
    assert _("Which country do you live in now?") in unlucky.text()


async def test_updates_of_one_person_arriving_together_are_handled_in_order(
    app: App, person: Person, session: RecordingSession
) -> None:
    _ = translator(app, "en")
    someone = person(9201)
    # A polling batch (or a fast thumb) brings a message and two presses at once.
    await asyncio.gather(someone.send("/start"), someone.press("l:en"), someone.press("go:sign"))
    texts = [message.text for message in session.sent() if message.chat_id == 9201]
    assert _("Please choose your language.") in texts[0]
    assert app.conversation.content.petition("en").title in texts[1]
    assert _("Do you agree?") in texts[2]
    assert len(texts) == 3


async def test_group_chats_are_not_answered(app: App, person: Person) -> None:
    from aiogram.types import Chat

    someone = person(9202)
    someone.chat = Chat(id=-100123, type="supergroup")
    assert await someone.send("/start") == []
