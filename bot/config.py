"""Settings, read once from the environment or `.env` and passed in."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.protect import ContactCipher

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

    messenger_page_token: SecretStr | None = None
    messenger_app_secret: SecretStr | None = None
    messenger_verify_token: SecretStr | None = None
    messenger_api_url: str = "https://graph.facebook.com"
    messenger_api_version: str = "v21.0"
    messenger_page_username: str | None = None
    # Seconds a signed Messenger event stays acceptable: an older one (a replayed call) is
    # refused, as is one dated more than a minute ahead of this server's clock.
    messenger_max_age: Annotated[int, Field(ge=1)] = 300

    database_url: str = DEFAULT_DATABASE_URL
    petition_goal: Annotated[int, Field(ge=1)] = 10_000
    petition_file: Path = ROOT / "locales" / "petition.toml"
    faq_file: Path = ROOT / "locales" / "faq.toml"
    admin_ids: Annotated[list[int], NoDecode] = []
    # Contact details are encrypted with DATA_KEY (Fernet keys, comma-separated, newest first:
    # add a new key in front, run `petitionbot rotate-key`, then drop the old one) and compared
    # through HASH_KEY. Without both, the bot does not ask for contact details.
    data_key: SecretStr | None = None
    hash_key: SecretStr | None = None
    # Retention: RETENTION_DAYS after CAMPAIGN_CLOSED_ON, names and contacts are replaced by
    # a placeholder (counts by country, province and date stay). No date: kept until then.
    campaign_closed_on: date | None = None
    retention_days: Annotated[int, Field(ge=0)] = 365
    # What people type that is not a signature: unanswered questions are deleted this many
    # days after they were asked, unfinished answers (a name, a contact) this many days after
    # the person was last seen.
    question_retention_days: Annotated[int, Field(ge=1)] = 90
    draft_retention_days: Annotated[int, Field(ge=1)] = 30
    # Who got which news (the outbox) goes this many days after a broadcast finished (its
    # figures stay); admin actions in the audit log after this many days.
    outbox_retention_days: Annotated[int, Field(ge=1)] = 90
    audit_retention_days: Annotated[int, Field(ge=1)] = 730
    locales_dir: Path = ROOT / "locales"
    # Where the console chat saves the files it is sent (charts, exports, QR codes).
    files_dir: Path = ROOT / "data" / "files"
    log_level: str = "INFO"
    # Broadcasts: messages a second (Telegram allows about 30 without paying); with
    # allow_paid_broadcast (`petitionbot broadcast --paid`) up to 1,000, paid in Stars.
    broadcast_rate: Annotated[float, Field(gt=0, le=30)] = 25.0
    broadcast_paid_rate: Annotated[float, Field(gt=0, le=1000)] = 1000.0
    # Whether `petitionbot run` also runs a broadcaster (one sends at a time, the others stand
    # by). Off where a `petitionbot broadcast worker` process of its own does it.
    broadcast_in_bot: bool = True
    # `/metrics` on the bot's web server, for whoever runs it: off unless set, and then only
    # for requests that carry it (`Authorization: Bearer <token>`).
    metrics_token: SecretStr | None = None
    # `petitionbot import` refuses a sheet with more rows or columns (blank ones past them do
    # not count): a file from anyone must not make it read without end.
    import_max_rows: Annotated[int, Field(ge=1)] = 100_000
    import_max_columns: Annotated[int, Field(ge=1)] = 50

    @field_validator(
        "telegram_bot_token",
        "webhook_secret",
        "messenger_page_token",
        "messenger_app_secret",
        "messenger_verify_token",
        "messenger_page_username",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("data_key", "hash_key", "campaign_closed_on", mode="before")
    @classmethod
    def _no_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("data_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from cryptography.fernet import Fernet

            try:
                for key in value.get_secret_value().split(","):
                    Fernet(key.strip().encode())
            except ValueError:
                raise ValueError(
                    "must be Fernet keys (32 url-safe base64 bytes), comma-separated; "
                    "make one with `petitionbot new-key`"
                ) from None
        return value

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

    @field_validator("messenger_api_url", "messenger_api_version", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        # `MESSENGER_API_URL=` left empty in .env means the official Graph API.
        default = cls.model_fields[info.field_name].default if info.field_name else None
        return default if value == "" else value

    @field_validator("messenger_api_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise ValueError("must look like v21.0")
        return value

    @field_validator("messenger_page_username")
    @classmethod
    def _page_name(cls, value: str | None) -> str | None:
        # A Page's username (letters, digits, periods) or its numeric id, for m.me links.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.]{1,64}", value):
            raise ValueError("is not a Facebook Page username or id")
        return value

    @field_validator("telegram_api_url", "webhook_url", "messenger_api_url")
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
    def _keys_come_in_pairs(self) -> Settings:
        if (self.data_key is None) != (self.hash_key is None):
            raise ValueError("DATA_KEY and HASH_KEY: set both, or neither")
        if self.hash_key is not None and len(self.hash_key.get_secret_value()) < 32:
            raise ValueError("HASH_KEY: at least 32 characters of random text")
        return self

    def contact_cipher(self) -> ContactCipher | None:
        """The cipher for contact details, or None when no keys are set."""
        if self.data_key is None or self.hash_key is None:
            return None
        keys = [key.strip() for key in self.data_key.get_secret_value().split(",") if key.strip()]
        return ContactCipher(keys, self.hash_key.get_secret_value())

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET: must be set when WEBHOOK_URL is set")
        if self.webhook_secret is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{16,256}", self.webhook_secret.get_secret_value()
        ):
            raise ValueError("WEBHOOK_SECRET: 16 to 256 characters of A-Z, a-z, 0-9, _ and -")
        messenger = (
            self.messenger_page_token,
            self.messenger_app_secret,
            self.messenger_verify_token,
        )
        if any(secret is not None for secret in messenger) and None in messenger:
            raise ValueError(
                "MESSENGER_PAGE_TOKEN, MESSENGER_APP_SECRET and MESSENGER_VERIFY_TOKEN: "
                "set all three, or none"
            )
        return self

    @property
    def messenger_enabled(self) -> bool:
        """Whether the Messenger channel runs (its three secrets are set)."""
        return self.messenger_page_token is not None


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad setting, for a clean exit at start-up."""
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"Configuration error: {name}: {message}" if name else f"Configuration error: {message}"
