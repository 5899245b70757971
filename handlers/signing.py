"""The signing flow: one state machine, drawn in `signing.mmd` beside this file.

The person's step and their answers so far live on their row (`user.step`, `user.draft`),
so a restart or a second worker resumes exactly where they were.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from db import milestones, queries
from db.codes import SHARE_CODE
from db.models import Signature, utcnow
from handlers.base import Button, Context, Incoming, Kind, Reply, Step
from handlers.reading import places, validation
from words.i18n import N_
from words.text import fold, format_day, format_number, format_percent_of

# Steps that belong to the flow; anything else is "idle" (nothing asked). Other features
# add their own confirmation steps (`Step`), registered in `handlers/__init__.py`.
FLOW_STEPS = {
    "consent", "name", "country", "country_other", "country_confirm", "region",
    "birthplace", "contact", "updates", "review", "edit_pick", "withdraw_confirm",
}  # fmt: skip
# Button payload prefixes and the step each belongs to: a press at another step is stale.
PREFIX_STEP = {
    "c": "consent", "co": "country", "cc": "country_confirm", "r": "region",
    "b": "birthplace", "ct": "contact", "u": "updates", "rv": "review", "e": "edit_pick",
    "w": "withdraw_confirm",
}  # fmt: skip
EDITABLE = {
    "name": N_("Name"),
    "country": N_("Country where you live"),
    "region": N_("State, province or city"),
    "birth": N_("Province of birth"),
    "contact": N_("Phone or e-mail"),
    "updates": N_("News from the campaign"),
}

Handler = Callable[[Context, Incoming], Awaitable[list[Reply]]]


# ---------------------------------------------------------------- small helpers


def _set_draft(ctx: Context, **changes: Any) -> None:
    # JSON columns notice a new value, not an in-place change: assign a fresh dict.
    ctx.user.draft = {**ctx.user.draft, **changes}


def _go(ctx: Context, step: str) -> list[Reply]:
    ctx.user.step = step
    return [prompt(ctx)]


def _next(ctx: Context, natural: str) -> list[Reply]:
    """After an answer: the natural next step, or back to the review when changing one answer."""
    if natural == "contact" and ctx.cipher is None:
        natural = "updates"  # contacts cannot be kept encrypted: do not ask for them
    if ctx.user.draft.get("editing") and natural != "region":
        _set_draft(ctx, editing=False)
        return _go(ctx, "review")
    return _go(ctx, natural)


def menu_buttons(ctx: Context) -> list[list[Button]]:
    """The main menu under a message."""
    _ = ctx.gettext
    return [
        [Button(_("✍️ Sign the petition"), "go:sign")],
        [Button(_("❓ Questions"), "go:faq"), Button("ភាសា / Language", "go:lang")],
    ]


def remember_referral(ctx: Context, payload: str) -> None:
    """Keep the first share code a person arrived with (never their own)."""
    code = payload.strip()
    if ctx.user.referred_by is None and SHARE_CODE.fullmatch(code) and code != ctx.user.share_code:
        ctx.user.referred_by = code


# ---------------------------------------------------------------- what each step asks


def register_step(step: Step) -> None:
    """Let another feature own a step with buttons: stale presses and stray text are then
    handled the same way as in the signing flow. `handlers/__init__.py` registers them all."""
    if step.name in FLOW_STEPS or step.prefix in PREFIX_STEP:
        raise ValueError(f"step {step.name!r} or prefix {step.prefix!r} is taken")
    FLOW_STEPS.add(step.name)
    PREFIX_STEP[step.prefix] = step.name
    OTHER_PROMPTS[step.name] = step.ask
    BUTTON_STEPS[step.name] = step.on_button


OTHER_PROMPTS: dict[str, Callable[[Context], Reply]] = {}


def prompt(ctx: Context) -> Reply:
    """The question of the person's current step (also used to repeat it after a bad answer)."""
    _ = ctx.gettext
    step, draft = ctx.user.step, ctx.user.draft
    if step in OTHER_PROMPTS:
        return OTHER_PROMPTS[step](ctx)
    if step == "consent":
        text = _(
            "<b>Before you sign</b>\n"
            "We keep only what the petition needs: your name, the country and place where you "
            "live, your province of birth, and — only if you give them — a phone number or "
            "e-mail and whether you want news.\n"
            "Only the campaign's organisers see them. We never publish your name without "
            "asking you, and we never sell or share your details.\n"
            "You can see, change or delete your signature at any time with /mysignature.\n\n"
            "Do you agree?"
        )
        text += "\n" + _("More about your data: /privacy")
        return Reply(text, [[Button(_("✅ I agree"), "c:y"), Button(_("No, thank you"), "c:n")]])
    if step == "name":
        return Reply(_("What is your full name? Please type it in Khmer or Latin letters."))
    if step == "country":
        return Reply(_("Which country do you live in now?"), country_buttons(ctx))
    if step == "country_other":
        return Reply(_("Please type the name of the country where you live."))
    if step == "country_confirm":
        buttons = [
            [Button(places.country_name(code, ctx.language), f"cc:{code}")]
            for code in draft.get("candidates", [])
        ]
        buttons.append([Button(_("None of these, type again"), "cc:retry")])
        return Reply(_("Is this your country?"), buttons)
    if step == "region":
        country = places.country_name(draft.get("country", ""), ctx.language)
        text = _(
            "Where in {country} do you live? Type your state, province or city, or press Skip."
        )
        return Reply(text.format(country=country), [[Button(_("Skip"), "r:skip")]])
    if step == "birthplace":
        return Reply(_("In which province of Cambodia were you born?"), province_buttons(ctx))
    if step == "contact":
        text = _(
            "If you want the campaign to be able to reach you, share your phone number with the "
            "button below, or type a phone number or an e-mail address. This is optional."
        )
        return Reply(
            text, [[Button(_("Skip"), "ct:skip")]], contact_label=_("📱 Share my phone number")
        )
    if step == "updates":
        text = _(
            "May we send you news of the campaign and greetings at Khmer New Year? "
            "You can stop them at any time."
        )
        return Reply(text, [[Button(_("Yes, please"), "u:y"), Button(_("No, thank you"), "u:n")]])
    if step == "review":
        buttons = [
            [
                Button(
                    _("✅ Confirm and sign") if not draft.get("amend") else _("✅ Save changes"),
                    "rv:ok",
                )
            ],
            [Button(_("✏️ Change an answer"), "rv:edit"), Button(_("Cancel"), "rv:cancel")],
        ]
        intro = _("Please check your answers:")
        return Reply(f"{intro}\n\n{summary(ctx, draft)}", buttons)
    if step == "edit_pick":
        buttons = [
            [Button(_(label), f"e:{field}")]
            for field, label in EDITABLE.items()
            if field != "contact" or ctx.cipher is not None
        ]
        buttons.append([Button(_("Back"), "e:back")])
        return Reply(_("Which answer do you want to change?"), buttons)
    if step == "withdraw_confirm":
        text = _(
            "Do you really want to withdraw your signature? Your name and answers will be deleted."
        )
        return Reply(
            text, [[Button(_("Yes, withdraw it"), "w:y"), Button(_("No, keep it"), "w:n")]]
        )
    return Reply(_("What would you like to do?"), menu_buttons(ctx))


