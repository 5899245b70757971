"""The channel-neutral vocabulary: what arrives (`Incoming`), what goes out (`Reply`)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from db.protect import ContactCipher
    from db.queries import UserState
    from handlers.reading.content import Content


class Kind(enum.Enum):
    """What sort of input a person sent."""

    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    CONTACT = "contact"
    OTHER = "other"  # a sticker, photo, voice note, location, file...


@dataclass(frozen=True, slots=True)
class Media:
    """A photo or file a person sent, as the platform keeps it (for composing broadcasts)."""

    kind: str  # "photo" or "document"
    file_id: str  # the platform's id: sending it again needs no upload
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One thing a person did, as every channel describes it."""

    kind: Kind
    text: str = ""  # the text, the command's argument, or the button's payload
    command: str | None = None  # "start" for "/start abc"
    contact_phone: str | None = None
    contact_is_own: bool = False
    forwarded: bool = False
    media: Media | None = None  # with Kind.OTHER: a photo or a document
    html: str | None = None  # the text or caption with its formatting, as HTML

    @classmethod
    def message(cls, text: str, *, forwarded: bool = False) -> Incoming:
        """A typed message; `/word arg` becomes a command."""
        if text.startswith("/") and not forwarded and len(text) > 1:
            head, _, arg = text[1:].partition(" ")
            name = head.split("@", 1)[0].lower()
            if name and name.isascii() and name.replace("_", "").isalnum():
                return cls(Kind.COMMAND, text=arg.strip(), command=name)
        return cls(Kind.TEXT, text=text, forwarded=forwarded)

    @classmethod
    def button(cls, payload: str) -> Incoming:
        """A button press carrying its payload."""
        return cls(Kind.BUTTON, text=payload)


@dataclass(frozen=True, slots=True)
class Button:
    """An option under a message: a label in the user's language and a short ASCII payload."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a reply (the reply's text is its caption): made here, or already on
    the platform (`file_id`, e.g. a photo an admin sent for a broadcast)."""

    kind: str  # "photo" or "document"
    filename: str
    data: bytes | None = None
    file_id: str | None = None


Later = Callable[["async_sessionmaker[AsyncSession]"], Awaitable[list["Reply"]]]


@dataclass(slots=True)
class Reply:
    """One message the bot sends."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    # When set, the channel offers its "share my phone number" control with this label.
    contact_label: str | None = None
    remove_keyboard: bool = False
    attachment: Attachment | None = None  # a chart, an export, a QR code: text is the caption
    # Work that takes long (a large export): run after this reply is sent and the update
    # committed, outside the conversation's transaction, with sessions of its own; the
    # replies it returns follow when it is done.
    later: Later | None = None
    # Another person on the same channel (an owner told of an admin's action, asked to
    # approve one), by platform id, instead of whoever wrote.
    to: str | None = None

    def options(self) -> list[Button]:
        """The buttons in reading order."""
        return [button for row in self.buttons for button in row]

    def to_record(self) -> dict[str, Any] | None:
        """The reply as JSON to keep until it is sent (bot/conversation.py); None when it
        cannot be kept: a file made here (an export, a chart) or work still to run."""
        if self.later is not None or (self.attachment and self.attachment.data is not None):
            return None
        record: dict[str, Any] = {"text": self.text}
        if self.buttons:
            record["buttons"] = [[[b.label, b.payload] for b in row] for row in self.buttons]
        if self.contact_label:
            record["contact_label"] = self.contact_label
        if self.remove_keyboard:
            record["remove_keyboard"] = True
        if self.attachment is not None:
            record["attachment"] = [
                self.attachment.kind,
                self.attachment.filename,
                self.attachment.file_id,
            ]
        if self.to is not None:
            record["to"] = self.to
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Reply:
        """A reply kept with `to_record`."""
        attachment = None
        if record.get("attachment"):
            kind, filename, file_id = record["attachment"]
            attachment = Attachment(str(kind), str(filename), file_id=file_id)
        return cls(
            str(record.get("text", "")),
            [[Button(str(label), str(payload)) for label, payload in row]
             for row in record.get("buttons", [])],
            contact_label=record.get("contact_label"),
            remove_keyboard=bool(record.get("remove_keyboard")),
            attachment=attachment,
            to=record.get("to"),
        )  # fmt: skip


@dataclass(slots=True)
class Context:
    """What a handler knows about the person and the world, for one update."""

    user: UserState
    session: AsyncSession
    gettext: Callable[[str], str]
    content: Content
    goal: int
    share_link: Callable[[str], str | None]
    channel: str
    translator_for: Callable[[str], Callable[[str], str]]
    is_admin: bool = False
    admin_ids: frozenset[str] = frozenset()  # the admins set in ADMIN_IDS
    cipher: ContactCipher | None = None  # None: no keys set, so contacts are not asked for
    question_days: int = 90  # how long unanswered questions are kept (QUESTION_RETENTION_DAYS)
    # For long reads in `Reply.later` work (/stats): sessions that read beside the writer.
    readers: async_sessionmaker[AsyncSession] | None = None

    @property
    def is_owner(self) -> bool:
        """An owner: an admin set in ADMIN_IDS by whoever runs the server. Only owners add or
        remove admins and take contacts out; organisers (added in the chat) do the rest."""
        return self.is_admin and self.user.external_id in self.admin_ids

    @property
    def actor(self) -> str:
        """Who acts, for the audit log: a platform id, never a name."""
        return f"{self.channel}:{self.user.external_id}"

    @property
    def language(self) -> str:
        """The user's language, Khmer until they pick."""
        return self.user.language or "km"

    def switch_language(self, language: str) -> None:
        """Store the new language; the very next text uses it."""
        self.user.language = language
        self.gettext = self.translator_for(language)


MESSAGE_LIMIT = 4096  # Telegram's limit for one message


def split_message(lines: list[str]) -> list[str]:
    """The lines as one message, or several when too long for one (cut between lines)."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > MESSAGE_LIMIT:
            messages.append("\n".join(current).strip())
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    messages.append("\n".join(current).strip())
    return [message for message in messages if message]


@dataclass(frozen=True, slots=True)
class Step:
    """A step with buttons that a feature other than signing owns (a confirmation, a
    composer's question). The signing flow is the conversation's one state machine: it asks
    `ask` when the step is pending and hands `on_button` the presses whose payload starts
    with `prefix:`, and answers stale presses and stray text as it does for its own steps."""

    name: str
    prefix: str
    ask: Callable[[Context], Reply]
    on_button: Callable[[Context, str], Awaitable[list[Reply]]]
