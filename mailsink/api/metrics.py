"""``/metrics``: the server's counters and the store's size in Prometheus' exposition format.

Values are read when Prometheus scrapes, from ``sink.stats`` and the store, through a
collector registered on a registry of the app's own (prometheus-client's default registry
is process-global, and two servers in one process must not mix their figures).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .. import __version__
from ..sink import Sink
from ..store import STORE_ERRORS

__all__ = ["SinkCollector", "registry_for", "router"]

# Counters of ``Stats`` with a name and help text of their own; any other whole-number
# counter added to ``Stats`` is exported too, as ``mailsink_<field>_total``.
_COUNTERS = {
    "smtp_accepted": ("mailsink_messages_received", "Messages accepted over SMTP (250 sent)."),
    "smtp_rejected": ("mailsink_messages_rejected", "Messages refused over SMTP."),
    "smtp_accepted_bytes": (
        "mailsink_messages_received_bytes",
        "Bytes of the messages accepted over SMTP.",
    ),
    "smtp_sessions": ("mailsink_smtp_sessions", "SMTP connections opened."),
    "messages_deleted": ("mailsink_messages_deleted", "Messages deleted."),
    "smtp_connections_refused": (
        "mailsink_smtp_connections_refused",
        "SMTP connections refused (421) because the connection limit was reached.",
    ),
    "smtp_timeouts": ("mailsink_smtp_timeouts", "SMTP sessions dropped for being idle or slow."),
    "smtp_auth_failures": ("mailsink_smtp_auth_failures", "SMTP AUTH attempts refused."),
    "smtp_chaos_faults": ("mailsink_smtp_chaos_faults", "SMTP errors injected on purpose."),
}


class SinkCollector(Collector):
    """Reads a sink's counters and its store's size on every scrape."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def collect(self) -> Iterator[Metric]:
        """Every metric, as it is now."""
        sink = self.sink
        stats = sink.stats
        yield InfoMetricFamily("mailsink", "mailsink's version.", value={"version": __version__})
        start = GaugeMetricFamily(
            "mailsink_start_time_seconds", "When the server started, in Unix seconds."
        )
        start.add_metric([], stats.started)
        yield start
        for f in dataclasses.fields(stats):
            if f.name.startswith("_") or f.type not in ("int", int):
                continue
            name, help_text = _COUNTERS.get(
                f.name, (f"mailsink_{f.name}", f"{f.name.replace('_', ' ').capitalize()}.")
            )
            yield CounterMetricFamily(name, help_text, value=getattr(stats, f.name))
        webhook = sink.webhook
        if webhook is not None:
            delivered = CounterMetricFamily(
                "mailsink_webhook_deliveries",
                "Webhook calls by outcome: sent (answered 2xx), failed (gave up after retries).",
                labels=["outcome"],
            )
            delivered.add_metric(["sent"], webhook.sent)
            delivered.add_metric(["failed"], webhook.failed)
            yield delivered
            yield CounterMetricFamily(
                "mailsink_webhook_retries", "Webhook calls tried again.", value=webhook.retried
            )
        if not sink.started:
            return  # no store to read yet (or any more)
        try:
            figures = sink.store.figures()
        except STORE_ERRORS:
            return  # closing under our feet; the next scrape has the figures again
        except RuntimeError:
            return  # closed: likewise
        yield GaugeMetricFamily(
            "mailsink_messages_stored", "Messages in the store.", value=figures.total
        )
        yield GaugeMetricFamily(
            "mailsink_messages_unread", "Stored messages not yet read.", value=figures.unread
        )
        yield GaugeMetricFamily(
            "mailsink_store_messages_bytes",
            "Bytes of the stored messages, as received.",
            value=figures.message_bytes,
        )
        yield GaugeMetricFamily(
            "mailsink_store_database_bytes",
            "Size of the SQLite database, indexes and free pages included.",
            value=figures.database_bytes,
        )


def registry_for(sink: Sink) -> CollectorRegistry:
    """A registry of its own holding the sink's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SinkCollector(sink))
    return registry


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format, or OpenMetrics when the scraper asks for it."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), media_type=content_type)
