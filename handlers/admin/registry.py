"""How an admin feature names its commands: a `Commands` table per feature module, collected
in `handlers/admin/__init__.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.base import Context, Incoming, Reply

AdminCommand = Callable[[Context, Incoming], Awaitable[list[Reply]]]


class Commands(dict[str, AdminCommand]):
    """One feature's admin commands by name; `@commands("name")` adds `/name argument`."""

    def __call__(self, name: str) -> Callable[[AdminCommand], AdminCommand]:
        """Register the decorated function as the admin command `/name`."""

        def register(handler: AdminCommand) -> AdminCommand:
            self[name] = handler
            return handler

        return register
