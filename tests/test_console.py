"""The console channel, driven through piped standard input like a scripted conversation."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.config import ROOT
from db.protect import ContactCipher
from tests.conftest import DATA_KEY, HASH_KEY
from words.i18n import Translations

KM = Translations(ROOT / "locales").get("km").gettext


def run_cli(tmp_path: Path, args: list[str], script: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_URL"))
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'console.sqlite3'}"
    env["TELEGRAM_BOT_USERNAME"] = "petition_test_bot"
    env["DATA_KEY"], env["HASH_KEY"] = DATA_KEY, HASH_KEY
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments
        [sys.executable, "-m", "bot", *args],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def rows(tmp_path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(tmp_path / "console.sqlite3") as connection:
        query = (
            "SELECT full_name, country, region, birth_province, email, language, channel"
            " FROM signatures"
        )
        return connection.execute(query).fetchall()


def test_a_piped_conversation_signs_in_khmer(tmp_path: Path) -> None:
    script = (
        "\n".join(
            [
                "1",  # ភាសាខ្មែរ
                "1",  # sign
                "១",  # I agree, the number typed in Khmer digits
                "ចាន់ សុភាព",
                "1",  # United States
                "Long Beach, CA",
                "17",  # Siem Reap
                "sophea@example.org",
                "1",  # yes to news
                "1",  # confirm
            ]
        )
        + "\n"
    )
    result = run_cli(tmp_path, ["chat", "--user-id", "7"], script)
    assert result.returncode == 0, result.stderr
    assert "[1] ភាសាខ្មែរ   [2] English" in result.stdout
    assert (
        KM("Thank you, {name}! Your signature is recorded.").format(name="ចាន់ សុភាព")
        in result.stdout
    )
    assert "https://t.me/petition_test_bot?start=" in result.stdout
    assert "<b>" not in result.stdout  # markup is for Telegram, not the terminal
    [(*answers, email, language, channel)] = rows(tmp_path)
    assert answers == ["ចាន់ សុភាព", "US", "California", "17"]
    assert (language, channel) == ("km", "console")
    # Kept encrypted: the file itself never holds the address.
    assert "sophea" not in email
    assert ContactCipher([DATA_KEY], HASH_KEY).open(email) == "sophea@example.org"
    assert b"sophea@example.org" not in (tmp_path / "console.sqlite3").read_bytes()


def test_run_without_a_token_opens_the_console_and_ends_at_end_of_input(tmp_path: Path) -> None:
    result = run_cli(tmp_path, ["run"], "2\n/help\n")
    assert result.returncode == 0, result.stderr
    assert "Please choose your language." in result.stdout
    assert "/mysignature" in result.stdout
    assert result.stderr == ""


def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PETITION_GOAL=lots\n")
    result = run_cli(tmp_path, ["run"], "")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: PETITION_GOAL: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_questions_are_answered_in_the_console(tmp_path: Path) -> None:
    result = run_cli(tmp_path, ["chat"], "2\n/faq\n7\nhow do I take my signature back\n")
    assert result.returncode == 0, result.stderr
    assert "Questions people ask. Choose one:" in result.stdout
    assert "[1] Can I vote from abroad now?" in result.stdout
    assert "You asked about: How do I withdraw my signature?" in result.stdout
