"""Khmer-aware text handling: normalisation, digits, number display."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

# Zero-width and invisible characters that Khmer keyboards insert between words.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_KHMER_DIGITS = "០១២៣៤៥៦៧៨៩"
_TO_ASCII = str.maketrans(_KHMER_DIGITS, "0123456789")
_TO_KHMER = str.maketrans("0123456789", _KHMER_DIGITS)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFC, no zero-width characters, single spaces, trimmed."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def ascii_digits(text: str) -> str:
    """Turn Khmer digits (០-៩) into ASCII ones, so they are accepted wherever digits are."""
    return text.translate(_TO_ASCII)


def fold(text: str) -> str:
    """A key for loose matching: normalised, case-folded, accents and punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", normalise(ascii_digits(text)).casefold())
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Mn" and not _is_khmer(char):
            continue  # a Latin accent: "Réunion" matches "reunion"
        if category.startswith(("P", "S")):
            kept.append(" ")
            continue
        kept.append(char)
    return _SPACES.sub(" ", unicodedata.normalize("NFC", "".join(kept))).strip()


def _is_khmer(char: str) -> bool:
    return "\u1780" <= char <= "\u17ff" or "\u19e0" <= char <= "\u19ff"


def khmer_digits(text: str) -> str:
    """Show ASCII digits as Khmer digits."""
    return text.translate(_TO_KHMER)


def format_number(value: int, language: str) -> str:
    """A whole number as a reader of `language` writes it (Khmer digits in Khmer)."""
    shown = format_decimal(value, locale="en", group_separator=True)
    return khmer_digits(shown) if language == "km" else shown


def format_percent_of(part: int, whole: int, language: str) -> str:
    """`part` as a percentage of `whole`: two decimals under 1 %, one under 10 %."""
    ratio = part / whole if whole else 0.0
    pattern = "#,##0.##%" if ratio < 0.01 else "#,##0.#%" if ratio < 0.1 else "#,##0%"
    shown = format_percent(ratio, format=pattern, locale="en")
    return khmer_digits(shown) if language == "km" else shown


def format_day(day: date, language: str) -> str:
    """A date as a reader of `language` writes it, e.g. "23 November 2026" / "២៣ វិច្ឆិកា ២០២៦"."""
    shown = format_date(day, format="long", locale=language)
    return khmer_digits(shown) if language == "km" else shown
