"""Query functions: keyword-only arguments, plain results."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_ignoring_conflicts
from db.models import ProcessedUpdate, Signature, User, utcnow

# Share codes avoid letters that read alike on a poster (0/O, 1/l/I).
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


async def claim_update(session: AsyncSession, *, channel: str, key: str) -> bool:
    """Record that an update is being handled; False when it already was."""
    statement = insert_ignoring_conflicts(
        session, ProcessedUpdate, channel=channel, update_key=key, handled_at=utcnow()
    )
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


async def forget_updates(session: AsyncSession, *, older_than: timedelta) -> int:
    """Drop records of updates handled long ago (no platform redelivers them)."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(ProcessedUpdate).where(ProcessedUpdate.handled_at < utcnow() - older_than)
    )
    return result.rowcount


async def load_user(session: AsyncSession, *, channel: str, external_id: str) -> User:
    """The user for (channel, id), created on first contact, locked for this transaction."""
    query = (
        select(User)
        .where(User.channel == channel, User.external_id == external_id)
        .with_for_update()
    )
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        await session.execute(
            insert_ignoring_conflicts(
                session,
                User,
                channel=channel,
                external_id=external_id,
                step="new",
                draft={},
                updates_opt_in=False,
                created_at=utcnow(),
                last_seen_at=utcnow(),
            )
        )
        user = (await session.execute(query)).scalar_one()
    return user


async def find_signature(session: AsyncSession, *, user_id: int) -> Signature | None:
    """The user's signature, if they signed."""
    query = select(Signature).where(Signature.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def add_signature(session: AsyncSession, *, user: User, fields: dict[str, Any]) -> bool:
    """Sign for `user` once; False when a signature already exists (a double confirm)."""
    now = utcnow()
    statement = insert_ignoring_conflicts(
        session,
        Signature,
        user_id=user.id,
        channel=user.channel,
        language=user.language or "km",
        source="chat",
        referrer_code=user.referred_by,
        created_at=now,
        updated_at=now,
        **fields,
    )
    result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


async def update_signature(
    session: AsyncSession, *, signature: Signature, fields: dict[str, Any]
) -> None:
    """Change the answers on an existing signature."""
    for name, value in fields.items():
        setattr(signature, name, value)
    signature.updated_at = utcnow()
    await session.flush()


async def withdraw_signature(session: AsyncSession, *, user_id: int) -> bool:
    """Delete the user's signature; False when there was none."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(Signature).where(Signature.user_id == user_id)
    )
    return result.rowcount > 0


async def count_signatures(session: AsyncSession) -> int:
    """How many have signed."""
    return (await session.execute(select(func.count(Signature.id)))).scalar_one()


async def signer_number(session: AsyncSession, *, signature_id: int) -> int:
    """The signature's place in the list: 1 for the first still standing."""
    query = select(func.count(Signature.id)).where(Signature.id <= signature_id)
    return (await session.execute(query)).scalar_one()


async def ensure_share_code(session: AsyncSession, *, user: User) -> str:
    """The user's personal share code, made on first need."""
    while user.share_code is None:
        candidate = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        taken = await session.execute(select(User.id).where(User.share_code == candidate))
        if taken.first() is None:
            user.share_code = candidate
            await session.flush()
    return user.share_code


async def referrals(session: AsyncSession, *, code: str) -> int:
    """How many signatures came through a share code."""
    query = select(func.count(Signature.id)).where(Signature.referrer_code == code)
    return (await session.execute(query)).scalar_one()
