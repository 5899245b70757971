"""Counts for whoever runs the server, in Prometheus' text format at `/metrics` (only with
METRICS_TOKEN): updates handled and how long they took, broadcast outcomes; the signatures
and the outbox's depth are read from the database when the page is asked for. Counts only:
never a name, an id or a text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One process's metrics, in a registry of their own (two apps in one test process do not
    mix their counts)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "petitionbot_updates", "Updates handled, by channel", ["channel"],
            registry=self.registry,
        )  # fmt: skip
        self.handling = Histogram(
            "petitionbot_handler_seconds", "Time to answer one update (its handler)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )  # fmt: skip
        self.broadcast = Counter(
            "petitionbot_broadcast_messages", "Broadcast messages by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.signatures = Gauge(
            "petitionbot_signatures", "Signatures counted (not set aside)", registry=self.registry
        )
        self.answers = Counter(
            "petitionbot_answers_sent", "Messages sent to people in answer, by channel",
            ["channel"], registry=self.registry,
        )  # fmt: skip
        # Answers not yet counted in the database, where broadcasters read them (db/sends.py).
        self.unpublished: dict[str, int] = {}
        self.outbox = Gauge(
            "petitionbot_outbox_depth", "Broadcast messages waiting or in flight",
            registry=self.registry,
        )  # fmt: skip

    def answered(self, channel: str, count: int = 1) -> None:
        """Count answers sent to people on `channel`."""
        self.answers.labels(channel).inc(count)
        self.unpublished[channel] = self.unpublished.get(channel, 0) + count

    def render(self) -> bytes:
        """The page, in Prometheus' text format."""
        return generate_latest(self.registry)
