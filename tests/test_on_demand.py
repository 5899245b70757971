"""aiogram's models built on first use (bot/channels/on_demand.py) are the models aiogram
builds at import: every one of them, field by field, in a fresh process each way."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESCRIBE = """
import json, sys
if sys.argv[1] == "on-demand":
    from bot.channels.on_demand import import_aiogram
    import_aiogram()
import aiogram.methods as methods
import aiogram.types as types
from pydantic import BaseModel
models = [getattr(types, name) for name in sorted(types.__all__)]
models += [getattr(methods, name) for name in sorted(methods.__all__)]
models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
waiting = [m.__name__ for m in models if not m.__pydantic_complete__]
update = types.Update.model_validate({
    "update_id": 1,
    "message": {"message_id": 1, "date": 0, "text": "/start",
                "chat": {"id": 1, "type": "private"},
                "from": {"id": 1, "is_bot": False, "first_name": "A"}},
})
for model in models:
    if not model.__pydantic_complete__:
        assert model.model_rebuild(raise_errors=True), model.__name__
sent = methods.SendMessage(chat_id=1, text="<b>hi</b>", reply_markup={"remove_keyboard": True})
fields = {m.__name__: {f: repr(i.annotation) for f, i in m.model_fields.items()} for m in models}
print(json.dumps({"waiting": waiting, "text": update.message.text, "fields": fields,
                  "sent": repr(sent)}))
"""


def describe(how: str) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", DESCRIBE, how], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # Functions in annotations (serialisers) print with their address, which differs.
    found: dict[str, object] = json.loads(re.sub(r" at 0x[0-9a-f]+", "", done.stdout))
    return found


def test_models_built_on_first_use_are_the_models_aiogram_builds() -> None:
    eager, on_demand = describe("eager"), describe("on-demand")
    assert eager["waiting"] == []
    assert len(on_demand["waiting"]) > 500  # left for later: the time saved at start
    assert on_demand["sent"] == eager["sent"]
    assert on_demand["text"] == eager["text"] == "/start"
    assert on_demand["fields"] == eager["fields"]
