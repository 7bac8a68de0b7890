"""Prometheus metrics served at ``/monitoring/prometheus/metrics`` (text exposition format 0.0.4).

Names follow TF Serving's where it has one: ``:tensorflow:serving:request_count`` (counter by
entrypoint, model and canonical status) and ``:tensorflow:serving:request_latency`` (histogram in
microseconds, as TF Serving reports it). Batching has its own histogram,
``:tensorflow:serving:batching:requests_per_batch``: its ``_count`` is the number of signature
calls (batches) and its ``_sum`` the number of requests they served, so batching is visible as
``_count < _sum``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
REQUESTS_PER_BATCH = ":tensorflow:serving:batching:requests_per_batch"
LATENCY_BUCKETS_US = (
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MICROSECONDS_PER_SECOND = 1e6


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    escaped = [value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for value in values]
    parts = [f'{name}="{value}"' for name, value in zip(names, escaped, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Counter:
    def __init__(self, name: str, help_text: str, label_names: Sequence[str]):
        self.name, self.help_text, self.label_names = name, help_text, tuple(label_names)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} counter"]
        lines += [
            f"{self.name}{_labels(self.label_names, key)} {value:g}"
            for key, value in sorted(self.values.items())
        ]
        return lines


class _Histogram:
    def __init__(self, name: str, help_text: str, label_names: Sequence[str], buckets: Sequence[float]):
        self.name, self.help_text, self.label_names = name, help_text, tuple(label_names)
        self.buckets = tuple(buckets)
        # labels -> (per-bucket counts with a final +Inf slot, sum, count)
        self.series: dict[tuple[str, ...], list] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts, total, count = self.series.get(labels, ([0] * (len(self.buckets) + 1), 0.0, 0))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.series[labels] = [counts, total + value, count + 1]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        for key, (counts, total, count) in sorted(self.series.items()):
            cumulative = 0
            for bound, bucket_count in zip((*self.buckets, "+Inf"), counts, strict=True):
                cumulative += bucket_count
                le = f'le="{bound:g}"' if bound != "+Inf" else 'le="+Inf"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {total:g}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {count}")
        return lines


class Metrics:
    """Thread-safe request and batching metrics."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests = _Counter(
            REQUEST_COUNT,
            "REST requests by entrypoint, model and status.",
            ("entrypoint", "model_name", "status"),
        )
        self._latency = _Histogram(
            REQUEST_LATENCY,
            "REST request latency in microseconds.",
            ("entrypoint", "model_name"),
            LATENCY_BUCKETS_US,
        )
        self._batches = _Histogram(
            REQUESTS_PER_BATCH,
            "Requests served per signature call (_count: calls, _sum: requests).",
            ("model_name", "signature_name"),
            BATCH_BUCKETS,
        )

    def observe_request(self, entrypoint: str, model_name: str, status: str, latency_s: float) -> None:
        """Counts one REST request.

        Args:
            entrypoint: ``REST_PREDICT``, ``REST_STATUS``, ``REST_METADATA`` or ``REST_OTHER``.
            model_name: The model in the path ("" when none).
            status: Canonical status code (``OK``, ``INVALID_ARGUMENT``...).
            latency_s: Wall time from request start to response, in seconds.
        """
        with self._lock:
            self._requests.inc((entrypoint, model_name, status))
            self._latency.observe((entrypoint, model_name), latency_s * MICROSECONDS_PER_SECOND)

    def observe_batch(self, model_name: str, signature_name: str, requests: int) -> None:
        """Counts one signature call that served ``requests`` requests."""
        with self._lock:
            self._batches.observe((model_name, signature_name), requests)

    def render(self) -> str:
        """The Prometheus text exposition of all metrics."""
        with self._lock:
            lines = self._requests.render() + self._latency.render() + self._batches.render()
        return "\n".join(lines) + "\n"
