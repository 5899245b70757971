"""The news people receive: a broadcast exactly as its recipients see it, with the button that
stops it (answered in `privacy`). Organisers compose broadcasts in `admin/broadcasts.py`; the
worker in `bot/workers/broadcast.py` sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from db import broadcasts as store
from handlers.base import Attachment, Button, Reply
from words.i18n import N_

STOP_PAYLOAD = "n:off"  # the "stop news" button under every broadcast (handlers/privacy.py)
STOP_LABEL = N_("🔕 No more news")


def recipient_reply(version: dict[str, Any], gettext: Callable[[str], str]) -> Reply:
    """One language version exactly as its recipients see it, with the stop button."""
    buttons = [[Button(gettext(STOP_LABEL), STOP_PAYLOAD)]]
    kind = version.get("kind")
    if kind in ("photo", "document") and version.get("file_id"):
        attachment = Attachment(
            str(kind), str(version.get("filename") or kind), file_id=str(version["file_id"])
        )
        return Reply(str(version.get("text") or ""), buttons, attachment=attachment)
    return Reply(str(version.get("text") or ""), buttons)


def version_for(versions: dict[str, Any], language: str) -> str:
    """The version a reader of `language` gets: theirs, or the one there is."""
    if language in versions:
        return language
    return next(code for code in store.LANGUAGES if code in versions)


def by_version(versions: dict[str, Any], by_language: dict[str, int]) -> dict[str, int]:
    """How many people get each version, from how many read each language."""
    getting = dict.fromkeys(versions, 0)
    for language, people in by_language.items():
        getting[version_for(versions, language)] += people
    return getting
