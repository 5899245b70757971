"""SQLAlchemy 2 typed models. Portable: nothing dialect-specific here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class User(Base):
    """A person as one channel knows them, with their conversation state."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_users_channel_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    step: Mapped[str] = mapped_column(String(32), default="new")
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    referred_by: Mapped[str | None] = mapped_column(String(64))
    share_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    updates_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    # The ids of this person's latest updates: a redelivered one is recognised and skipped.
    recent_updates: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Blocked by an admin: gets no answers and cannot sign.
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Signature(Base):
    """One signature of the petition; at most one per user (a constraint, not a check)."""

    __tablename__ = "signatures"
    __table_args__ = (
        Index("ix_signatures_created_at", "created_at"),
        Index("ix_signatures_country_region", "country", "region"),
        Index("ix_signatures_referrer_code", "referrer_code"),
        Index("ix_signatures_contact_hash", "contact_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    full_name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    birth_province: Mapped[str] = mapped_column(String(8))  # a province code, or "abroad"
    # Encrypted tokens (db/protect.py), never the number or address in clear.
    phone: Mapped[str | None] = mapped_column(String(512))
    email: Mapped[str | None] = mapped_column(String(512))
    contact_hash: Mapped[str | None] = mapped_column(String(64))
    updates_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="chat")
    referrer_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set aside by an admin (a flood of fakes): not counted, kept for review.
    invalidated_at: Mapped[datetime | None] = mapped_column()


class UnansweredQuestion(Base):
    """A question the bot could not answer, kept for organisers (not who asked it)."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(8))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
