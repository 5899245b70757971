"""The FAQ that organisers edit (`locales/faq.toml`): reading and checking it."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANGUAGES = ("km", "en")
QUESTION_MAX = 40  # a button on a phone
ANSWER_MAX = 1200
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_TAG = re.compile(r"</?([a-z]+)>")
_ALLOWED_TAGS = {"b", "i"}


class ContentError(ValueError):
    """A content file organisers edit cannot be used; the message names the entry."""


class FaqError(ContentError):
    """The FAQ file cannot be used; the message names the entry."""


@dataclass(frozen=True, slots=True)
class TopicText:
    """A topic in one language."""

    question: str
    answer: str
    phrasings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Topic:
    """One question people ask, answered in Khmer and English."""

    id: str
    texts: dict[str, TopicText]
    source: str = ""
    reviewed: dt.date | None = None

    def text(self, language: str) -> TopicText:
        """The topic in `language`, or in Khmer."""
        return self.texts.get(language) or self.texts["km"]


def _balanced(text: str) -> bool:
    stack: list[str] = []
    for match in _TAG.finditer(text):
        name = match.group(1)
        if name not in _ALLOWED_TAGS:
            return False
        if match.group(0).startswith("</"):
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


def _topic_text(where: str, section: Any) -> tuple[TopicText | None, list[str]]:
    problems: list[str] = []
    if not isinstance(section, dict):
        return None, [f"{where}: missing"]
    question, answer = section.get("question"), section.get("answer")
    phrasings = section.get("phrasings", [])
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{where}.question: empty")
    elif len(question.strip()) > QUESTION_MAX:
        problems.append(f"{where}.question: longer than {QUESTION_MAX} characters")
    if not isinstance(answer, str) or not answer.strip():
        problems.append(f"{where}.answer: empty")
    elif len(answer) > ANSWER_MAX:
        problems.append(f"{where}.answer: longer than {ANSWER_MAX} characters")
    elif not _balanced(answer):
        problems.append(f"{where}.answer: only <b> and <i> tags, each one closed")
    if not isinstance(phrasings, list) or not all(isinstance(p, str) for p in phrasings):
        problems.append(f"{where}.phrasings: a list of quoted texts")
    if problems:
        return None, problems
    assert isinstance(question, str)
    assert isinstance(answer, str)
    cleaned = tuple(p.strip() for p in phrasings if p.strip())
    return TopicText(question.strip(), answer.strip(), cleaned), []


def check_faq(path: Path) -> tuple[list[Topic], list[str]]:
    """Read the FAQ file: (its topics, every problem found, each naming its entry)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return [], [f"{path}: no such file"]
    except tomllib.TOMLDecodeError as error:
        return [], [f"{path}: not valid TOML: {error}"]
    entries = data.get("topic")
    if not isinstance(entries, list) or not entries:
        return [], [f"{path}: no [[topic]] entries"]
    topics: list[Topic] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        topic_id = entry.get("id") if isinstance(entry, dict) else None
        where = f"topic {number} ({topic_id or 'no id'})"
        if not isinstance(topic_id, str) or not _ID.match(topic_id):
            problems.append(f"{where}: id must be lower-case words joined by '-'")
            continue
        if topic_id in seen:
            problems.append(f"{where}: the id is used twice")
            continue
        seen.add(topic_id)
        texts: dict[str, TopicText] = {}
        for language in LANGUAGES:
            text, found = _topic_text(f"{where} {language}", entry.get(language))
            problems += found
            if text is not None:
                texts[language] = text
        reviewed = entry.get("reviewed")
        if reviewed is not None and not isinstance(reviewed, dt.date):
            problems.append(f"{where}: reviewed must be a date such as 2026-11-23")
            reviewed = None
        if len(texts) == len(LANGUAGES):
            source = entry.get("source") or ""
            topics.append(Topic(topic_id, texts, str(source), reviewed))
    return topics, problems


def load_faq(path: Path) -> list[Topic]:
    """The FAQ's topics; FaqError naming the first bad entry when the file is not usable."""
    topics, problems = check_faq(path)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FaqError(f"{path}: {problems[0]}{more}")
    return topics
