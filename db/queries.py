"""Query functions: keyword-only arguments, plain results."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, case, delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from db.dialect import insert_ignoring_conflicts, locks_rows, mark_deleted
from db.models import (
    Admin,
    Approval,
    AuditEntry,
    Counter,
    OutboxMessage,
    PendingReply,
    Signature,
    UnansweredQuestion,
    User,
    utcnow,
)

# Share codes avoid letters that read alike on a poster (0/O, 1/l/I).
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(slots=True)
class UserState:
    """A person's row as handlers use it: plain values, saved back with `save_users`."""

    id: int
    channel: str
    external_id: str
    language: str | None
    step: str
    draft: dict[str, Any]
    referred_by: str | None
    share_code: str | None
    updates_opt_in: bool
    last_seen_at: datetime
    recent_updates: list[str]
    created_at: datetime
    blocked: bool
    agreed_at: datetime | None = None
    burst_started_at: datetime | None = None  # the flood limit's count (bot/flood.py)
    burst_count: int = 0
    signature_id: int | None = None  # read with the row; not written back
    admin_row: bool = False  # an admin added from the chat (read with the row)
    _saved: tuple[Any, ...] = field(default=(), repr=False)

    def snapshot(self) -> tuple[Any, ...]:
        """The values that `save_users` writes back (handlers assign new values, never
        change a dict or list in place, so a snapshot shows every change)."""
        return tuple(getattr(self, name) for name in _SAVED)


# What a conversation may change on a person's row.
_SAVED = ("language", "step", "draft", "referred_by", "share_code", "updates_opt_in",
          "last_seen_at", "recent_updates", "agreed_at", "burst_started_at",
          "burst_count")  # fmt: skip
# Admins are Telegram ids; the console chat acts as the Telegram user of the same id.
ADMIN_CHANNEL = "telegram"
ADMIN_CHANNELS = ("telegram", "console")


_USERS: Table = User.__table__  # type: ignore[assignment]
_SIGNATURES: Table = Signature.__table__  # type: ignore[assignment]
_ADMINS: Table = Admin.__table__  # type: ignore[assignment]
_USER_COLUMNS = [
    *(_USERS.c[name] for name in UserState.__dataclass_fields__ if name in _USERS.c),
    _SIGNATURES.c.id,
    _ADMINS.c.id.is_not(None),
]
_USERS_SIGNATURES_ADMINS = _USERS.outerjoin(_SIGNATURES).outerjoin(
    _ADMINS,
    and_(
        _ADMINS.c.channel == ADMIN_CHANNEL,
        _ADMINS.c.external_id == _USERS.c.external_id,
        _USERS.c.channel.in_(ADMIN_CHANNELS),
    ),
)
# The news choice is also changed outside the conversation (a broadcast worker opts out a
# person who blocked the bot), so it is written only when the conversation changed it: a
# row saved for another reason keeps what the worker wrote meanwhile.
_SHARED = "updates_opt_in"
_SAVE_USER = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("user_id"))
    .values(
        {
            **{name: bindparam(name) for name in _SAVED if name != _SHARED},
            _SHARED: case(
                (bindparam("shared_changed"), bindparam(_SHARED)), else_=_USERS.c[_SHARED]
            ),
        }
    )
)
_SHARED_AT = _SAVED.index(_SHARED)


def person_statements(channel: str, ids: Sequence[str]) -> tuple[Select[Any], Select[Any]]:
    """The statements that load people's rows: (lock them, read them with their signature
    and admin rights). Tests read their plans."""
    where = (_USERS.c.channel == channel, _USERS.c.external_id.in_(list(ids)))
    lock = select(_USERS.c.id).where(*where).order_by(_USERS.c.id).with_for_update()
    read = select(*_USER_COLUMNS).select_from(_USERS_SIGNATURES_ADMINS).where(*where)
    return lock, read


