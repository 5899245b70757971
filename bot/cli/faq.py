"""`petitionbot faq ask` and `faq check`: what the FAQ matcher finds, and whether the FAQ
file is right."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.config import Settings


def add_commands(commands: Any) -> None:
    """Add `faq ask` and `faq check`."""
    faq = commands.add_parser("faq", help="the questions the bot answers")
    faq_commands = faq.add_subparsers(dest="faq_command", required=True)
    ask = faq_commands.add_parser("ask", help="which topic a question finds, and its score")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    check = faq_commands.add_parser("check", help="validate the FAQ file")
    check.add_argument("--file", type=Path, help="the file to check (default: FAQ_FILE)")


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of these; None otherwise."""
    return _faq(args, settings) if args.command == "faq" else None


def _faq(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.reading.content import build_matcher
    from handlers.reading.faq_content import check_faq, load_faq

    if args.faq_command == "check":
        path = args.file or settings.faq_file
        topics, problems = check_faq(path)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"{path}: {len(topics)} topics, each in Khmer and English")
        return 0
    matcher = build_matcher(load_faq(settings.faq_file))
    sure, close = matcher.answer(args.question)
    best = matcher.rank(args.question)[0]
    if args.json:
        print(json.dumps({
            "topic": sure.topic if sure else None,
            "score": round(best.score, 4),
            "best": best.topic,
            "suggestions": [{"topic": m.topic, "score": round(m.score, 4)} for m in close],
        }))  # fmt: skip
    elif sure is not None:
        print(f"{sure.topic} {sure.score:.2f}")
    else:
        close_list = ", ".join(f"{m.topic} {m.score:.2f}" for m in close)
        print(f"none (closest: {close_list})" if close else "none")
    return 0