def country_buttons(ctx: Context) -> list[list[Button]]:
    """The diaspora's countries, two a row, then "another country"."""
    _ = ctx.gettext
    buttons = [
        Button(places.country_name(code, ctx.language), f"co:{code}") for code in places.DIASPORA
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([Button(_("Another country"), "co:other")])
    return rows


def province_buttons(ctx: Context) -> list[list[Button]]:
    """The 25 provinces, three a row, then "born outside Cambodia"."""
    _ = ctx.gettext
    buttons = [
        Button(khmer if ctx.language == "km" else english, f"b:{code}")
        for code, khmer, english in places.provinces()
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([Button(_("Born outside Cambodia"), f"b:{places.ABROAD}")])
    return rows


def _shown_contact(ctx: Context, answers: dict[str, Any]) -> str | None:
    token = answers.get("phone") or answers.get("email")
    if not token or ctx.cipher is None:
        return None
    return ctx.cipher.open(token)


def summary(ctx: Context, answers: dict[str, Any]) -> str:
    """Every answer, one a line, as the person gave it (escaped for HTML)."""
    _ = ctx.gettext
    birth = answers.get("birth")
    contact = _shown_contact(ctx, answers) or _("not given")
    rows = [
        (_("Name"), answers.get("name", "")),
        (
            _("Country where you live"),
            places.country_name(answers.get("country", ""), ctx.language),
        ),
        (_("State, province or city"), answers.get("region") or _("not given")),
        (
            _("Province of birth"),
            _("outside Cambodia")
            if birth == places.ABROAD
            else places.province_name(str(birth), ctx.language),
        ),
        (_("Phone or e-mail"), contact),
        (_("News from the campaign"), _("yes") if answers.get("updates") else _("no")),
    ]
    colon = "៖" if ctx.language == "km" else ":"  # Khmer writes its own colon
    return "\n".join(
        f"<b>{html.escape(label)}{colon}</b> {html.escape(str(value))}" for label, value in rows
    )


# ---------------------------------------------------------------- entry points


async def welcome(ctx: Context) -> list[Reply]:
    """The petition, with what the person can do next."""
    _ = ctx.gettext
    petition = ctx.content.petition(ctx.language)
    text = f"<b>{petition.title}</b>\n\n{petition.statement}"
    signature = await _signature(ctx)
    if signature is None:
        return [Reply(text, menu_buttons(ctx))]
    return [Reply(text), *await _show_signature(ctx, signature, _("You have signed. Thank you!"))]


def reminder(ctx: Context) -> list[Reply]:
    """Repeat the pending question, if the person is in the middle of something."""
    return [prompt(ctx)] if ctx.user.step in FLOW_STEPS else []


async def _signature(ctx: Context) -> Signature | None:
    # The row load already told whether the person signed: most people have not, and
    # asking the database only when they have keeps the busy steps to one round trip.
    if ctx.user.signature_id is None:
        return None
    return await queries.find_signature(ctx.session, user_id=ctx.user.id)


async def _start_signing(ctx: Context) -> list[Reply]:
    signature = await _signature(ctx)
    if signature is not None:
        return await _show_signature(ctx, signature, ctx.gettext("You have already signed."))
    if ctx.user.step in FLOW_STEPS and ctx.user.step != "consent":
        return [Reply(ctx.gettext("Let's carry on where you were.")), prompt(ctx)]
    ctx.user.draft = {}
    return _go(ctx, "consent")


async def _show_signature(ctx: Context, signature: Signature, intro: str) -> list[Reply]:
    _ = ctx.gettext
    number, _total = await queries.standing(ctx.session, signature_id=signature.id)
    code = queries.ensure_share_code(ctx.user)
    lines = [
        intro,
        _("You are signer number {number}.").format(number=format_number(number, ctx.language)),
        _("Signed on {date}.").format(date=format_day(signature.created_at.date(), ctx.language)),
        "",
        summary(ctx, answers_of(signature)),
    ]
    link = ctx.share_link(code)
    if link:
        lines += ["", _("Your link to share: {link}").format(link=link)]
    ctx.user.step = "idle"
    buttons = [
        [Button(_("✏️ Change an answer"), "s:edit")],
        [Button(_("Withdraw my signature"), "s:withdraw")],
    ]
    if not ctx.user.updates_opt_in:
        buttons.append([Button(_("🔔 Receive news again"), "n:on")])
    return [Reply("\n".join(lines), buttons)]


def answers_of(signature: Signature) -> dict[str, Any]:
    """A signature's answers in the shape of a draft."""
    return {
        "name": signature.full_name, "country": signature.country, "region": signature.region,
        "birth": signature.birth_province, "phone": signature.phone, "email": signature.email,
        "contact_hash": signature.contact_hash, "updates": signature.updates_opt_in,
    }  # fmt: skip


async def _cancel(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    amend = bool(ctx.user.draft.get("amend"))
    was = ctx.user.step
    ctx.user.step, ctx.user.draft = "idle", {}
    if was not in FLOW_STEPS:
        return [Reply(_("There is nothing to cancel."), menu_buttons(ctx))]
    if amend:
        return [Reply(_("Stopped. Your signature is unchanged."), remove_keyboard=True)]
    text = _("Stopped. Nothing was saved. You can sign whenever you like.")
    if was == "contact":
        # The phone-number keyboard is showing: take it away, then offer the menu.
        return [Reply(text, remove_keyboard=True),
                Reply(_("What would you like to do?"), menu_buttons(ctx))]  # fmt: skip
    return [Reply(text, menu_buttons(ctx))]


async def handle(ctx: Context, incoming: Incoming) -> list[Reply] | None:
    """Commands and answers of the signing flow; None when the input is not ours."""
    if incoming.kind is Kind.COMMAND:
        command = incoming.command
        if command == "start":
            remember_referral(ctx, incoming.text)
            if ctx.user.step in FLOW_STEPS:
                return [
                    Reply(ctx.gettext("Welcome back! Let's carry on where you were.")),
                    prompt(ctx),
                ]
            return await welcome(ctx)
        if command == "sign":
            return await _start_signing(ctx)
        if command == "mysignature":
            return await _my_signature(ctx)
        if command == "cancel":
            return await _cancel(ctx)
        return None
    if incoming.kind is Kind.BUTTON:
        return await _button(ctx, incoming.text)
    step = ctx.user.step
    if step not in FLOW_STEPS:
        return None
    if step == "contact" and ctx.cipher is None:  # the keys were removed meanwhile
        step = ctx.user.step = "updates"
    _ = ctx.gettext
    if incoming.kind is Kind.OTHER:
        return [Reply(_("I can only read text here.")), prompt(ctx)]
    if incoming.forwarded:
        return [
            Reply(_("Please type your answer yourself instead of forwarding a message.")),
            prompt(ctx),
        ]
    if len(incoming.text) > 1000:
        return [Reply(_("That message is too long for this question.")), prompt(ctx)]
    if incoming.kind is Kind.CONTACT:
        if step != "contact":
            return [Reply(_("Thank you, but I did not ask for a phone number yet.")), prompt(ctx)]
        return _shared_contact(ctx, incoming)
    # Typed text matching a button of this step counts as pressing it.
    pressed = _typed_button(ctx, incoming.text)
    if pressed is not None:
        return await _button(ctx, pressed)
    text_step = TEXT_STEPS.get(step)
    if text_step is None:
        return [Reply(_("Please choose one of the buttons below.")), prompt(ctx)]
    return await text_step(ctx, incoming)


def _typed_button(ctx: Context, text: str) -> str | None:
    key = fold(text)
    if not key:
        return None
    for button in prompt(ctx).options():
        if fold(button.label) == key:
            return button.payload
    return None


async def _my_signature(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    signature = await queries.find_signature(ctx.session, user_id=ctx.user.id)
    if signature is None:
        return [Reply(_("You have not signed yet."), menu_buttons(ctx)), *reminder(ctx)]
    return await _show_signature(ctx, signature, _("This is your signature."))


# ---------------------------------------------------------------- buttons


async def _button(ctx: Context, payload: str) -> list[Reply]:
    _ = ctx.gettext
    prefix, _sep, value = payload.partition(":")
    if prefix == "go":
        if value == "sign":
            return await _start_signing(ctx)
        if value == "mine":
            return await _my_signature(ctx)
    if prefix == "s" and ctx.user.step not in FLOW_STEPS:
        return await _signature_action(ctx, value)
    expected = PREFIX_STEP.get(prefix)
    if expected is None or expected != ctx.user.step:
        stale = _("That button is from an earlier message.")
        if ctx.user.step in FLOW_STEPS:
            return [Reply(stale), prompt(ctx)]
        return [Reply(stale), Reply(_("What would you like to do?"), menu_buttons(ctx))]
    return await BUTTON_STEPS[expected](ctx, value)


async def _signature_action(ctx: Context, value: str) -> list[Reply]:
    signature = await queries.find_signature(ctx.session, user_id=ctx.user.id)
    if signature is None:
        return [Reply(ctx.gettext("You have not signed yet."), menu_buttons(ctx))]
    if value == "withdraw":
        return _go(ctx, "withdraw_confirm")
    ctx.user.draft = {**answers_of(signature), "amend": True}
    return _go(ctx, "edit_pick")


async def _consent(ctx: Context, value: str) -> list[Reply]:
    if value == "y":
        _set_draft(ctx, consent=True)
        ctx.user.agreed_at = ctx.user.agreed_at or utcnow()  # the funnel's middle step
        return _go(ctx, "name")
    ctx.user.step, ctx.user.draft = "idle", {}
    text = ctx.gettext("No problem. Nothing was saved. You can sign whenever you like.")
    return [Reply(text, menu_buttons(ctx))]


async def _country(ctx: Context, value: str) -> list[Reply]:
    if value == "other":
        return _go(ctx, "country_other")
    if value not in places.DIASPORA:
        return [prompt(ctx)]
    _set_draft(ctx, country=value, region=None)
    return _next(ctx, "region")


async def _country_confirm(ctx: Context, value: str) -> list[Reply]:
    if value == "retry" or value not in ctx.user.draft.get("candidates", []):
        return _go(ctx, "country_other")
    _set_draft(ctx, country=value, region=None, candidates=[])
    return _next(ctx, "region")


async def _region(ctx: Context, value: str) -> list[Reply]:
    _set_draft(ctx, region=None)
    return _next(ctx, "birthplace")


async def _birthplace(ctx: Context, value: str) -> list[Reply]:
    if value != places.ABROAD and not places.is_province(value):
        return [prompt(ctx)]
    _set_draft(ctx, birth=value)
    return _next(ctx, "contact")


async def _contact_skip(ctx: Context, value: str) -> list[Reply]:
    _set_draft(ctx, phone=None, email=None, contact_hash=None)
    return [
        Reply(ctx.gettext("All right, no contact details."), remove_keyboard=True),
        *_next(ctx, "updates"),
    ]


async def _updates(ctx: Context, value: str) -> list[Reply]:
    _set_draft(ctx, updates=value == "y")
    return _go(ctx, "review")


async def _review(ctx: Context, value: str) -> list[Reply]:
    if value == "edit":
        return _go(ctx, "edit_pick")
    if value == "cancel":
        return await _cancel(ctx)
    if value != "ok":
        return [prompt(ctx)]
    return await _sign(ctx)


async def _edit_pick(ctx: Context, value: str) -> list[Reply]:
    if value == "back":
        return _go(ctx, "review")
    step = {
        "name": "name",
        "country": "country",
        "region": "region",
        "birth": "birthplace",
        "contact": "contact" if ctx.cipher is not None else None,
        "updates": "updates",
    }.get(value)
    if step is None:
        return [prompt(ctx)]
    _set_draft(ctx, editing=True)
    return _go(ctx, step)


async def _withdraw(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.gettext
    ctx.user.step, ctx.user.draft = "idle", {}
    if value != "y":
        return [Reply(_("Good, your signature stays."), menu_buttons(ctx))]
    await queries.withdraw_signature(ctx.session, user_id=ctx.user.id)
    ctx.user.signature_id = None
    ctx.user.updates_opt_in = False
    text = _("Your signature has been withdrawn and your answers deleted.")
    return [Reply(text, menu_buttons(ctx))]


BUTTON_STEPS: dict[str, Callable[[Context, str], Awaitable[list[Reply]]]] = {
    "consent": _consent, "country": _country, "country_confirm": _country_confirm,
    "region": _region, "birthplace": _birthplace, "contact": _contact_skip, "updates": _updates,
    "review": _review, "edit_pick": _edit_pick, "withdraw_confirm": _withdraw,
}  # fmt: skip


# ---------------------------------------------------------------- typed answers


NAME_PROBLEMS = {
    validation.NameProblem.TOO_SHORT: N_("That name is too short. Please type your full name."),
    validation.NameProblem.TOO_LONG: N_("That name is too long. Please use at most 100 letters."),
    validation.NameProblem.LINK: N_("Please type only your name, without links."),
    validation.NameProblem.DIGITS: N_("A name has no numbers. Please type your name in letters."),
    validation.NameProblem.SYMBOLS: N_("Please type your name in Khmer or Latin letters only."),
}


async def _name(ctx: Context, incoming: Incoming) -> list[Reply]:
    name, problem = validation.check_name(incoming.text)
    if name is None:
        message = NAME_PROBLEMS[problem or validation.NameProblem.SYMBOLS]
        return [Reply(ctx.gettext(message))]
    _set_draft(ctx, name=name)
    return _next(ctx, "country")


async def _country_typed(ctx: Context, incoming: Incoming) -> list[Reply]:
    _ = ctx.gettext
    exact, close = places.match_country(incoming.text)
    candidates = [exact] if exact else close
    if not candidates:
        text = _(
            "I could not find that country. Please check the spelling, or type its name in English."
        )
        return [Reply(text)]
    _set_draft(ctx, candidates=candidates)
    return _go(ctx, "country_confirm")


async def _region_typed(ctx: Context, incoming: Incoming) -> list[Reply]:
    value = validation.check_short_text(incoming.text)
    if value is None:
        text = ctx.gettext("Please type a place name of at most 100 letters, or press Skip.")
        return [Reply(text), prompt(ctx)]
    _set_draft(ctx, region=places.canonical_region(ctx.user.draft.get("country", ""), value))
    return _next(ctx, "birthplace")


async def _birthplace_typed(ctx: Context, incoming: Incoming) -> list[Reply]:
    code = places.match_province(incoming.text)
    if code is None:
        text = ctx.gettext("I could not find that province. Please choose it from the list.")
        return [Reply(text), prompt(ctx)]
    _set_draft(ctx, birth=code)
    return _next(ctx, "contact")


async def _contact_typed(ctx: Context, incoming: Incoming) -> list[Reply]:
    _ = ctx.gettext
    email = validation.parse_email(incoming.text)
    phone = None if email else validation.parse_phone(incoming.text, ctx.user.draft.get("country"))
    if email is None and phone is None:
        text = _(
            "That is not a phone number or e-mail address I can use. Please check it, "
            "or press Skip."
        )
        return [Reply(text)]
    _keep_contact(ctx, phone=phone, email=email)
    return [Reply(_("Thank you, noted."), remove_keyboard=True), *_next(ctx, "updates")]


def _shared_contact(ctx: Context, incoming: Incoming) -> list[Reply]:
    _ = ctx.gettext
    if not incoming.contact_is_own:
        return [Reply(_("Please share your own phone number, not someone else's."))]
    phone = validation.parse_shared_phone(incoming.contact_phone or "")
    if phone is None:
        return [Reply(_("I could not read that phone number. Please type your phone number."))]
    _keep_contact(ctx, phone=phone, email=None)
    return [Reply(_("Thank you, noted."), remove_keyboard=True), *_next(ctx, "updates")]


def _keep_contact(ctx: Context, *, phone: str | None, email: str | None) -> None:
    # Sealed the moment it is typed: not even the unsigned draft holds it in clear.
    cipher = ctx.cipher
    assert cipher is not None  # the contact step is only asked with keys set
    value = phone or email or ""
    _set_draft(
        ctx,
        phone=cipher.seal(phone) if phone else None,
        email=cipher.seal(email) if email else None,
        contact_hash=cipher.fingerprint(value),
    )


TEXT_STEPS: dict[str, Handler] = {
    "name": _name, "country_other": _country_typed, "country": _country_typed,
    "region": _region_typed, "birthplace": _birthplace_typed, "contact": _contact_typed,
}  # fmt: skip


# ---------------------------------------------------------------- signing


def _fields(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "full_name": draft["name"], "country": draft["country"], "region": draft.get("region"),
        "birth_province": draft["birth"], "phone": draft.get("phone"),
        "email": draft.get("email"), "contact_hash": draft.get("contact_hash"),
        "updates_opt_in": bool(draft.get("updates")),
    }  # fmt: skip


async def _sign(ctx: Context) -> list[Reply]:
    _ = ctx.gettext
    draft = ctx.user.draft
    if not all(draft.get(key) for key in ("name", "country", "birth")):
        # An old draft with a missing answer: ask for what is missing.
        missing = next(key for key in ("name", "country", "birth") if not draft.get(key))
        return _go(ctx, {"name": "name", "country": "country", "birth": "birthplace"}[missing])
    ctx.user.updates_opt_in = bool(draft.get("updates"))
    if draft.get("amend"):
        signature = await queries.find_signature(ctx.session, user_id=ctx.user.id)
        if signature is not None:
            await queries.update_signature(ctx.session, signature=signature, fields=_fields(draft))
            ctx.user.draft = {}
            return await _show_signature(ctx, signature, _("Your signature has been updated."))
    signature_id = await queries.add_signature(ctx.session, user=ctx.user, fields=_fields(draft))
    ctx.user.draft = {}
    ctx.user.signature_id = signature_id or ctx.user.signature_id
    if signature_id is None:
        signature = await queries.find_signature(ctx.session, user_id=ctx.user.id)
        if signature is None:  # withdrawn by a parallel update in between; ask again
            return _go(ctx, "consent")
        return await _show_signature(ctx, signature, _("You have already signed."))
    return [await _thanks(ctx, draft["name"], signature_id)]


async def _thanks(ctx: Context, name: str, signature_id: int) -> Reply:
    _ = ctx.gettext
    language = ctx.language
    number, total = await queries.standing(ctx.session, signature_id=signature_id)
    # In the signing transaction: a milestone this signature passed is recorded (once,
    # whoever else crosses it); the watch announces it to the admins.
    await milestones.reach(ctx.session, total=total, goal=ctx.goal)
    code = queries.ensure_share_code(ctx.user)
    ctx.user.step = "idle"
    lines = [
        _("Thank you, {name}! Your signature is recorded.").format(name=html.escape(name)),
        _("You are signer number {number}.").format(number=format_number(number, language)),
        _("{count} of {goal} signatures so far ({percent}).").format(
            count=format_number(total, language),
            goal=format_number(ctx.goal, language),
            percent=format_percent_of(total, ctx.goal, language),
        ),
    ]
    link = ctx.share_link(code)
    if link:
        lines += ["", _("Please share your link with family and friends: {link}").format(link=link)]
    buttons = [[Button(_("My signature"), "go:mine"), Button(_("❓ Questions"), "go:faq")]]
    return Reply("\n".join(lines), buttons)
