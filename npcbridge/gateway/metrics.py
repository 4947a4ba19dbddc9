"""Prometheus metrics of one server, in a registry of its own (no global registry).

``GET /metrics`` (path configurable) answers :meth:`Metrics.render` in Prometheus' text format.
Every series is prefixed ``npcbridge_``; see docs/gateway.md for the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from .worker_metrics import WorkerMetrics

#: the content type of :meth:`Metrics.render`
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    """The counters, gauges and histograms of one server."""

    def __init__(self, known: Callable[[str], bool] | None = None) -> None:
        """``known``: whether a model id is the catalog's; model labels are limited to those
        (clients may name any model). None: every id is a label."""
        self.known = known
        self.registry = CollectorRegistry(auto_describe=True)
        #: this process's part of a several-worker server's ``/metrics`` (None: one process)
        self.workers: WorkerMetrics | None = None
        r = self.registry
        self.turns = Counter(
            "npcbridge_turns",
            "Turns that reached the gateway, by how they finished",
            ["finish", "model"],
            registry=r,
        )
        self.errors = Counter(
            "npcbridge_errors", "Turns that failed, by protocol error code", ["code"], registry=r
        )
        self.upstream_requests = Counter(
            "npcbridge_upstream_requests",
            "Requests sent upstream, by outcome",
            ["model", "outcome"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "npcbridge_upstream_latency_seconds",
            "Upstream stream duration, request to end",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "npcbridge_upstream_ttft_seconds",
            "Upstream time to first token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "npcbridge_tokens", "Tokens the upstream reported", ["model", "direction"], registry=r
        )
        self.cost = Counter(
            "npcbridge_cost_usd", "Spending in US dollars from real usage", ["model"], registry=r
        )
        self.retries = Counter(
            "npcbridge_retries",
            "Upstream attempts retried, by reason",
            ["model", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            "npcbridge_fallbacks",
            "Turns moved to a fallback model",
            ["from_model", "to_model"],
            registry=r,
        )
        self.ratelimit_wait = Histogram(
            "npcbridge_ratelimit_wait_seconds",
            "Time turns waited for rate-limit capacity",
            ["model"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.ratelimited = Counter(
            "npcbridge_ratelimit_refusals",
            "Requests refused because the wait was too long",
            ["model"],
            registry=r,
        )
        self.queue_length = Gauge(
            "npcbridge_ratelimit_queue_length",
            "Requests waiting in the rate-limit queues",
            registry=r,
        )
        self.cache_hits = Counter("npcbridge_cache_hits", "Response cache hits", registry=r)
        self.cache_misses = Counter(
            "npcbridge_cache_misses", "Response cache misses (cacheable turns)", registry=r
        )
        self.breaker_open = Gauge(
            "npcbridge_breaker_open",
            "1 when the model's circuit breaker is open",
            ["model"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "npcbridge_budget_refusals", "Turns refused by a budget", registry=r
        )
        self.memory_writes_dropped = Counter(
            "npcbridge_memory_writes_dropped",
            "Store writes (memory, budget settlements) lost while the store was unavailable",
            registry=r,
        )
        self.memory_writes_queued = Gauge(
            "npcbridge_memory_writes_queued",
            "Store writes (memory, budget settlements) waiting for the store to answer again",
            registry=r,
        )

    def model(self, model_id: str) -> str:
        """The label for a model: its id when it is in the catalog, else ``other``."""
        return model_id if self.known is None or self.known(model_id) else "other"

    def upstream_request(self, model_id: str, outcome: str, seconds: float) -> None:
        """Count one request sent upstream (text or speech): its outcome and its latency."""
        label = self.model(model_id)
        self.upstream_requests.labels(label, outcome).inc()
        self.upstream_latency.labels(label).observe(seconds)

    def track_headroom(self, read: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """Export ``npcbridge_ratelimit_headroom{model,limit}`` (the share of each rate-limit
        bucket available, 1 full, 0 empty) from ``read()`` at every scrape: buckets appear as
        they are configured or learnt from the upstream's headers."""
        self.registry.register(_Headroom(read, self.model))

    def track_queue(self, length: Callable[[], int]) -> None:
        """Read the queue length from ``length`` at every scrape."""
        self.queue_length.set_function(length)

    def join_workers(self, folder: Path | None, index: int | None) -> None:
        """Take part in the ``/metrics`` of several workers sharing ``folder`` (as worker
        ``index``; nothing when either is None): see :mod:`.worker_metrics`."""
        if folder is None or index is None:
            return
        self.workers = WorkerMetrics(folder, index)
        self.workers.start(lambda: generate_latest(self.registry))

    async def leave_workers(self) -> None:
        """Stop publishing this worker's series."""
        if self.workers is not None:
            await self.workers.stop()

    def render(self) -> bytes:
        """The ``/metrics`` body in Prometheus' text format (:data:`CONTENT_TYPE`): every
        worker's series, each labelled ``worker``, when the server runs as several workers."""
        body = generate_latest(self.registry)
        if self.workers is not None:
            body = self.workers.merged(body)
        return body


class _Headroom(Collector):
    """The rate-limit headroom gauge, read when scraped."""

    def __init__(
        self, read: Callable[[], Iterable[tuple[str, str, float]]], label: Callable[[str], str]
    ) -> None:
        self.read = read
        self.label = label

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """No samples at registration (they are read at each scrape)."""
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """One sample per (model, bucket)."""
        family = GaugeMetricFamily(
            "npcbridge_ratelimit_headroom",
            "Share of the model's rate-limit bucket available now (1 full, 0 empty)",
            labels=["model", "limit"],
        )
        for model, bucket, value in self.read():
            if self.label(model) == model:
                family.add_metric([model, bucket], value)
        yield family
