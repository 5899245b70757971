"""gettext catalogs for Khmer and English, read with Babel."""

from __future__ import annotations

import gettext
import io
import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

logger = logging.getLogger(__name__)

LANGUAGES = ("km", "en")
DEFAULT_LANGUAGE = "km"
DOMAIN = "messages"


def _load(locales_dir: Path, language: str) -> gettext.NullTranslations:
    folder = locales_dir / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    if po.exists():
        # No compiled catalog yet (a fresh clone run without `make`): compile in memory.
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return gettext.GNUTranslations(buffer)
    logger.warning("no catalog for %s under %s; showing English msgids", language, locales_dir)
    return gettext.NullTranslations()


class Translations:
    """All catalogs, loaded once; `get(lang)` gives a translator for one language."""

    def __init__(self, locales_dir: Path) -> None:
        self._by_language = {language: _load(locales_dir, language) for language in LANGUAGES}

    def get(self, language: str | None) -> gettext.NullTranslations:
        """The catalog for `language`, Khmer when unknown."""
        return self._by_language.get(language or DEFAULT_LANGUAGE, self._by_language["km"])


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message
