"""aiogram's Telegram types with their validators built on first use, not all at import.

aiogram declares its ~900 models with pydantic's `defer_build`, then ends `aiogram.types`
by rebuilding every one of them at once, each with the types' shared namespace (their
annotations name each other as strings). That loop is most of the seconds `import aiogram`
costs, at every start of the bot, while the bot validates a few dozen of those types.

`import_aiogram()` runs that import with the loop's rebuild reduced to what a later build
needs: the shared names are put into each model's own module, where pydantic looks them up
when it builds the model the first time it validates one (an update's first arrival: a
fifth of a second, once). The methods (SendMessage...), which aiogram builds as it declares
them, are deferred the same way. Nothing else changes: the same models, the same
validation; tests/test_on_demand.py builds every one of them this way and compares.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

_PREFIX = "aiogram.types."


def import_aiogram() -> None:
    """Import `aiogram.types` with its models left to be built on first use (once)."""
    if "aiogram.types" in sys.modules:
        return
    rebuild = BaseModel.__dict__["model_rebuild"]  # the classmethod itself

    def deferred(cls: type[BaseModel], **options: Any) -> bool | None:
        names = options.get("_types_namespace")
        if names is None or not cls.__module__.startswith(_PREFIX):
            # Anyone else's rebuild: as it was (one frame deeper, for its namespace lookup).
            options["_parent_namespace_depth"] = options.get("_parent_namespace_depth", 2) + 1
            result: bool | None = rebuild.__func__(cls, **options)
            return result
        module = sys.modules[cls.__module__].__dict__
        for name, value in names.items():
            module.setdefault(name, value)
        return None

    BaseModel.model_rebuild = classmethod(deferred)  # type: ignore[method-assign,assignment]
    # The ~170 methods (SendMessage...) would be built as they are declared: every model
    # declared during this import is deferred too (a base's config is its subclasses').
    config = BaseModel.model_config
    BaseModel.model_config = {**config, "defer_build": True}
    try:
        import aiogram.types  # noqa: F401 (its last lines call model_rebuild on every type)
    finally:
        BaseModel.model_rebuild = rebuild  # type: ignore[method-assign]
        BaseModel.model_config = config
