"""Share codes and QR posters: made by admins, counted, scanned back to their link."""

from __future__ import annotations

import asyncio
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from aiogram import Bot
from aiogram.methods import SendDocument, SendPhoto, TelegramMethod
from aiogram.types import BufferedInputFile, Chat, Document, Message
from PIL import Image, ImageDraw
from sqlalchemy import select, update

from bot import cli
from bot.app import App
from db.models import AuditEntry, Signature, User, VolunteerCode
from drawings.poster import make_poster
from handlers.base import Incoming
from tests.conftest import ADMIN
from tests.telegram_fakes import BOT_USERNAME, FakeUser, RecordingSession

BOT_LINK = f"https://t.me/{BOT_USERNAME}"
A4_WIDTH_CM, A4_HEIGHT_CM = 21.0, 29.7


@dataclass(frozen=True)
class SentFile:
    chat_id: int
    filename: str
    data: bytes
    caption: str


class FileSession(RecordingSession):
    """The recording Bot API session, which also takes uploaded files (and keeps them)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[SentFile] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        if not isinstance(method, SendDocument | SendPhoto):
            return await super().make_request(bot, method, timeout)
        self.calls.append(method)
        upload = method.document if isinstance(method, SendDocument) else method.photo
        assert isinstance(upload, BufferedInputFile)
        self.files.append(
            SentFile(int(method.chat_id), upload.filename or "", upload.data, method.caption or "")
        )
        return Message(
            message_id=len(self.calls),
            date=datetime.now(UTC),
            chat=Chat(id=int(method.chat_id), type="private"),
            document=Document(file_id="f", file_unique_id="f", file_name=upload.filename),
        )


@pytest.fixture
def session() -> FileSession:
    return FileSession()


@pytest.fixture
def app(admin_app: App) -> App:
    """The production app with one admin, ADMIN, from ADMIN_IDS (conftest's)."""
    return admin_app


async def english(someone: FakeUser) -> FakeUser:
    await someone.send("/start")
    await someone.press("l:en")
    return someone


async def sign(someone: FakeUser, start: str = "/start", name: str = "Sok Dara") -> None:
    """The whole signing flow, from the link the person followed."""
    await someone.send(start)
    await someone.press("l:en")
    await someone.click("✍️ Sign the petition")
    await someone.click("✅ I agree")
    await someone.send(name)
    for payload in ("co:US", "r:skip", "b:12", "ct:skip", "u:n", "rv:ok"):
        await someone.press(payload)
    assert "Your signature is recorded" in someone.text()


def plain(text: str) -> str:
    """Text as the person reads it (Telegram shows the HTML tags as formatting)."""
    return re.sub(r"</?b>", "", text)


def scanned(png: bytes) -> tuple[str, float]:
    """What a phone reads in a PNG, and the code's printed width in cm (at the PNG's dpi)."""
    image = Image.open(io.BytesIO(png))
    [found] = zxingcpp.read_barcodes(image)
    dpi = image.info["dpi"][0]
    width_px = found.position.top_right.x - found.position.top_left.x
    return found.text, width_px / dpi * 2.54


def svg_root(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  the bot's own output, not untrusted input


def svg_scanned(svg: bytes) -> str:
    """Draw the SVG's QR path (segno's horizontal strokes) and read it, as a phone would."""
    root = svg_root(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    group = root.find("svg:g", ns)
    assert group is not None
    x0, y0, scale = map(float, re.findall(r"[\d.]+", group.attrib["transform"]))
    [path] = group.iter("{http://www.w3.org/2000/svg}path")
    width, height = map(float, root.attrib["viewBox"].split()[2:])
    image = Image.new("L", (int(width), int(height)), 255)
    drawing = ImageDraw.Draw(image)
    x = y = 0.0
    for command, a, b in re.findall(r"([MmhH])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?", path.attrib["d"]):
        if command in "Mm":
            x, y = (float(a), float(b)) if command == "M" else (x + float(a), y + float(b))
            continue
        end = x + float(a) if command == "h" else float(a)
        left, top = x0 + x * scale, y0 + (y - 0.5) * scale
        drawing.rectangle((left, top, x0 + end * scale - 1, top + scale - 1), fill=0)
        x = end
    [found] = zxingcpp.read_barcodes(image)
    return found.text


def svg_texts(svg: bytes) -> list[str]:
    root = svg_root(svg)
    return [element.text or "" for element in root.iter("{http://www.w3.org/2000/svg}text")]


async def table(app: App, query: Any) -> list[Any]:
    async with app.conversation.sessions() as session:
        return list((await session.execute(query)).all())


async def test_a_new_volunteer_code_comes_with_a_poster_that_scans_back_to_its_link(
    app: App, person: Callable[[int], FakeUser], session: FileSession
) -> None:
    organiser = await english(person(ADMIN))
    await organiser.send('/code new "Long Beach New Year 2027"')

    [(code, name, created_by)] = await table(
        app, select(VolunteerCode.code, VolunteerCode.name, VolunteerCode.created_by)
    )
    assert name == "Long Beach New Year 2027"  # the quotes are not part of it
    assert created_by == f"telegram:{ADMIN}"
    assert re.fullmatch(r"[a-hjkmnp-z2-9]{6}", code)  # no 0/o, 1/l/i to misread
    png, svg = session.files
    assert (png.filename, svg.filename) == (f"qr-{code}.png", f"qr-{code}.svg")
    link = f"{BOT_LINK}?start={code}"
    assert f"New share code {code}" in plain(organiser.text())  # said at once; the poster follows
    assert link in png.caption
    assert "SVG" in svg.caption

    text, width_cm = scanned(png.data)
    assert text == link
    assert 15 <= width_cm <= 18  # big enough to read from two metres, with its quiet zone
    image = Image.open(io.BytesIO(png.data))
    assert round(image.info["dpi"][0]) == 300  # PNG stores dots per metre
    assert image.width / 300 * 2.54 == pytest.approx(A4_WIDTH_CM, abs=0.1)
    assert image.height / 300 * 2.54 < A4_HEIGHT_CM  # all of it on one A4 page

    assert svg_scanned(svg.data) == link
    assert svg_root(svg.data).attrib["width"] == "210mm"
    assert svg_texts(svg.data) == ["Long Beach New Year 2027", link]

    actions = await table(app, select(AuditEntry.action, AuditEntry.detail))
    assert ("code_create", {"code": code}) in actions
    assert ("qr", {"code": code, "kind": "volunteer"}) in actions


async def test_signers_through_a_volunteer_link_are_counted_under_its_code(
    app: App, person: Callable[[int], FakeUser], session: FileSession
) -> None:
    organiser = await english(person(ADMIN))
    await organiser.send("/codes")
    assert "No volunteer codes yet" in organiser.text()
    await organiser.send("/code new Temple fair")
    await organiser.send("/code new Long Beach New Year 2027")
    codes = dict(await table(app, select(VolunteerCode.name, VolunteerCode.code)))
    poster = session.files[-2]
    # The link as printed under the QR code, followed as Telegram does: /start CODE.
    [start] = re.findall(r"\?start=(\w+)", poster.caption)
    assert start == codes["Long Beach New Year 2027"]

    for user_id, name in ((5001, "Sok Dara"), (5002, "Chan Sophal"), (5003, "Keo Vanna")):
        await sign(person(user_id), f"/start {start}", name=name)
    first_share_code = (
        await table(app, select(User.share_code).where(User.external_id == "5001"))
    )[0][0]
    await sign(person(5004), f"/start {first_share_code}")  # a signer's own link
    await sign(person(5005))  # no link at all
    async with app.conversation.sessions() as db, db.begin():  # one set aside: not counted
        await db.execute(
            update(Signature)
            .where(Signature.full_name == "Keo Vanna")
            .values(invalidated_at=datetime.now(UTC))
        )

    await organiser.send("/codes")
    listing = plain(organiser.text())
    assert f"{start} Long Beach New Year 2027: 2 (since" in listing
    assert f"{codes['Temple fair']} Temple fair: 0" in listing
    assert listing.index("Long Beach") < listing.index("Temple fair")  # most signatures first
    assert "Through signers' own links: 1" in listing
    await organiser.send("/code")
    assert plain(organiser.text()) == listing


async def test_any_code_or_the_bot_itself_gets_its_poster(
    app: App, person: Callable[[int], FakeUser], session: FileSession
) -> None:
    await sign(person(6001))
    [(personal,)] = await table(app, select(User.share_code).where(User.external_id == "6001"))
    organiser = await english(person(ADMIN))

    await organiser.send(f"/code qr {personal}")
    png, svg = session.files
    assert scanned(png.data)[0] == f"{BOT_LINK}?start={personal}"
    assert "a signer's own link" in png.caption
    assert "Sok Dara" not in png.caption  # whose link it is stays private
    assert svg_texts(svg.data) == [f"{BOT_LINK}?start={personal}"]

    await organiser.send(f"/qr {personal.upper()}")  # typed in capitals
    assert scanned(session.files[-2].data)[0] == f"{BOT_LINK}?start={personal}"

    await organiser.send("/qr")
    png, svg = session.files[-2:]
    assert (png.filename, svg.filename) == ("qr-bot.png", "qr-bot.svg")
    assert scanned(png.data)[0] == BOT_LINK
    assert svg_scanned(svg.data) == BOT_LINK
    assert "the bot's own link" in png.caption

    sent = len(session.files)
    await organiser.send("/qr nosuchcode")
    assert "There is no share code nosuchcode" in organiser.text()
    await organiser.send("/code qr <b>x</b>")
    assert "only Latin letters and digits" in organiser.text()
    await organiser.send("/code remove abc")
    assert "/code new NAME" in organiser.text()
    assert len(session.files) == sent
    actions = [
        detail for action, detail in await table(
            app, select(AuditEntry.action, AuditEntry.detail)) if action == "qr"
    ]  # fmt: skip
    assert actions == [
        {"code": personal, "kind": "personal"},
        {"code": personal, "kind": "personal"},
        {"kind": "bot"},
    ]


async def test_names_are_checked_and_khmer_names_kept(
    app: App, person: Callable[[int], FakeUser], session: FileSession
) -> None:
    organiser = await english(person(ADMIN))
    await organiser.send("/code new")
    assert "Give the code a name" in organiser.text()
    await organiser.send("/code new " + "x" * 101)
    assert "too long: 100 characters at most" in organiser.text()
    khmer = "បុណ្យចូលឆ្នាំ ឡុងប៊ីច"
    # A phone's curly quotes, and the zero-width space a Khmer keyboard puts between words.
    typed = khmer.replace(" ", " \u200b")
    await organiser.send(f"/code new “{typed}”")
    [(code, name)] = await table(app, select(VolunteerCode.code, VolunteerCode.name))
    assert name == khmer
    png, svg = session.files
    assert svg_texts(svg.data) == [khmer, f"{BOT_LINK}?start={code}"]
    assert scanned(png.data)[0] == f"{BOT_LINK}?start={code}"
    # The name is on the PNG when a font here has Khmer (assets/fonts); else the message says so.
    if not make_poster(BOT_LINK, khmer).titled:
        assert "The name is not on the image" in png.caption

    await organiser.send(f"/code new {khmer}")
    assert f"There is already a code with that name: {code}" in plain(organiser.text())
    assert len(await table(app, select(VolunteerCode.id))) == 1


async def test_a_non_admin_gets_the_unknown_command_answer(
    app: App, person: Callable[[int], FakeUser], session: FileSession
) -> None:
    volunteer = await english(person(8001))
    for command in ("/code new Mine", "/codes", "/qr", "/code qr abcdef"):
        await volunteer.send(command)
        assert "I don't know that command" in volunteer.text()
    assert session.files == []
    assert await table(app, select(VolunteerCode.id)) == []


async def test_without_the_bot_s_name_the_code_is_made_and_the_admin_told_why_no_qr(
    app: App,
) -> None:
    async def say(text: str) -> str:
        replies = await app.conversation.process(
            channel="console", user_id=str(ADMIN), update_key=None,
            incoming=Incoming.message(text) if not text.startswith("l:") else Incoming.button(text),
            share_link=lambda code: None,
        )  # fmt: skip
        assert all(reply.attachment is None for reply in replies)
        return "\n".join(reply.text for reply in replies)

    await say("/start")
    await say("l:en")
    answer = await say("/code new Phnom Penh forum")
    [(code,)] = await table(app, select(VolunteerCode.code))
    assert f"New share code <b>{code}</b>" in answer
    assert "TELEGRAM_BOT_USERNAME" in answer
    assert "TELEGRAM_BOT_USERNAME" in await say("/qr")


async def test_the_shell_writes_png_and_svg_posters(
    app: App,
    person: Callable[[int], FakeUser],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    organiser = await english(person(ADMIN))
    await organiser.send("/code new Long Beach New Year 2027")
    [(code,)] = await table(app, select(VolunteerCode.code))
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@campaign_bot")

    def shell(*args: str) -> int:
        return cli.main(["qr", *args])

    assert await asyncio.to_thread(shell, code, "--out", "poster.png") == 0
    assert scanned((tmp_path / "poster.png").read_bytes())[0] == (
        f"https://t.me/campaign_bot?start={code}"
    )
    assert await asyncio.to_thread(shell, code, "--out", "poster.svg") == 0
    svg = (tmp_path / "poster.svg").read_bytes()
    assert svg_scanned(svg) == f"https://t.me/campaign_bot?start={code}"
    assert svg_texts(svg)[0] == "Long Beach New Year 2027"
    assert await asyncio.to_thread(shell, "--link", "--out", "bot.png") == 0
    assert scanned((tmp_path / "bot.png").read_bytes())[0] == "https://t.me/campaign_bot"
    assert "poster.png: the QR code of https://t.me/campaign_bot?start=" in capsys.readouterr().out

    assert await asyncio.to_thread(shell, "nosuch", "--out", "x.png") == 1
    assert "There is no share code nosuch" in capsys.readouterr().err
    assert await asyncio.to_thread(shell, code, "--out", "poster.pdf") == 2
    assert "must end in .png or .svg" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    assert await asyncio.to_thread(shell, code, "--out", "poster.png") == 2
    assert "TELEGRAM_BOT_USERNAME: not set" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

    shell_entries = await table(app, select(AuditEntry.detail).where(AuditEntry.actor == "shell"))
    assert [detail for (detail,) in shell_entries] == [
        {"code": code, "kind": "volunteer", "file": "png"},
        {"code": code, "kind": "volunteer", "file": "svg"},
        {"kind": "bot", "file": "png"},
    ]


def test_posters_fit_a4_for_the_longest_links_and_names() -> None:
    link = "https://t.me/" + "b" * 32 + "?start=" + "k" * 10  # the longest bot name
    poster = make_poster(link, "Long Beach " * 9)
    image = Image.open(io.BytesIO(poster.png))
    text, width_cm = scanned(poster.png)
    assert text == link
    assert 15 <= width_cm <= 18
    assert image.height / 300 * 2.54 < A4_HEIGHT_CM
    assert poster.version.endswith(("-Q", "-H"))  # a quarter of the code can be lost
