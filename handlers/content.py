"""Texts that organisers edit without touching code (the petition), read from `locales/`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from handlers.faq import Faq
from handlers.faq_content import ContentError, load_faq


@dataclass(frozen=True, slots=True)
class Petition:
    """The petition in one language."""

    title: str
    statement: str


@dataclass(frozen=True, slots=True)
class Content:
    """All organiser-edited content, per language."""

    petitions: dict[str, Petition]
    faq: Faq

    def petition(self, language: str) -> Petition:
        """The petition in `language`, or in Khmer."""
        return self.petitions.get(language) or self.petitions["km"]


def load_content(path: Path, faq_path: Path) -> Content:
    """Read the petition and the FAQ; a missing language or field is an error at start-up."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ContentError(f"{path}: {error}") from error
    petitions = {}
    for language in ("km", "en"):
        section = data.get(language)
        if (
            not isinstance(section, dict)
            or not section.get("title")
            or not section.get("statement")
        ):
            raise ContentError(f"{path}: [{language}] needs a title and a statement")
        petitions[language] = Petition(
            title=str(section["title"]).strip(), statement=str(section["statement"]).strip()
        )
    return Content(petitions=petitions, faq=Faq(load_faq(faq_path)))