async def load_users(
    session: AsyncSession, *, identities: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], UserState]:
    """The users for (channel, id) pairs, created on first contact, locked for this transaction."""
    wanted = set(identities)

    async def fetch(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], UserState]:
        found: dict[tuple[str, str], UserState] = {}
        for channel in sorted({channel for channel, _ in pairs}):
            ids = sorted(external_id for each, external_id in pairs if each == channel)
            lock, read = person_statements(channel, ids)
            if locks_rows(session):
                # Lock first, always in the same order (two processes then never wait for
                # each other in a circle), and only then read: under READ COMMITTED a
                # statement that had to wait for a lock still reads its joins as they were
                # when it began, so a signature another process just committed would be
                # missed. The read below starts after the wait.
                await session.execute(lock)
            for row in await session.execute(read):
                user = UserState(*row)
                user._saved = user.snapshot()
                found[(user.channel, user.external_id)] = user
        return found

    users = await fetch(wanted)
    missing = wanted - users.keys()
    if missing:
        now = utcnow()
        rows = [
            {"channel": channel, "external_id": external_id, "step": "new", "draft": {},
             "updates_opt_in": False, "created_at": now, "last_seen_at": now,
             "recent_updates": []}
            for channel, external_id in sorted(missing)
        ]  # fmt: skip
        await session.execute(insert_ignoring_conflicts(session, _USERS), rows)
        users.update(await fetch(missing))
    return users


async def save_users(session: AsyncSession, *, users: Iterable[UserState]) -> int:
    """Write back the users whose values changed, in one statement; returns how many."""
    changed = []
    for user in users:
        values = user.snapshot()
        if values != user._saved:
            shared_changed = values[_SHARED_AT] != user._saved[_SHARED_AT]
            changed.append(
                {"user_id": user.id, "shared_changed": shared_changed,
                 **dict(zip(_SAVED, values, strict=True))}
            )  # fmt: skip
            user._saved = values
    if changed:
        await session.execute(_SAVE_USER, changed)
    return len(changed)


async def user_language(session: AsyncSession, *, channel: str, external_id: str) -> str | None:
    """The language a user chose, if any."""
    query = select(User.language).where(User.channel == channel, User.external_id == external_id)
    return (await session.execute(query)).scalar_one_or_none()


