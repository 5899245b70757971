"""Business rules on what people type: names and contact details. Plain values in and out."""

from __future__ import annotations

import enum
import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from words.text import ascii_digits, normalise

NAME_MIN, NAME_MAX = 2, 100
PHONE_MASK, EMAIL_MASK = "[phone]", "[e-mail]"
TEXT_MAX = 100  # region and other short answers

_LINK = re.compile(r"(https?://|www\.|t\.me/|\.(com|org|net|info|kh)\b|@\w)", re.IGNORECASE)
_NAME_PUNCTUATION = set(" -'.’")
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"'.]+")
# Seven digits or more, however they are spaced or bracketed: a number nobody types for any
# other reason in a question or a place name.
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s().\-/]{0,3}\d){6,}")
# National formats differ by country: the matcher looks for each where signers live (a
# number written with its + is found whatever the region).
_PHONE_REGIONS = ("KH", "US", "CA", "FR", "AU", "NZ", "GB", "DE", "CH", "BE", "TH", "KR", "JP",
                  "MY", "SG")  # fmt: skip


class NameProblem(enum.Enum):
    """Why a typed name was not taken."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    LINK = "link"
    DIGITS = "digits"
    SYMBOLS = "symbols"


def _is_name_char(char: str) -> bool:
    if char in _NAME_PUNCTUATION:
        return True
    if "\u1780" <= char <= "\u17ff" or "\u19e0" <= char <= "\u19ff":
        return not ("\u17e0" <= char <= "\u17e9")  # Khmer letters and signs, not Khmer digits
    category = unicodedata.category(char)
    if category in {"Mn", "Mc"}:
        return True
    return category.startswith("L") and "LATIN" in unicodedata.name(char, "")


def check_name(text: str) -> tuple[str | None, NameProblem | None]:
    """(the cleaned name, None) when acceptable, else (None, why not)."""
    if any(
        unicodedata.category(char) in {"Cc", "Cf"} and char not in "\u200b\u200c\u200d\ufeff"
        for char in text
    ):
        return None, NameProblem.SYMBOLS
    name = normalise(text)
    if _LINK.search(name):
        return None, NameProblem.LINK
    if any(char.isdigit() for char in name):
        return None, NameProblem.DIGITS
    if len(name) > NAME_MAX:
        return None, NameProblem.TOO_LONG
    if not all(_is_name_char(char) for char in name):
        return None, NameProblem.SYMBOLS
    letters = sum(1 for char in name if char not in _NAME_PUNCTUATION)
    if len(name) < NAME_MIN or letters < 2:
        return None, NameProblem.TOO_SHORT
    return name, None


def check_short_text(text: str) -> str | None:
    """A short free answer (a city, a state), cleaned; None if empty, too long or a link."""
    value = normalise(text)
    if not value or len(value) > TEXT_MAX or _LINK.search(value):
        return None
    if any(unicodedata.category(char).startswith("C") for char in value):
        return None
    return mask_contacts(value)


def parse_phone(text: str, country: str | None) -> str | None:
    """A valid phone number in E.164 (+85512345678), reading Khmer digits; None if not one."""
    raw = ascii_digits(normalise(text))
    if not re.fullmatch(r"[+\d][\d\s().\-]{5,24}", raw):
        return None
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else (country or "KH"))
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_shared_phone(raw: str) -> str | None:
    """A phone number shared through the platform (often without its leading +)."""
    digits = ascii_digits(raw).strip()
    return parse_phone(digits if digits.startswith("+") else "+" + digits, None)


def parse_email(text: str) -> str | None:
    """A syntactically valid e-mail address, normalised; None if not one."""
    value = normalise(text)
    if "@" not in value or " " in value:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def mask_contacts(text: str) -> str:
    """`text` with every phone number and e-mail address replaced by a placeholder.

    What people type freely (a question, a place) is personal data too: "call me on +855 12
    345 678" must not be kept as typed. Run before anything typed is stored.
    """
    text = normalise(text)
    plain = ascii_digits(text)  # Khmer digits are one character each: the offsets stay true
    spans = [(*found.span(), EMAIL_MASK) for found in _EMAIL.finditer(plain)]
    for region in _PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(plain, region, phonenumbers.Leniency.VALID)
        spans += [(found.start, found.end, PHONE_MASK) for found in matcher]
    spans += [(*found.span(), PHONE_MASK) for found in _DIGIT_RUN.finditer(plain)]
    merged: list[tuple[int, int, str]] = []
    for start, end, mask in sorted(spans):
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            kind = EMAIL_MASK if EMAIL_MASK in (mask, last[2]) else PHONE_MASK
            merged[-1] = (last[0], max(end, last[1]), kind)
        else:
            merged.append((start, end, mask))
    for start, end, mask in reversed(merged):
        text = text[:start] + mask + text[end:]
    return text
