"""Settings, read once from the environment or `.env` and passed in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{ROOT / 'data' / 'petitionbot.sqlite3'}"

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class Settings(BaseSettings):
    """Every setting of the bot; names are the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    telegram_bot_username: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    webhook_path: str = "/telegram/webhook"

    database_url: str = DEFAULT_DATABASE_URL
    petition_goal: Annotated[int, Field(ge=1)] = 10_000
    petition_file: Path = ROOT / "locales" / "petition.toml"
    faq_file: Path = ROOT / "locales" / "faq.toml"
    admin_ids: Annotated[list[int], NoDecode] = []
    locales_dir: Path = ROOT / "locales"
    log_level: str = "INFO"

    @field_validator("telegram_bot_token", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # ADMIN_IDS=111,222 (platform user ids, never usernames)
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",")]
            return [part for part in parts if part]
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"\d+:[A-Za-z0-9_-]{20,}", value.get_secret_value()
        ):
            raise ValueError("does not look like a Bot API token (digits:letters)")
        return value

    @field_validator("telegram_bot_username")
    @classmethod
    def _username_shape(cls, value: str | None) -> str | None:
        if value:
            value = value.removeprefix("@")
            if not _USERNAME.fullmatch(value):
                raise ValueError("is not a Telegram username")
        return value or None

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9/_-]*", value):
            raise ValueError("must start with / and hold only letters, digits, /, _ and -")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET: must be set when WEBHOOK_URL is set")
        if self.webhook_secret is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{16,256}", self.webhook_secret.get_secret_value()
        ):
            raise ValueError("WEBHOOK_SECRET: 16 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return self


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad setting, for a clean exit at start-up."""
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"Configuration error: {name}: {message}" if name else f"Configuration error: {message}"
