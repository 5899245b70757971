"""Business rules on plain values: text handling, names, contacts, places."""

from __future__ import annotations

import pytest

from handlers.base import Incoming, Kind
from handlers.reading import places
from handlers.reading.validation import NameProblem, check_name, parse_email, parse_phone
from words.text import ascii_digits, fold, format_number, format_percent_of, normalise


def test_normalise_strips_zero_width_spaces_and_composes() -> None:
    assert normalise("  សុខ\u200bសុភា \u200d ") == "សុខសុភា"
    assert normalise("Re\u0301union") == "Réunion"
    assert fold("Réunion!") == "reunion"


def test_khmer_digits_in_and_out() -> None:
    assert ascii_digits("០១២៣៤៥៦៧៨៩") == "0123456789"
    assert format_number(12345, "km") == "១២,៣៤៥"
    assert format_number(12345, "en") == "12,345"
    assert format_percent_of(1, 10_000, "en") == "0.01%"
    assert format_percent_of(2500, 10_000, "km") == "២៥%"


@pytest.mark.parametrize(
    ("typed", "name"),
    [("សុខ សុភា", "សុខ សុភា"), ("  Sok   Sophea ", "Sok Sophea"), ("Đặng Văn Lâm", "Đặng Văn Lâm"),
     ("Jean-Pierre O'Neil", "Jean-Pierre O'Neil"), ("ង៉ែត", "ង៉ែត")],
)  # fmt: skip
def test_names_accepted(typed: str, name: str) -> None:
    assert check_name(typed) == (name, None)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [("1234", NameProblem.DIGITS), ("១២៣៤", NameProblem.DIGITS), ("A", NameProblem.TOO_SHORT),
     ("a" * 101, NameProblem.TOO_LONG), ("see t.me/spam", NameProblem.LINK),
     ("Sok\x00Dara", NameProblem.SYMBOLS), ("Иван Петров", NameProblem.SYMBOLS),
     ("😀😀", NameProblem.SYMBOLS), ("\u200b\u200b", NameProblem.TOO_SHORT)],
)  # fmt: skip
def test_names_refused(typed: str, problem: NameProblem) -> None:
    assert check_name(typed) == (None, problem)


def test_phone_numbers_are_read_in_any_digits_and_stored_in_e164() -> None:
    assert parse_phone("០១២ ៣៤៥ ៦៧៨", "KH") == "+85512345678"
    assert parse_phone("+1 (206) 555-0100", "FR") == "+12065550100"
    assert parse_phone("00 33 1 42 68 53 00", "US") == "+33142685300"
    assert parse_phone("12", "US") is None
    assert parse_phone("call me", "US") is None


def test_email_syntax() -> None:
    assert parse_email("Sok@Example.ORG") == "Sok@example.org"
    assert parse_email("sok@") is None
    assert parse_email("sok at example.org") is None


@pytest.mark.parametrize(
    ("typed", "exact", "close"),
    [("France", "FR", []), ("បារាំង", "FR", []), ("USA", "US", []), ("Frnace", None, ["FR"]),
     ("Vietnam", "VN", []), ("zzzz", None, [])],
)  # fmt: skip
def test_countries_match_in_khmer_and_english(
    typed: str, exact: str | None, close: list[str]
) -> None:
    assert places.match_country(typed) == (exact, close)


def test_regions_are_named_the_way_organisers_search_for_them() -> None:
    assert places.canonical_region("US", "Washington State") == "Washington"
    assert places.canonical_region("US", "Washington, DC") == "District of Columbia"
    assert places.canonical_region("US", "Lowell, MA") == "Massachusetts"
    assert places.canonical_region("US", "Long Beach") == "Long Beach"
    assert places.canonical_region("FR", "Paris") == "Paris"


def test_provinces() -> None:
    assert len(places.provinces()) == 25
    assert places.match_province("ភ្នំពេញ") == "12"
    assert places.match_province("Siem Reap") == "17"
    assert places.match_province("ខេត្តកំពត") == "07"
    assert places.match_province("Atlantis") is None
    assert places.province_name("17", "km") == "សៀមរាប"


def test_commands_and_text_are_told_apart() -> None:
    assert Incoming.message("/start abc") == Incoming(Kind.COMMAND, text="abc", command="start")
    assert Incoming.message("/Sign@petition_bot").command == "sign"
    assert Incoming.message("/ ").kind is Kind.TEXT
    assert Incoming.message("/start", forwarded=True).kind is Kind.TEXT
