"""`petitionbot broadcast`: news to opted-in people, from the shell."""

from __future__ import annotations

import argparse
from typing import Any

from bot.config import Settings


def add_commands(commands: Any) -> None:
    """Add this module's subcommands to the `petitionbot` parser."""


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the subcommand if it is one of this module's; None otherwise."""
    return None
