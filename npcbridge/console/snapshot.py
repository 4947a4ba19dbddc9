"""The live numbers the console charts, read from the same Prometheus registry ``/metrics``
renders: nothing is counted twice. Rates (turns/s) are the page's: it divides the difference of
two snapshots' counters by the time between them."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the registry by sample name (``npcbridge_turns_total``...)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in registry.collect():
        for sample in family.samples:
            out[sample.name].append((dict(sample.labels), float(sample.value)))
    return out


def _by(rows: list[tuple[dict[str, str], float]], label: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for labels, value in rows:
        totals[labels.get(label, "")] += value
    return dict(totals)


def _histogram(rows: list[tuple[dict[str, str], float]]) -> list[list[float | str]]:
    """Cumulative buckets over every label, ``[le, count]``, the ``+Inf`` bucket last."""
    counts: dict[float, float] = defaultdict(float)
    for labels, value in rows:
        counts[float(labels["le"])] += value
    return [[("+Inf" if math.isinf(le) else le), counts[le]] for le in sorted(counts)]


def snapshot(registry: CollectorRegistry) -> dict[str, Any]:
    """Counters, the time-to-first-token histogram, rate-limit headroom and cache figures."""
    s = samples(registry)
    hits = sum(v for _, v in s.get("npcbridge_cache_hits_total", []))
    misses = sum(v for _, v in s.get("npcbridge_cache_misses_total", []))
    headroom: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, value in s.get("npcbridge_ratelimit_headroom", []):
        headroom[labels["model"]][labels["limit"]] = value
    ttft = s.get("npcbridge_upstream_ttft_seconds_count", [])
    return {
        "at": time.time(),
        "turns_total": sum(v for _, v in s.get("npcbridge_turns_total", [])),
        "turns_by_finish": _by(s.get("npcbridge_turns_total", []), "finish"),
        "errors_by_code": _by(s.get("npcbridge_errors_total", []), "code"),
        "ttft": {
            "buckets": _histogram(s.get("npcbridge_upstream_ttft_seconds_bucket", [])),
            "count": sum(v for _, v in ttft),
            "sum_s": sum(v for _, v in s.get("npcbridge_upstream_ttft_seconds_sum", [])),
        },
        "headroom": dict(headroom),
        "cache": {
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else None,
        },
        "cost_usd_by_model": _by(s.get("npcbridge_cost_usd_total", []), "model"),
        "retries": sum(v for _, v in s.get("npcbridge_retries_total", [])),
        "fallbacks": sum(v for _, v in s.get("npcbridge_fallbacks_total", [])),
        "queue_length": sum(v for _, v in s.get("npcbridge_ratelimit_queue_length", [])),
    }
