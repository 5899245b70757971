"""SQLAlchemy 2 typed models. Portable: nothing dialect-specific here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
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
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_users_channel_external"),
        Index("ix_users_signed_step", "signed", "step", "agreed_at"),
    )

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
    # When they accepted the petition's text (the funnel's middle step).
    agreed_at: Mapped[datetime | None] = mapped_column()
    # The platform refused to deliver to them (they blocked the bot, or the account is gone).
    unreachable_at: Mapped[datetime | None] = mapped_column()
    # Their latest burst of updates (bot/flood.py): when it began and how many so far, here
    # so that every process counts the same burst.
    burst_started_at: Mapped[datetime | None] = mapped_column()
    burst_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Has a signature (counted or set aside): kept by the statements that add and delete
    # them, so that /stats finds those who have not signed from an index, not a join.
    signed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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
    # "You are signer number N": given once, from the `signers` counter, so that no two
    # signers are told the same number however many processes sign at once (gaps are fine).
    number: Mapped[int | None] = mapped_column(Integer, unique=True)


class UnansweredQuestion(Base):
    """A question the bot could not answer, kept for organisers: its words with phone numbers
    and e-mails masked, and a link to who asked, so that their /mydata shows it and /delete
    erases it (organisers never see who)."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(8))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Alert(Base):
    """When an alert was last sent (a signing spike from one country): shared by every
    process, so admins hear it once however many watch."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_alerts_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "spike"
    key: Mapped[str] = mapped_column(String(64))  # a country code
    sent_at: Mapped[datetime] = mapped_column()


class Counter(Base):
    """A number kept across processes (the row is locked while a transaction changes it):
    `signers`, the last signer number handed out; `counted`, the signatures counted (not
    set aside), changed by every statement that adds, removes or sets aside signatures."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class StatsCheckpoint(Base):
    """The figures of /stats over the signatures up to `through_id`, kept so that /stats
    reads only the signatures added since (db/stats.py). Valid while the `changes` counter,
    which every UPDATE or DELETE of signatures bumps, still holds `changes`."""

    __tablename__ = "stats_checkpoints"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    through_id: Mapped[int] = mapped_column(Integer)
    changes: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column()
    figures: Mapped[dict[str, Any]] = mapped_column()


class PendingReply(Base):
    """What a handled update must still send. Written in the update's own transaction and
    deleted once sent, so that a crash between the commit and the send leaves it here: the
    platform redelivers the update, which is recognised as handled and these are sent."""

    __tablename__ = "pending_replies"
    __table_args__ = (UniqueConstraint("user_id", "update_key", name="uq_pending_replies_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    update_key: Mapped[str] = mapped_column(String(64))
    replies: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Admin(Base):
    """An organiser added from the chat (those in ADMIN_IDS are admins without a row)."""

    __tablename__ = "admins"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_admins_channel_external"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # "telegram": the console acts as it
    external_id: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str | None] = mapped_column(String(80))  # "telegram:123", "shell"
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One admin action: who (a platform id, never a name), what, with which options."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # "telegram:123", "console:1", "shell"
    action: Mapped[str] = mapped_column(String(32))  # "stats", "export", "admin_add", ...
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Approval(Base):
    """An action that needs a second owner (four-eyes): asked by one owner, approved or
    refused by another, once."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(32))  # "export_contacts"
    asked_by: Mapped[str] = mapped_column(String(80))  # "telegram:123"
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What exactly is asked (an export's format, filter and language), never a name.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # approved, refused
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column()


class VolunteerCode(Base):
    """A named share code for a volunteer or an event, printed on posters as a QR code."""

    __tablename__ = "volunteer_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Milestone(Base):
    """A total the petition passed; the primary key makes each one reached once."""

    __tablename__ = "milestones"

    value: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reached_at: Mapped[datetime] = mapped_column(default=utcnow)
    announced_at: Mapped[datetime | None] = mapped_column()


class Broadcast(Base):
    """A message to opted-in people: its language versions, audience, schedule and figures."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # draft, scheduled, running, done, cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    # {"km": {"kind": "text"|"photo"|"document", "text": html, "file_id": ...}, "en": {...}}
    versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"languages": [...], "countries": [...], "regions": [[country, region], ...],
    #  "provinces": [...], "signers_only": bool}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduled_for: Mapped[datetime | None] = mapped_column()
    rate: Mapped[float] = mapped_column(Float, default=25.0)  # messages a second
    paid: Mapped[bool] = mapped_column(Boolean, default=False)  # allow_paid_broadcast
    total: Mapped[int] = mapped_column(Integer, default=0)
    # Where the admin's progress message is, to edit it as the broadcast runs.
    report_channel: Mapped[str | None] = mapped_column(String(16))
    report_chat: Mapped[str | None] = mapped_column(String(64))
    report_message_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Its figures by state, kept once its outbox rows (who got it) are purged by retention.
    figures: Mapped[dict[str, Any] | None] = mapped_column()


class OutboxMessage(Base):
    """One broadcast to one person: pending, sending (in flight), sent, failed, blocked,
    skipped or unknown (in flight at a crash: never resent)."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "user_id", name="uq_outbox_broadcast_user"),
        # The claim walks one broadcast's pending rows in id order: this index gives them
        # in that order, with nothing to filter or sort.
        Index("ix_outbox_broadcast_status_id", "broadcast_id", "status", "id"),
        # Erasing a person deletes their rows.
        Index("ix_outbox_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    # Erasing a person erases their pending messages too.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    message_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A message sent in parts (Messenger's 2,000 characters): how many went, so that a retry
    # goes on from the next part instead of sending the first ones again.
    pieces_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime | None] = mapped_column()  # a retry waits until then
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
