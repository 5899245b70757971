"""Every catalog entry translated, not fuzzy, with the source's placeholders and HTML tags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.config import ROOT

LOCALES = ROOT / "locales"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
TAG = re.compile(r"</?[a-z]+>")


def catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def template_ids() -> set[str]:
    with (LOCALES / "messages.pot").open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}


@pytest.mark.parametrize("language", ["km", "en"])
def test_catalog_is_complete_and_consistent(language: str) -> None:
    problems = []
    for message in catalog(language):
        if not message.id:
            continue
        source = str(message.id)
        if message.fuzzy:
            problems.append(f"fuzzy: {source!r}")
        if language == "en" and not message.string:
            continue  # English is the source language: an empty entry shows the msgid
        if not message.string:
            problems.append(f"untranslated: {source!r}")
            continue
        target = str(message.string)
        if sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(target)):
            problems.append(f"placeholders differ: {source!r}")
        if TAG.findall(source) != TAG.findall(target):
            problems.append(f"HTML tags differ: {source!r}")
    assert problems == []


def test_khmer_really_is_khmer() -> None:
    for message in catalog("km"):
        if message.id and message.string and re.search(r"[A-Za-z]{4,}", str(message.id)):
            assert re.search("[\u1780-\u17ff]", str(message.string)), message.id


def test_every_string_in_the_code_is_in_the_catalogs(tmp_path: Path) -> None:
    # Re-extract from the code and compare with the catalogs: a new _() without a translation fails.
    from babel.messages.extract import extract_from_dir

    method_map = [("bot/**.py", "python"), ("handlers/**.py", "python"), ("db/**.py", "python")]
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=method_map, keywords={"_": None, "N_": None}
        )
        if isinstance(message, str)
    }
    for language in ("km", "en"):
        ids = {str(message.id) for message in catalog(language) if message.id}
        assert sorted(found - ids) == [], f"missing from {language}: run `make i18n-update`"
