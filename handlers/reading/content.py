"""Texts that organisers edit without touching code, read from `locales/`: the petition, and
the FAQ with the matcher built from its phrasings."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from handlers.reading.faq_content import ContentError, Topic, load_faq
from handlers.reading.faq_match import Matcher


def build_matcher(topics: Sequence[Topic]) -> Matcher:
    """A matcher that knows every topic by its questions and phrasings in both languages."""
    examples = []
    for topic in topics:
        for text in topic.texts.values():
            examples.append((topic.id, text.question))
            examples += [(topic.id, phrasing) for phrasing in text.phrasings]
    return Matcher(examples)


# Training the matcher takes a second or two: it happens beside the start-up, not before it.
_TRAINING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faq-matcher")


@dataclass(slots=True)
class Faq:
    """The topics in their file's order, and the matcher built from them."""

    topics: list[Topic]
    by_id: dict[str, Topic] = field(init=False)
    _matcher: Future[Matcher] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {topic.id: topic for topic in self.topics}
        self._matcher = _TRAINING.submit(build_matcher, self.topics)

    @property
    def matcher(self) -> Matcher:
        """The matcher, trained in the background from the moment the FAQ was read (a
        question asked in the first seconds of a start waits for it)."""
        return self._matcher.result()

    @property
    def ready(self) -> bool:
        """Whether the matcher is trained."""
        return self._matcher.done()


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
