"""Four eyes: what one owner asks (an export with contacts) waits for another owner's
"Approve" or "Refuse" button, once, within a day. One stolen account is not the whole list.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from db import queries
from db.models import utcnow
from handlers.admin import exports
from handlers.admin.owners import tell_owners
from handlers.base import Context, Incoming, Kind, Reply
from words.i18n import N_

logger = logging.getLogger(__name__)

PREFIX = "ap:"
FRESH = timedelta(days=1)
REFUSED = N_("🔐 Owner {approver} refused the export with contacts that {actor} asked for.")


async def handle_button(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """An owner's answer to a request (`ap:ID:y` or `ap:ID:n`); None for any other input."""
    if incoming.kind is not Kind.BUTTON or not incoming.text.startswith(PREFIX):
        return None
    number, _sep, answer = incoming.text[len(PREFIX) :].partition(":")
    if not ctx.is_owner or not number.isdigit() or answer not in ("y", "n"):
        return None  # answered as a stale button
    _ = ctx.gettext
    approval = await queries.decide_approval(
        ctx.session,
        approval_id=int(number),
        decided_by=ctx.actor,
        approve=answer == "y",
        since=utcnow() - FRESH,
    )
    if approval is None:
        return [
            Reply(
                _(
                    "This request cannot be answered: another owner has already answered it, "
                    "it is more than a day old, or it is your own."
                )
            )
        ]
    asker = approval.asked_by.partition(":")[2]
    action = "export_contacts_approved" if answer == "y" else "export_contacts_refused_by"
    await queries.audit(ctx.session, actor=ctx.actor, action=action, approval=approval.id)
    logger.warning(
        "an owner %s an export with contacts", "approved" if answer == "y" else "refused"
    )
    if answer == "n":
        told = await tell_owners(
            ctx, REFUSED, including_me=True, approver=ctx.user.external_id, actor=asker
        )
        return [Reply(_("Refused: no file was made.")), *told]
    detail = approval.detail
    request = exports.ExportRequest(
        str(detail.get("format") or "csv"),
        queries.SignatureFilter.from_draft(detail),
        with_contacts=True,
    )
    language = str(detail.get("language") or "km")
    sent = await exports.send_approved(ctx, request, asker=asker, language=language)
    return [Reply(_("Approved: the file goes to the owner who asked.")), *sent]
