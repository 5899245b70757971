"""Whom a message goes to and when: the audience filters (country, regions, province of
birth, language, signers only) typed or picked by an organiser, and the time it is to go.
Broadcasts use them today; anything else sent to the people who opted in can too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from db import broadcasts as store
from handlers.reading import places
from words.i18n import N_
from words.text import ascii_digits, fold, format_day, khmer_digits, normalise

DEFAULT_ZONE = "Asia/Phnom_Penh"
LANGUAGE_NAMES = {"km": "ភាសាខ្មែរ", "en": "English"}
_FILTER_PART = re.compile(r"([A-Za-z_]+)\s*=\s*(.*?)(?=\s+[A-Za-z_]+\s*=|$)", re.DOTALL)
_WHEN = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+|T)(\d{1,2})[:.h](\d{2})(?:\s+([A-Za-z_+\-/0-9]+))?"
)
_LANGUAGE_WORDS = {"km": "km", "khmer": "km", "ខ្មែរ": "km", "ភាសាខ្មែរ": "km",
                   "en": "en", "english": "en", "អង់គ្លេស": "en"}  # fmt: skip


def describe(audience: store.Audience, gettext: Callable[[str], str], language: str) -> str:
    """Who an audience is, in a few lines."""
    _ = gettext
    lines = [
        _("Signers who asked for news")
        if audience.needs_signature
        else _("Everyone who asked for news (signers or not)")
    ]
    if audience.languages:
        names = ", ".join(LANGUAGE_NAMES.get(code, code) for code in audience.languages)
        lines.append(_("Reading: {languages}").format(languages=names))
    if audience.countries or audience.regions:
        where = [places.country_name(code, language) for code in audience.countries]
        where += [
            f"{html.escape(region)} ({places.country_name(country, language)})"
            for country, region in audience.regions
        ]
        lines.append(_("Living in: {places}").format(places=", ".join(where)))
    if audience.provinces:
        born = [_province(code, gettext, language) for code in audience.provinces]
        lines.append(_("Born in: {provinces}").format(provinces=", ".join(born)))
    return "\n".join(f"• {line}" for line in lines)


def _province(code: str, gettext: Callable[[str], str], language: str) -> str:
    if code == places.ABROAD:
        return gettext("outside Cambodia")
    return places.province_name(code, language)


_KEYS = {"country": "country", "countries": "country", "region": "region",
         "regions": "region", "province": "province", "provinces": "province",
         "language": "language", "languages": "language", "lang": "language"}  # fmt: skip
_SIGNERS = re.compile(r"\bsigners(?:\s+only)?\b", re.IGNORECASE)
# Problems with a typed filter, shown with the part that could not be read.
UNREADABLE = N_("I could not read “{part}”. A filter looks like country=US or province=Battambang.")
NO_COUNTRY = N_("I do not know the country “{part}”.")
NO_PROVINCE = N_("I do not know the province “{part}”.")
NO_LANGUAGE = N_("The languages are km and en, not “{part}”.")
ONE_COUNTRY = N_("Regions need exactly one country, as in country=US region=California,Washington.")


def parse_audience(text: str, audience: store.Audience) -> store.Audience | tuple[str, str]:
    """A typed filter applied to `audience` (`country=US region=California,Washington`,
    `province=Battambang`, `language=km`, `signers`); or (the problem, the part concerned)."""
    text = normalise(ascii_digits(text))
    signers = _SIGNERS.search(text) is not None
    text = _SIGNERS.sub(" ", text).strip()
    parts = _FILTER_PART.findall(text)
    leftover = _FILTER_PART.sub("", text).strip()
    if leftover or not (parts or signers):
        return UNREADABLE, leftover or text
    changes: dict[str, tuple[Any, ...]] = {}
    for word, value in parts:
        key = _KEYS.get(word.lower())
        values = [item.strip() for item in value.split(",") if item.strip()]
        if key is None or not values:
            return UNREADABLE, f"{word}={value}"
        found: list[Any] = []
        for name in values:
            if key == "country":
                code, _close = places.match_country(name)
            elif key == "province":
                abroad = fold(name) in ("abroad", "outside cambodia")
                code = places.ABROAD if abroad else places.match_province(name)
            elif key == "language":
                code = _LANGUAGE_WORDS.get(fold(name))
            else:
                code = name
            if code is None:
                problem = {"country": NO_COUNTRY, "province": NO_PROVINCE}.get(key, NO_LANGUAGE)
                return problem, name
            found.append(code)
        changes[key] = tuple(dict.fromkeys(found))
    countries, regions = audience.countries, audience.regions
    if "country" in changes:
        countries, regions = changes["country"], ()
    if "region" in changes:
        within = countries or tuple(dict.fromkeys(country for country, _r in audience.regions))
        if len(within) != 1:
            return ONE_COUNTRY, ""
        regions = tuple(
            (within[0], places.canonical_region(within[0], r)) for r in changes["region"]
        )
        countries = ()  # the regions say where within the country
    return store.Audience(
        languages=changes.get("language", audience.languages),
        countries=countries,
        regions=regions,
        provinces=changes.get("province", audience.provinces),
        signers_only=audience.signers_only or signers,
    )


# ---------------------------------------------------------------- when


def parse_when(text: str) -> tuple[datetime, str] | None:
    """`2027-04-14 08:00 Asia/Phnom_Penh` (Cambodia's time when no zone is given) as
    (the moment in UTC, the zone's name); None when it cannot be read."""
    found = _WHEN.fullmatch(normalise(ascii_digits(text)))
    if found is None:
        return None
    year, month, day, hour, minute = (int(found.group(i)) for i in range(1, 6))
    name = found.group(6) or DEFAULT_ZONE
    try:
        zone = ZoneInfo(name)
        local = datetime(year, month, day, hour, minute, tzinfo=zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return local.astimezone(UTC), name


def shown_time(moment: datetime, zone: str, language: str) -> str:
    """A moment as the admin reads it: "14 April 2027 08:00 (Asia/Phnom_Penh)"."""
    local = store.as_utc(moment).astimezone(ZoneInfo(zone))
    clock = local.strftime("%H:%M")
    if language == "km":
        clock = khmer_digits(clock)
    return f"{format_day(local.date(), language)} {clock} ({zone})"
