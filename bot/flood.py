"""A per-person flood limit: past it, updates are dropped after one polite warning.

Counted twice: in the process's memory first (a flood then costs neither the database nor
other people), and on the person's row in the batch, where every process counts the same
burst: with two processes behind a balancer the limit stays the limit, not twice it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum


class Verdict(Enum):
    """What to do with an update."""

    HANDLE = "handle"
    WARN = "warn"  # the first update over the limit: answer it with a warning only
    DROP = "drop"


@dataclass(slots=True)
class FloodGuard:
    """At most `limit` updates per person in any `window` seconds (kept in memory: a flood is
    a burst, and a restart forgetting one is harmless)."""

    limit: int = 20
    window: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _warned: dict[str, float] = field(default_factory=dict)

    def check(self, key: str) -> Verdict:
        """Count one update from `key` and say whether to handle it."""
        now = self.clock()
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            if now - self._warned.get(key, -self.window) >= self.window:
                self._warned[key] = now
                return Verdict.WARN
            return Verdict.DROP
        times.append(now)
        if len(self._seen) > 10_000:
            self._forget_idle(now)
        return Verdict.HANDLE

    def check_burst(
        self, started: datetime | None, count: int, now: datetime
    ) -> tuple[Verdict, datetime, int]:
        """Count one update in the burst kept on the person's row (when it began, how many
        so far): the verdict, and the burst to write back. A burst lasts `window` seconds
        from its first update; the first update past `limit` in it is warned."""
        if started is not None and started.tzinfo is None:  # SQLite keeps no time zone
            started = started.replace(tzinfo=UTC)
        if started is None or not 0 <= (now - started).total_seconds() < self.window:
            return Verdict.HANDLE, now, 1
        count += 1
        if count <= self.limit:
            return Verdict.HANDLE, started, count
        return (Verdict.WARN if count == self.limit + 1 else Verdict.DROP), started, count

    def _forget_idle(self, now: float) -> None:
        idle = [
            key for key, times in self._seen.items() if not times or times[-1] <= now - self.window
        ]
        for key in idle:
            self._seen.pop(key, None)
            self._warned.pop(key, None)
