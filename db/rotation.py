"""Sealing every stored contact again with the newest key (`petitionbot rotate-key`), while the
bot goes on talking to people.

Contacts are sealed in two places: signatures (phone, email) and the drafts of people who have
not signed yet (`draft["phone"]`, `draft["email"]`). The rotation walks them a batch of people
at a time, by users.id, then the signatures tied to nobody (from paper) by signatures.id. Each
batch is a short transaction of its own that first takes what a conversation takes before it
changes a person: on PostgreSQL the rows of the batch's people, in id order as
`queries.load_users` takes them, then their signatures; on SQLite the database's write lock.
Only then does it read, so what it writes back is what is stored, never a copy from before
someone's answer; and a conversation waits for one batch at most, never for the whole rotation.

A token already sealed with the newest key is left as it is: a rotation stopped half-way goes
on where it stopped, and a contact typed meanwhile is not touched. A pass that sealed anything
again is followed by another: on SQLite a conversation reads a person before it asks for the
write lock, so one that read someone while their batch ran writes back the token it read,
sealed with the older key, just after the batch; the next pass finds it. A pass that finds
nothing to do ends the rotation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.dialect import locks_rows
from db.models import Signature, User
from db.protect import ContactCipher

BATCH = 500  # people per transaction: a conversation waits for one batch at most
MAX_PASSES = 3  # a third pass that still finds old tokens means something keeps making them
# Seconds between two SQLite batches: longer than SQLite's longest nap (0.1 s) while it waits
# for the write lock, so a conversation that waited for a batch writes before the next one.
BREATHER = 0.15
CONTACTS = ("phone", "email")

_USERS: Table = User.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
# SQLite sends BEGIN only before the first write, and a read before it sees the database as it
# was: this write of nothing makes the batch a write transaction from its first statement
# (it waits, up to busy_timeout, while a conversation writes).
_WRITE_LOCK = update(_USERS).where(false()).values(id=_USERS.c.id)
_SAVE_DRAFT = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("user_id"))
    .values(draft=bindparam("new_draft", type_=_USERS.c.draft.type))
)
# Sealed again is not changed: the signature keeps its updated_at.
_SAVE_CONTACTS = (
    update(_SIGNATURES)
    .where(_SIGNATURES.c.id == bindparam("signature_id"))
    .values(
        phone=bindparam("new_phone"),
        email=bindparam("new_email"),
        updated_at=_SIGNATURES.c.updated_at,
    )
)
_HAS_CONTACT = _SIGNATURES.c.phone.is_not(None) | _SIGNATURES.c.email.is_not(None)


@dataclass(slots=True)
class Rotation:
    """How far a rotation has come; given to `progress` after every batch."""

    passes: int = 0  # passes begun over everything stored
    batches: int = 0  # batches written, over all passes
    looked_at: int = 0  # people, and signatures tied to nobody, looked at in this pass
    resealed: int = 0  # records (a signature, a draft) sealed again with the newest key
    unreadable: int = 0  # contacts no key opens, left as they were (in the last pass)
    last_pass: int = 0  # records the last pass sealed again: 0 when nothing was left


async def rotate_contacts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    cipher: ContactCipher,
    progress: Callable[[Rotation], None] | None = None,
    batch: int = BATCH,
) -> Rotation:
    """Seal every stored contact again with the newest key of `cipher`, one short transaction
    per batch of people; safe beside the bot, and safe to run again."""
    done = Rotation()
    while done.passes < MAX_PASSES:
        done.passes += 1
        done.looked_at = done.unreadable = 0
        before = done.resealed
        for step in (_people, _unattached):
            after: int | None = 0
            while after is not None:
                async with sessions() as session, session.begin():
                    waits = not locks_rows(session)
                    after = await step(session, cipher, after, batch, done)
                if after is not None:
                    done.batches += 1
                    if progress is not None:
                        progress(done)
                if waits:
                    await asyncio.sleep(BREATHER)
        done.last_pass = done.resealed - before
        if not done.last_pass:
            break
    return done


async def _people(
    session: AsyncSession, cipher: ContactCipher, after: int, size: int, done: Rotation
) -> int | None:
    """The next batch of people after id `after`: their drafts and their signatures. Returns
    the last id of the batch, None when no one is left."""
    if not locks_rows(session):
        await session.execute(_WRITE_LOCK)
    lock = (
        select(_USERS.c.id)
        .where(_USERS.c.id > after)
        .order_by(_USERS.c.id)
        .limit(size)
        .with_for_update()
    )
    ids = list((await session.execute(lock)).scalars())
    if not ids:
        return None
    done.looked_at += len(ids)
    # Read after the lock: under READ COMMITTED each statement sees what was committed
    # before it began, so the drafts below include every answer given before the lock.
    drafts = []
    for user_id, draft in await session.execute(
        select(_USERS.c.id, _USERS.c.draft).where(_USERS.c.id.in_(ids))
    ):
        if isinstance(draft, dict) and (sealed := _resealed(cipher, draft, done)):
            drafts.append({"user_id": user_id, "new_draft": {**draft, **sealed}})
    if drafts:
        await session.execute(_SAVE_DRAFT, drafts)
        done.resealed += len(drafts)
    await _signatures(session, cipher, _SIGNATURES.c.user_id.in_(ids), None, done)
    return ids[-1]


async def _unattached(
    session: AsyncSession, cipher: ContactCipher, after: int, size: int, done: Rotation
) -> int | None:
    """The next batch of signatures tied to nobody, after signature id `after`. Returns the
    last id of the batch, None when none is left."""
    if not locks_rows(session):
        await session.execute(_WRITE_LOCK)
    where = _SIGNATURES.c.user_id.is_(None) & (_SIGNATURES.c.id > after)
    return await _signatures(session, cipher, where, size, done)


async def _signatures(
    session: AsyncSession,
    cipher: ContactCipher,
    where: ColumnElement[bool],
    size: int | None,
    done: Rotation,
) -> int | None:
    """Lock the signatures with a contact that `where` picks (at most `size`), in id order, and
    seal theirs again; returns the last id, None when there were none."""
    query = (
        select(_SIGNATURES.c.id, _SIGNATURES.c.phone, _SIGNATURES.c.email)
        .where(where & _HAS_CONTACT)
        .order_by(_SIGNATURES.c.id)
        .limit(size)
        .with_for_update()
    )
    rows = (await session.execute(query)).all()
    if size is not None:
        done.looked_at += len(rows)
    changed = []
    for signature_id, phone, email in rows:
        sealed = _resealed(cipher, {"phone": phone, "email": email}, done)
        if sealed:
            changed.append(
                {"signature_id": signature_id, "new_phone": sealed.get("phone", phone),
                 "new_email": sealed.get("email", email)}
            )  # fmt: skip
    if changed:
        await session.execute(_SAVE_CONTACTS, changed)
        done.resealed += len(changed)
    return rows[-1][0] if rows else None


def _resealed(cipher: ContactCipher, tokens: Mapping[str, Any], done: Rotation) -> dict[str, str]:
    """The contact tokens among `tokens` that an older key sealed, sealed with the newest."""
    changed = {}
    for key in CONTACTS:
        token = tokens.get(key)
        if not token or not isinstance(token, str):
            continue
        sealed = cipher.reseal(token)
        if sealed is None:
            done.unreadable += 1  # no key opens it: left as it is, and reported
        elif sealed != token:
            changed[key] = sealed
    return changed
