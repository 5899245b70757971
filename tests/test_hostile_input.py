"""Whatever people (or attackers) send, the bot answers without failing and keeps its data whole."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import App
from db.models import Signature, User
from tests.telegram_fakes import FakeUser

Person = Callable[..., FakeUser]
_ids = itertools.count(500_000)

KHMER = st.characters(min_codepoint=0x1780, max_codepoint=0x17FF)
AWKWARD = st.sampled_from(
    ["\u200b", "\u200d", "\u202e", "\u0000", "\u0007", "\n", "\t", "\ufeff", "😀", "👍🏽",
     "ש", "ع", "០", "៩", "/", "@", "<b>", "</i>", "&amp;", "https://t.me/x"]
)  # fmt: skip
TEXT = st.one_of(
    st.lists(st.one_of(KHMER, AWKWARD, st.characters()), max_size=40).map("".join),
    st.text(max_size=5000, min_size=4096),
    st.sampled_from(["Sok Dara", "សុខ ដារ៉ា", "France", "Frnace", "Skip", "រំលង", "12345",
                     "+1 206 555 0100", "០១២ ៣៤៥ ៦៧៨", "a@b.co", "ភាសាខ្មែរ", "English"]),
)  # fmt: skip
COMMAND = st.builds(
    lambda name, arg: f"/{name} {arg}".strip(),
    st.sampled_from(["start", "sign", "mysignature", "language", "help", "cancel", "faq",
                     "mydata", "delete", "stop", "privacy", "questions", "nonsense"]),
    st.text(max_size=70),
)  # fmt: skip
PAYLOAD = st.one_of(
    st.sampled_from(["l:km", "l:en", "go:sign", "go:faq", "go:lang", "go:mine", "c:y", "c:n",
                     "co:US", "co:other", "co:ZZ", "cc:FR", "cc:retry", "r:skip", "b:17",
                     "b:99", "b:abroad", "ct:skip", "u:y", "u:n", "rv:ok", "rv:edit",
                     "rv:cancel", "e:name", "e:back", "s:edit", "s:withdraw", "w:y", "w:n",
                     "d:y", "d:n", "n:on", "f:withdraw", "f:nope"]),
    st.text(max_size=64),
)  # fmt: skip
ACTION = st.one_of(
    st.tuples(st.just("text"), TEXT),
    st.tuples(st.just("text"), COMMAND),
    st.tuples(st.just("button"), PAYLOAD),
    st.tuples(st.just("contact"), st.sampled_from(["85512345678", "+12065550100", "1", ""])),
    st.tuples(st.just("sticker"), st.just("")),
)


@settings(
    # A quick run in `make test`; HOSTILE_EXAMPLES=10000 for the long one.
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTION, min_size=1, max_size=25))
async def test_any_sequence_of_inputs_is_answered_and_keeps_the_data_whole(
    app: App, person: Person, actions: list[tuple[str, str]]
) -> None:
    someone = person(next(_ids))
    sorry_km = app.translations.get("km").gettext("Sorry, something went wrong on our side.")
    for kind, value in actions:
        if kind == "text":
            seen = await someone.send(value) if value else []
        elif kind == "button":
            seen = await someone.press(value)
        elif kind == "contact":
            seen = await someone.share_contact(value or "0", own=value != "1")
        else:
            seen = await someone.sticker()
        for message in seen:
            assert message.text
            assert len(message.text) <= 4096
            assert "Sorry, something went wrong" not in message.text
            assert sorry_km not in message.text
        async with app.conversation.sessions() as session:
            row = (
                await session.execute(
                    select(User.language).where(User.external_id == str(someone.user.id))
                )
            ).scalar_one_or_none()
        if row == "km":
            # A Khmer reader gets Khmer (the language picker shows both languages).
            for message in seen:
                assert any("\u1780" <= char <= "\u17ff" for char in message.text), message.text

    async with app.conversation.sessions() as session:
        signatures = (await session.execute(select(func.count(Signature.id)))).scalar_one()
        owners = (
            await session.execute(select(func.count(func.distinct(Signature.user_id))))
        ).scalar_one()
        orphans = (
            await session.execute(
                select(func.count(Signature.id)).where(Signature.user_id.not_in(select(User.id)))
            )
        ).scalar_one()
    assert signatures == owners  # one signature per identity
    assert orphans == 0  # no signature without its person
