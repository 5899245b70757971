"""`petitionbot broadcast` from the shell, as a real process against the fake Bot API: the
count (--dry-run), the previews to an admin (the photo uploaded once, its file id reused),
the sending with progress lines, scheduling, listing, cancelling, and clear refusals."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import build_app
from bot.config import Settings
from tests.botapi_server import FakeBotAPI
from tests.conftest import TOKEN
from tests.test_broadcast import add_person

ADMIN = 4242


async def shell(
    server: FakeBotAPI, database_url: str, folder: Path, *args: str
) -> tuple[int, str, str]:
    """Run `petitionbot broadcast ARGS`; (exit code, standard output, standard error)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_",
                                  "ADMIN_"))}  # fmt: skip
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url,
               DATABASE_URL=database_url, ADMIN_IDS=str(ADMIN), LOG_LEVEL="WARNING")  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "broadcast", *args, cwd=folder, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_photo_broadcast_from_the_shell(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shell.sqlite3'}"
    app = await build_app(make_settings(database_url=database_url))
    try:
        async with app.conversation.sessions() as session, session.begin():
            await add_person(session, str(ADMIN), language="en", opted_in=False)
            await add_person(session, "501", signed=("US", "California", "02"))
            await add_person(session, "502", language="en", signed=("US", "Washington", "12"))
            await add_person(session, "503", signed=("FR", None, "17"))
    finally:
        await app.close()
    (tmp_path / "km.html").write_text("<b>សួស្ដី</b>ឆ្នាំថ្មី\n", encoding="utf-8")
    (tmp_path / "en.html").write_text("<b>Happy</b> New Year\n", encoding="utf-8")
    (tmp_path / "bad.html").write_text("Q&A <b>soon", encoding="utf-8")
    (tmp_path / "card.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 2000)
    texts = ["--text-km", "km.html", "--text-en", "en.html"]
    where = ["--country", "US", "--region", "California", "--region", "Washington State"]

    async with FakeBotAPI(token=TOKEN) as server:
        code, out, _err = await shell(server, database_url, tmp_path, *texts, *where, "--dry-run")
        assert (code, out.strip()) == (0, "2 recipients (km version: 1, en version: 1)")
        assert server.calls == []

        code, _out, err = await shell(server, database_url, tmp_path, "--text-km", "bad.html")
        assert code == 2
        assert "--text-km: bad.html: write & as &amp;" in err
        code, _out, err = await shell(server, database_url, tmp_path, *texts, "--region", "X")
        assert (code, err.strip()) == (2, "--region: give exactly one --country with the regions")
        code, _out, err = await shell(
            server, database_url, tmp_path, *texts, "--at", "2020-01-01 08:00"
        )
        assert (code, err.strip()) == (2, "--at: that time has already passed")

        code, out, err = await shell(
            server, database_url, tmp_path, *texts, *where, "--photo", "card.jpg"
        )
        assert code == 0, err
        assert "Previews sent to 4242." in out
        assert "#1 done: sent 2 of 2" in out
        photos = server.params("sendPhoto")
        previews = [p for p in photos if str(p["chat_id"]) == str(ADMIN)]
        sent = [p for p in photos if str(p["chat_id"]) != str(ADMIN)]
        upload = previews[0]
        assert upload["photo"]["filename"] == "card.jpg"  # the file itself, in the form
        assert [p["photo"] for p in previews[1:]] == ["photo-file-1"]
        assert sorted((str(p["chat_id"]), p["photo"], p["caption"]) for p in sent) == [
            ("501", "photo-file-1", "<b>សួស្ដី</b>ឆ្នាំថ្មី"),
            ("502", "photo-file-1", "<b>Happy</b> New Year"),
        ]
        to_admin = [p["text"] for p in server.sent(ADMIN)]
        assert to_admin[0] == "Preview of the ភាសាខ្មែរ version, exactly as they will see it:"
        assert any("has gone out" in text for text in to_admin)

        later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
        local = datetime.fromisoformat(f"{later} 08:00").replace(
            tzinfo=ZoneInfo("America/Los_Angeles")
        )
        utc = local.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        code, out, err = await shell(
            server, database_url, tmp_path, "--text-en", "en.html", "--signers-only",
            "--at", f"{later} 08:00", "--tz", "America/Los_Angeles",
        )  # fmt: skip
        assert code == 0, err
        assert f"Broadcast #2 is scheduled for {utc} UTC" in out
        code, out, _err = await shell(server, database_url, tmp_path, "list")
        assert out.splitlines()[0].startswith(f"#2 scheduled {utc} UTC en")
        assert out.splitlines()[1].startswith("#1 done")
        code, out, _err = await shell(server, database_url, tmp_path, "cancel", "2")
        assert (code, out.split(";")[0]) == (0, "Broadcast #2 cancelled")
        code, _out, err = await shell(server, database_url, tmp_path, "cancel", "2")
        assert (code, err.strip()) == (1, "Broadcast #2 is not scheduled or running.")