async def find_signature(session: AsyncSession, *, user_id: int) -> Signature | None:
    """The user's signature, if they signed."""
    query = select(Signature).where(Signature.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def add_signature(
    session: AsyncSession, *, user: UserState, fields: dict[str, Any]
) -> int | None:
    """Sign for `user` once: the new signature's id, or None when one exists (a double confirm)."""
    now = utcnow()
    row = {
        "user_id": user.id, "channel": user.channel, "language": user.language or "km",
        "source": "chat", "referrer_code": user.referred_by, "created_at": now,
        "updated_at": now, "number": await take_numbers(session, count=1), **fields,
    }  # fmt: skip
    statement = insert_ignoring_conflicts(session, _SIGNATURES, (_SIGNATURES.c.id,))
    signature_id: int | None = (await session.execute(statement, [row])).scalar_one_or_none()
    if signature_id is not None:
        await count_signatures(session, 1)
        await session.execute(update(_USERS).where(_USERS.c.id == user.id).values(signed=True))
    return signature_id


SIGNERS = "signers"
COUNTED = "counted"


async def take_numbers(session: AsyncSession, *, count: int) -> int:
    """Take `count` signer numbers; the first. The counter's row stays locked until the
    transaction ends, so two processes never take the same one (a number taken by a
    transaction that then rolls back, or by a double confirm, is simply never shown)."""
    taken = await session.execute(
        update(Counter)
        .where(Counter.name == SIGNERS)
        .values(value=Counter.value + count)
        .returning(Counter.value)
    )
    last = taken.scalar_one_or_none()
    if last is None:  # a database made before the counter: start it
        await session.execute(
            insert_ignoring_conflicts(session, Counter.__table__),  # type: ignore[arg-type]
            [{"name": SIGNERS, "value": 0}],
        )
        return await take_numbers(session, count=count)
    return int(last) - count + 1


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
    return await _delete_signatures(session, _SIGNATURES.c.user_id == user_id) > 0


async def _delete_signatures(session: AsyncSession, where: Any) -> int:
    """Delete signatures, keeping the count of those counted and their signers' marks; how
    many went."""
    gone = (
        await session.execute(
            delete(_SIGNATURES)
            .where(where)
            .returning(_SIGNATURES.c.invalidated_at, _SIGNATURES.c.user_id)
        )
    ).all()
    await count_signatures(session, -sum(1 for when, _ in gone if when is None))
    signers = [user_id for _, user_id in gone if user_id is not None]
    if signers:
        await session.execute(update(_USERS).where(_USERS.c.id.in_(signers)).values(signed=False))
    return len(gone)


async def count_signatures(session: AsyncSession, change: int) -> None:
    """Add `change` to the signatures counted, in the caller's transaction (whose row lock
    orders the processes). Every statement that adds, deletes or sets aside signatures
    calls this with what it did."""
    # The row is made by migration 0014; without it the count is taken the slow way.
    if change:
        await session.execute(
            update(Counter).where(Counter.name == COUNTED).values(value=Counter.value + change)
        )


async def counted_signatures(session: AsyncSession) -> int:
    """The number of signatures counted (those set aside by an admin are not), in O(1)."""
    value = (
        await session.execute(select(Counter.value).where(Counter.name == COUNTED))
    ).scalar_one_or_none()
    if value is None:
        counted = select(func.count(Signature.id)).where(Signature.invalidated_at.is_(None))
        return int((await session.execute(counted)).scalar_one())
    return int(value)


async def standing(session: AsyncSession, *, signature_id: int) -> tuple[int, int]:
    """(the signer's number, the number of signatures counted: those set aside by an admin
    are not)."""
    number = (
        await session.execute(select(Signature.number).where(Signature.id == signature_id))
    ).scalar_one_or_none()
    return int(number or 0), await counted_signatures(session)


def ensure_share_code(user: UserState) -> str:
    """The user's personal share code, made on first need.

    Ten characters from 31 give 8e14 codes: a clash is too rare to look up every time, and
    the unique constraint turns one into a failed (and retried) update, never a shared code.
    """
    if user.share_code is None:
        user.share_code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return user.share_code


async def record_unanswered(
    session: AsyncSession, *, user_id: int, text: str, language: str
) -> None:
    """Keep a question nobody answered yet, linked to who asked (for their /mydata and
    /delete; organisers never see who). `text` must come with its contacts masked."""
    session.add(
        UnansweredQuestion(user_id=user_id, text=text[:500], language=language, asked_at=utcnow())
    )
    await session.flush()


async def questions_of(session: AsyncSession, *, user_id: int) -> list[UnansweredQuestion]:
    """A person's own unanswered questions, oldest first (for /mydata)."""
    query = (
        select(UnansweredQuestion)
        .where(UnansweredQuestion.user_id == user_id)
        .order_by(UnansweredQuestion.id)
    )
    return list((await session.execute(query)).scalars())


async def latest_unanswered(session: AsyncSession, *, limit: int) -> list[UnansweredQuestion]:
    """The most recent unanswered questions, newest first."""
    query = select(UnansweredQuestion).order_by(UnansweredQuestion.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def count_unanswered(session: AsyncSession) -> int:
    """How many questions are waiting for organisers."""
    return (await session.execute(select(func.count(UnansweredQuestion.id)))).scalar_one()


async def set_signature_news(session: AsyncSession, *, user_id: int, on: bool) -> None:
    """Record on the signature (if any) whether its signer wants news."""
    await session.execute(
        update(_SIGNATURES).where(_SIGNATURES.c.user_id == user_id).values(updates_opt_in=on)
    )


async def erase_person(session: AsyncSession, *, user_id: int) -> None:
    """Delete everything kept about a person: their signature, answers, questions, the news
    sent to them, and their state (the file forgets them too: db/dialect.forget_deleted)."""
    await session.execute(delete(UnansweredQuestion).where(UnansweredQuestion.user_id == user_id))
    await session.execute(delete(OutboxMessage).where(OutboxMessage.user_id == user_id))
    await session.execute(delete(PendingReply).where(PendingReply.user_id == user_id))
    await _delete_signatures(session, _SIGNATURES.c.user_id == user_id)
    await session.execute(delete(_USERS).where(_USERS.c.id == user_id))
    session.info.setdefault(ERASED, set()).add(user_id)
    mark_deleted(session)


def erased_in(session: AsyncSession) -> set[int]:
    """The people erased in this session's transaction (nothing more is kept for them)."""
    return set(session.info.get(ERASED, ()))


async def set_blocked(
    session: AsyncSession, *, channel: str, external_id: str, blocked: bool
) -> None:
    """Block or unblock a platform user id (a row is made if they never wrote)."""
    users = await load_users(session, identities=[(channel, external_id)])
    await session.execute(
        update(_USERS)
        .where(_USERS.c.id == users[(channel, external_id)].id)
        .values(blocked=blocked)
    )


@dataclass(frozen=True, slots=True)
class SignatureFilter:
    """Which signatures an admin means: by country, share code and time window."""

    country: str | None = None
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_draft(self) -> dict[str, Any]:
        """The filter as JSON, kept in a conversation's draft until the admin confirms."""
        return {
            "country": self.country,
            "code": self.code,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_draft(cls, saved: dict[str, Any]) -> SignatureFilter:
        """The filter `to_draft` kept."""

        def moment(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            country=saved.get("country"),
            code=saved.get("code"),
            since=moment(saved.get("since")),
            until=moment(saved.get("until")),
        )

    def where(self, *, counted_only: bool = True) -> list[Any]:
        """The filter as SQL conditions (unless told otherwise: not already set aside)."""
        conditions: list[Any] = [Signature.invalidated_at.is_(None)] if counted_only else []
        if self.country:
            conditions.append(Signature.country == self.country)
        if self.code:
            conditions.append(Signature.referrer_code == self.code)
        if self.since:
            conditions.append(Signature.created_at >= self.since)
        if self.until:
            conditions.append(Signature.created_at < self.until)
        return conditions


async def count_matching(session: AsyncSession, *, where: SignatureFilter) -> int:
    """How many counted signatures a filter matches."""
    query = select(func.count(Signature.id)).where(*where.where())
    return (await session.execute(query)).scalar_one()


async def invalidate(session: AsyncSession, *, where: SignatureFilter) -> int:
    """Set the matching signatures aside (kept for review, no longer counted)."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(Signature)
        .where(*where.where())  # counted ones only: each is counted off once
        .values(invalidated_at=utcnow())
    )
    await count_signatures(session, -result.rowcount)
    return result.rowcount


ANONYMOUS = "(anonymised)"
AUDITED = "audited"  # session.info: audit rows written in this session
ERASED = "erased"  # session.info: ids of the people erased in this transaction
# Steps at which nothing is pending: a draft kept at any other step is an unfinished answer.
_RESTING = ("idle", "new")


async def anonymise(session: AsyncSession, *, before: datetime, apply: bool) -> int:
    """Signatures made before a day, cut loose from whoever made them; with apply=False,
    only counted.

    What stays is what the counts need: country, region, province, language, channel and the
    day. Names and contacts go, and so does every way back to the person: the link to their
    row (which goes too, with their platform id, share code, draft, questions and the news
    sent to them), the share code they came through, and the time of day. Drafts and
    questions of anyone last seen before the day go as well. A person anonymised who writes
    again is someone new.
    """
    which = (_SIGNATURES.c.created_at < before) & (
        (_SIGNATURES.c.full_name != ANONYMOUS) | _SIGNATURES.c.user_id.is_not(None)
    )
    count = (await session.execute(select(func.count()).where(which))).scalar_one()
    if not apply:
        return int(count)
    rows = (
        await session.execute(
            select(_SIGNATURES.c.id, _SIGNATURES.c.user_id, _SIGNATURES.c.created_at).where(which)
        )
    ).all()
    people = [user_id for _id, user_id, _at in rows if user_id is not None]
    for start in range(0, len(people), 500):
        chunk = people[start : start + 500]
        # Their share codes go too, wherever someone else's row still names them.
        codes = select(_USERS.c.share_code).where(
            _USERS.c.id.in_(chunk), _USERS.c.share_code.is_not(None)
        )
        await session.execute(
            update(_USERS).where(_USERS.c.referred_by.in_(codes)).values(referred_by=None)
        )
        await session.execute(
            update(_SIGNATURES)
            .where(_SIGNATURES.c.referrer_code.in_(codes))
            .values(referrer_code=None)
        )
        await session.execute(
            update(_SIGNATURES).where(_SIGNATURES.c.user_id.in_(chunk)).values(user_id=None)
        )
        await session.execute(
            delete(UnansweredQuestion).where(UnansweredQuestion.user_id.in_(chunk))
        )
        await session.execute(delete(OutboxMessage).where(OutboxMessage.user_id.in_(chunk)))
        await session.execute(delete(PendingReply).where(PendingReply.user_id.in_(chunk)))
        await session.execute(delete(_USERS).where(_USERS.c.id.in_(chunk)))
    # The day, not the moment: a time to the second could be matched with a platform's log.
    by_day: dict[datetime, list[int]] = {}
    for signature_id, _user, at in rows:
        day = datetime(at.year, at.month, at.day, 12, tzinfo=UTC)
        by_day.setdefault(day, []).append(signature_id)
    for day, ids in by_day.items():
        for start in range(0, len(ids), 500):
            await session.execute(
                update(_SIGNATURES)
                .where(_SIGNATURES.c.id.in_(ids[start : start + 500]))
                .values(
                    full_name=ANONYMOUS, phone=None, email=None, contact_hash=None,
                    referrer_code=None, created_at=day, updated_at=day,
                )
            )  # fmt: skip
    await expire(session, questions_before=before, drafts_before=before)
    mark_deleted(session)
    return int(count)


async def expire(
    session: AsyncSession, *, questions_before: datetime, drafts_before: datetime
) -> tuple[int, int]:
    """Retention of what people typed: unanswered questions asked before one moment, and
    unfinished drafts (a name, a sealed contact) of people last seen before another.
    Returns (questions deleted, drafts cleared)."""
    asked = await session.execute(
        delete(UnansweredQuestion).where(UnansweredQuestion.asked_at < questions_before)
    )
    # Replies never confirmed sent (the person's update never came again) go after a day.
    await session.execute(
        delete(PendingReply).where(PendingReply.created_at < utcnow() - timedelta(days=1))
    )
    stale = _USERS.c.last_seen_at < drafts_before
    pending = _USERS.c.step.not_in(_RESTING)
    ids = list((await session.execute(select(_USERS.c.id).where(stale, pending))).scalars())
    for start in range(0, len(ids), 500):
        await session.execute(
            update(_USERS)
            .where(_USERS.c.id.in_(ids[start : start + 500]))
            .values(step="idle", draft={})
        )
    questions = int(asked.rowcount or 0)  # type: ignore[attr-defined]
    if questions or ids:
        mark_deleted(session)
    return questions, len(ids)


async def signing_spikes(
    session: AsyncSession, *, now: datetime, minimum: int, factor: float
) -> list[tuple[str, int, float]]:
    """Countries whose signatures in the last hour are far above their usual hourly rate:
    (country, last hour, usual per hour over the week before)."""
    hour_ago, week_ago = now - timedelta(hours=1), now - timedelta(days=7, hours=1)
    # Paper signatures come in bulk with their own dates: an import is not a spike.
    counted = Signature.invalidated_at.is_(None) & (Signature.source != "import")
    recent = dict(
        (
            await session.execute(
                select(Signature.country, func.count())
                .where(counted, Signature.created_at >= hour_ago)
                .group_by(Signature.country)
            )
        ).all()
    )
    if not recent:
        return []
    before = dict(
        (
            await session.execute(
                select(Signature.country, func.count())
                .where(counted, Signature.created_at >= week_ago, Signature.created_at < hour_ago)
                .group_by(Signature.country)
            )
        ).all()
    )
    spikes = []
    for country, count in recent.items():
        usual = before.get(country, 0) / (7 * 24)
        if count >= max(minimum, factor * usual):
            spikes.append((country, int(count), usual))
    return sorted(spikes, key=lambda spike: -spike[1])


async def admin_languages(
    session: AsyncSession, *, channel: str, ids: Sequence[str]
) -> dict[str, str]:
    """The language each admin chose (Khmer for those who never did)."""
    rows = await session.execute(
        select(_USERS.c.external_id, _USERS.c.language).where(
            _USERS.c.channel == channel, _USERS.c.external_id.in_(list(ids))
        )
    )
    found = {external_id: language or "km" for external_id, language in rows.all()}
    return {admin: found.get(admin, "km") for admin in ids}


async def all_admins(session: AsyncSession, *, bootstrap: Iterable[str]) -> list[str]:
    """Every admin's Telegram id: those of ADMIN_IDS, then those added from the chat."""
    found = list(dict.fromkeys(str(admin) for admin in bootstrap))
    rows = await session.execute(
        select(_ADMINS.c.external_id)
        .where(_ADMINS.c.channel == ADMIN_CHANNEL)
        .order_by(_ADMINS.c.added_at)
    )
    found += [external_id for (external_id,) in rows if external_id not in found]
    return found


async def added_admins(session: AsyncSession) -> list[Admin]:
    """The admins added from the chat, oldest first."""
    rows = await session.execute(
        select(Admin).where(Admin.channel == ADMIN_CHANNEL).order_by(Admin.added_at)
    )
    return list(rows.scalars())


async def add_admin(session: AsyncSession, *, external_id: str, added_by: str) -> bool:
    """Make someone an admin; False when they already were one."""
    result = await session.execute(
        insert_ignoring_conflicts(session, _ADMINS, (_ADMINS.c.id,)),
        {"channel": ADMIN_CHANNEL, "external_id": external_id, "added_by": added_by,
         "added_at": utcnow()},
    )  # fmt: skip
    return result.first() is not None


async def is_added_admin(session: AsyncSession, *, external_id: str) -> bool:
    """Whether a Telegram id is an admin added from the chat."""
    query = select(_ADMINS.c.id).where(
        _ADMINS.c.channel == ADMIN_CHANNEL, _ADMINS.c.external_id == external_id
    )
    return (await session.execute(query)).first() is not None


async def remove_admin(session: AsyncSession, *, external_id: str) -> bool:
    """Take someone's admin rights away; False when they had none from the chat."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(Admin).where(Admin.channel == ADMIN_CHANNEL, Admin.external_id == external_id)
    )
    return bool(result.rowcount)


async def audit(session: AsyncSession, *, actor: str, action: str, **detail: Any) -> None:
    """Record an admin action. `detail` holds options (a filter, a count), never a name."""
    session.add(AuditEntry(actor=actor, action=action, detail=detail, at=utcnow()))
    session.info[AUDITED] = session.info.get(AUDITED, 0) + 1
    await session.flush()


def audits_so_far(session: AsyncSession) -> int:
    """How many audit rows this session has written (to see whether an action wrote one)."""
    return int(session.info.get(AUDITED, 0))


async def purge_audit(session: AsyncSession, *, before: datetime) -> int:
    """Retention: admin actions recorded before a moment go. Returns how many."""
    gone: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        delete(AuditEntry).where(AuditEntry.at < before)
    )
    return int(gone.rowcount or 0)


async def latest_audit(session: AsyncSession, *, limit: int) -> list[AuditEntry]:
    """The latest admin actions, newest first."""
    rows = await session.execute(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    )
    return list(rows.scalars())


async def ask_approval(
    session: AsyncSession, *, action: str, asked_by: str, detail: dict[str, Any]
) -> int:
    """Record an action waiting for a second owner; its id (for the buttons)."""
    approval = Approval(action=action, asked_by=asked_by, detail=detail, asked_at=utcnow())
    session.add(approval)
    await session.flush()
    return approval.id


async def decide_approval(
    session: AsyncSession, *, approval_id: int, decided_by: str, approve: bool, since: datetime
) -> Approval | None:
    """Approve or refuse a pending action, once, by someone other than who asked it, while
    it is fresh (asked after `since`); the approval as decided, or None when it cannot be
    (already decided, too old, their own, unknown)."""
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(Approval)
        .where(
            Approval.id == approval_id,
            Approval.status == "pending",
            Approval.asked_by != decided_by,
            Approval.asked_at >= since,
        )
        .values(
            status="approved" if approve else "refused", decided_by=decided_by, decided_at=utcnow()
        )
    )
    if not result.rowcount:
        return None
    return await session.get(Approval, approval_id, populate_existing=True)


async def keep_replies(
    session: AsyncSession, *, kept: Sequence[tuple[int, str, list[Any]]]
) -> list[int]:
    """Keep (user id, update key, replies as JSON) until they are sent; their ids."""
    rows = [
        PendingReply(user_id=user_id, update_key=key, replies=replies, created_at=utcnow())
        for user_id, key, replies in kept
    ]
    session.add_all(rows)
    await session.flush()
    return [row.id for row in rows]


async def kept_replies(
    session: AsyncSession, *, user_id: int, update_key: str
) -> tuple[int, list[Any]] | None:
    """The replies a handled update still has to send: (id, replies), or None."""
    query = select(PendingReply.id, PendingReply.replies).where(
        PendingReply.user_id == user_id, PendingReply.update_key == update_key
    )
    found = (await session.execute(query)).first()
    return (int(found[0]), list(found[1])) if found else None


async def replies_sent(session: AsyncSession, *, ids: Sequence[int]) -> None:
    """Forget replies that have been sent."""
    for start in range(0, len(ids), 500):
        await session.execute(
            delete(PendingReply).where(PendingReply.id.in_(list(ids[start : start + 500])))
        )
