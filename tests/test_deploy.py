"""The deployment files in deploy/ are true: the systemd units run commands the CLI knows,
set settings that exist and validate, and the proxy sends to the ports the units listen on."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import workers
from bot.app import build_app
from bot.cli import _parser
from bot.config import ROOT, Settings

UNITS = ROOT / "deploy" / "systemd"
PROGRAM = "/opt/petitionbot/.venv/bin/petitionbot"


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections, each a list of (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert current is not None, f"{path.name}: {raw!r} before any section"
        assert sep, f"{path.name}: {raw!r} is no key=value"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for name, value in section if name == key]


@pytest.mark.parametrize("path", sorted(UNITS.glob("*.service")), ids=lambda path: path.name)
def test_each_unit_runs_a_real_command_with_real_settings(path: Path) -> None:
    sections = unit(path)
    assert {"Unit", "Service", "Install"} <= sections.keys()
    service = sections["Service"]
    [command] = values(service, "ExecStart")
    program, *arguments = shlex.split(command)
    assert program == PROGRAM
    _parser().parse_args(arguments)  # exits on a command the CLI does not know
    environment = {}
    for assignment in values(service, "Environment"):
        name, _sep, value = assignment.partition("=")
        assert name.lower() in Settings.model_fields, name
        environment[name.lower()] = value.replace("%i", "1")
    Settings(_env_file=None, **environment)  # type: ignore[call-arg]  # they validate
    assert values(service, "UMask") == ["0077"]  # files readable by their owner only
    assert values(service, "User") == ["petitionbot"]
    assert values(service, "NoNewPrivileges") == ["true"]
    assert values(service, "EnvironmentFile") == ["/etc/petitionbot/env"]
    if values(service, "Type") != ["oneshot"]:
        assert values(service, "Restart") == ["always"]
        assert values(service, "KillSignal") == ["SIGTERM"]


def test_the_proxy_sends_to_the_ports_the_bot_processes_listen_on() -> None:
    template = unit(UNITS / "petitionbot@.service")["Service"]
    [port] = [v for v in values(template, "Environment") if v.startswith("WEBHOOK_PORT=")]
    ports = {port.split("=", 1)[1].replace("%i", str(instance)) for instance in (1, 2)}
    proxy = (ROOT / "deploy" / "nginx" / "petitionbot.conf").read_text()
    upstream = set(re.findall(r"server 127\.0\.0\.1:(\d+)", proxy))
    assert upstream == ports == {"8081", "8082"}
    # One broadcaster: the bots leave it to its own unit.
    assert "BROADCAST_IN_BOT=false" in values(template, "Environment")
    worker = unit(UNITS / "petitionbot-broadcast.service")["Service"]
    assert values(worker, "ExecStart") == [f"{PROGRAM} broadcast worker"]
    webhook = Settings(_env_file=None).webhook_path  # type: ignore[call-arg]
    for path in (webhook, "/messenger/webhook"):
        assert f"location = {path} " in proxy


@pytest.mark.parametrize("in_bot", [True, False])
async def test_the_bot_runs_a_broadcaster_beside_it_only_when_told(
    make_settings: Callable[..., Settings], in_bot: bool
) -> None:
    app = await build_app(make_settings(broadcast_in_bot=in_bot))
    try:
        async with workers.beside(app)(None):
            names = {task.get_name() for task in asyncio.all_tasks()}
            assert ("broadcaster" in names) is in_bot
    finally:
        await app.close()
