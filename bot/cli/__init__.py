"""`petitionbot`: run the bot, chat in a terminal, manage the database.

Each command group is a module of this package with `add_commands(subparsers)` and
`run(args, settings) -> exit code, or None when the command is not its own`; `GROUPS` lists
them, in the order `--help` shows them. A module imports what its command needs only when
it runs, so `petitionbot --help` and the quick commands start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.cli import broadcast, codes, data, database, faq, privacy, serve
from bot.config import Settings, describe_error
from handlers.reading.faq_content import ContentError

GROUPS = (serve, faq, privacy, data, codes, broadcast, database)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petitionbot", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `petitionbot` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        return 2
    logging.basicConfig(
        level="WARNING" if serve.is_chat(args, settings) else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        for group in GROUPS:
            code = group.run(args, settings)
            if code is not None:
                return int(code)
    except KeyboardInterrupt:
        return 130
    except ContentError as error:
        # A content file organisers edit is wrong: say which entry, and stop.
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"no command group runs {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
