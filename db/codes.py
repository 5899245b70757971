"""Share codes: volunteers' named codes, their counts, and finding any code."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_ignoring_conflicts
from db.models import Signature, User, VolunteerCode, utcnow
from db.queries import _CODE_ALPHABET
from words.text import fold

# Six characters from the look-alike-free alphabet of personal codes: 887 million codes,
# short enough to read out. Personal codes have ten, so the two kinds never meet (checked
# all the same).
CODE_LENGTH = 6
SHARE_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a /start link can carry (fullmatch)
_ATTEMPTS = 20

_CODES: Table = VolunteerCode.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_COUNTED = _SIGNATURES.c.invalidated_at.is_(None)


@dataclass(frozen=True, slots=True)
class CodeCount:
    """A volunteer code and the counted signatures that came through it."""

    code: str
    name: str
    created_at: datetime
    signatures: int


@dataclass(frozen=True, slots=True)
class FoundCode:
    """A share code that exists: a volunteer's (with its name) or a signer's own."""

    code: str
    kind: Literal["volunteer", "personal"]
    name: str | None = None


async def create_code(session: AsyncSession, *, name: str, created_by: str) -> str:
    """A new volunteer code named `name`; returns the code."""
    for _attempt in range(_ATTEMPTS):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))
        taken = await session.execute(select(_USERS.c.id).where(_USERS.c.share_code == code))
        if taken.first() is not None:
            continue
        added = await session.execute(
            insert_ignoring_conflicts(session, _CODES, (_CODES.c.id,)),
            [{"code": code, "name": name, "created_by": created_by, "created_at": utcnow()}],
        )
        if added.first() is not None:
            return code
    raise RuntimeError("no free share code found")  # 20 clashes in a row: not in this world


async def code_named(session: AsyncSession, *, name: str) -> str | None:
    """The code of the volunteer code with this name (case and accents aside), if any."""
    wanted = fold(name)
    rows = await session.execute(select(_CODES.c.code, _CODES.c.name).order_by(_CODES.c.id))
    return next((code for code, each in rows if fold(each) == wanted), None)


async def code_counts(session: AsyncSession) -> list[CodeCount]:
    """Every volunteer code with its counted signatures, the most successful first."""
    signatures = func.count(_SIGNATURES.c.id)
    rows = await session.execute(
        select(_CODES.c.code, _CODES.c.name, _CODES.c.created_at, signatures)
        .select_from(
            _CODES.outerjoin(
                _SIGNATURES, and_(_SIGNATURES.c.referrer_code == _CODES.c.code, _COUNTED)
            )
        )
        .group_by(_CODES.c.id, _CODES.c.code, _CODES.c.name, _CODES.c.created_at)
        .order_by(signatures.desc(), _CODES.c.created_at.desc(), _CODES.c.id.desc())
    )
    return [CodeCount(code, name, created_at, int(count)) for code, name, created_at, count in rows]


async def personal_link_signatures(session: AsyncSession) -> int:
    """Counted signatures that came through a signer's own link (not a volunteer code)."""
    query = select(func.count(_SIGNATURES.c.id)).where(
        _COUNTED, _SIGNATURES.c.referrer_code.in_(select(_USERS.c.share_code))
    )
    return int((await session.execute(query)).scalar_one())


async def find_code(session: AsyncSession, *, code: str) -> FoundCode | None:
    """The share code `code`, a volunteer's or a signer's, also when typed in capitals;
    None when nobody has it."""
    found = await _exact_code(session, code)
    if found is None and code.lower() != code:
        found = await _exact_code(session, code.lower())  # codes are made in lower case
    return found


async def _exact_code(session: AsyncSession, code: str) -> FoundCode | None:
    row = (await session.execute(select(_CODES.c.name).where(_CODES.c.code == code))).first()
    if row is not None:
        return FoundCode(code=code, kind="volunteer", name=row[0])
    personal = await session.execute(select(_USERS.c.id).where(_USERS.c.share_code == code))
    if personal.first() is not None:
        return FoundCode(code=code, kind="personal")
    return None
