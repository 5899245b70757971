"""Fixtures: a real database file per test (and PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import App, build_app
from bot.channels.telegram import build_bot, build_dispatcher
from bot.config import Settings
from bot.flood import FloodGuard
from db.protect import new_key
from tests.telegram_fakes import FakeUser, RecordingSession

TOKEN = "123456:" + "A" * 35
DATA_KEY = new_key()
HASH_KEY = "h" * 40
ADMIN = 777  # the organiser's Telegram id in tests with an admin (ADMIN_IDS)
DIALECTS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


async def _fresh_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=DIALECTS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or PostgreSQL's `test` database emptied."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'petition.sqlite3'}"
    url = os.environ["TEST_DATABASE_URL"]
    await _fresh_postgres(url)
    return url


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings as production reads them, with no .env file and explicit values."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "telegram_bot_token": TOKEN,
            "database_url": database_url,
            "petition_goal": 10_000,
            "data_key": DATA_KEY,
            "hash_key": HASH_KEY,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
async def app(make_settings: Callable[..., Settings]) -> AsyncIterator[App]:
    """The application, built by the production factory on a fresh database.

    Tests click faster than any person: the flood limit is lifted here and tested on its own.
    """
    application = await build_app(make_settings())
    application.conversation.flood = FloodGuard(limit=1_000_000)
    yield application
    await application.close()


@pytest.fixture
def session() -> RecordingSession:
    """The Bot API as the bot sees it in tests: in memory, strict."""
    return RecordingSession()


@pytest.fixture
async def bot(app: App, session: RecordingSession) -> AsyncIterator[Bot]:
    """The production Bot, on the recording session."""
    telegram_bot = build_bot(app.settings, session=session)
    yield telegram_bot
    await telegram_bot.session.close()


@pytest.fixture
def dispatcher(app: App) -> Dispatcher:
    """The production dispatcher."""
    return build_dispatcher(app)


@pytest.fixture
def person(
    dispatcher: Dispatcher, bot: Bot, session: RecordingSession
) -> Callable[[int], FakeUser]:
    """Make a person with a Telegram user id."""

    def make(user_id: int = 1001) -> FakeUser:
        return FakeUser(dispatcher, bot, session, user_id)

    return make


async def app_with_admins(
    make_settings: Callable[..., Settings], *admins: int
) -> AsyncIterator[App]:
    """The application with these owners in ADMIN_IDS (flood limit lifted), closed after."""
    application = await build_app(make_settings(admin_ids=",".join(map(str, admins))))
    application.conversation.flood = FloodGuard(limit=1_000_000)
    yield application
    await application.close()


def people_of(app: App, session: RecordingSession) -> Callable[[int], FakeUser]:
    """Make a person on `app`, by Telegram user id."""
    bot = build_bot(app.settings, session=session)
    dispatcher = build_dispatcher(app)
    return lambda user_id: FakeUser(dispatcher, bot, session, user_id)


@pytest.fixture
async def admin_app(make_settings: Callable[..., Settings]) -> AsyncIterator[App]:
    """The application with one admin, ADMIN, from ADMIN_IDS (flood limit lifted)."""
    async for application in app_with_admins(make_settings, ADMIN):
        yield application


@pytest.fixture
def people(admin_app: App, session: RecordingSession) -> Callable[[int], FakeUser]:
    """Make a person on the admin's app, by Telegram user id (ADMIN is the organiser)."""
    return people_of(admin_app, session)
