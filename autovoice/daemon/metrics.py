"""Daemon metrics: first-audio latency percentiles over a window, real-time factor, memory.

Thread: any (one lock). RT-safe: no.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import deque

import numpy as np

__all__ = ["Metrics", "percentiles", "rss_bytes"]

LATENCY_WINDOW = 1000
"""First-audio latencies kept for the percentiles (the most recent ones)."""


def percentiles(values: list[float] | deque[float]) -> dict[str, float | int | None]:
    """p50/p95/p99 (and count) of `values`; None each when empty.

    >>> percentiles([1.0, 2.0, 3.0])["p50"]
    2.0
    """
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None}
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(arr, [50, 95, 99]))
    return {"count": len(arr), "p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2)}


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        current = peak
    return current, peak


class Metrics:
    """Counters and windows the daemon reports in `status`."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self.started_s = time.monotonic()
        self._lock = threading.Lock()
        self._first_audio_ms: deque[float] = deque(maxlen=window)
        self._heard_ms: deque[float] = deque(maxlen=window)
        self.accepted = 0
        self.done = 0
        self.cancelled = 0
        self.failed = 0
        self.rejected = 0
        self.audio_s = 0.0
        self.compute_s = 0.0

    def count(self, outcome: str) -> None:
        """Count one request outcome: accepted, done, cancelled, failed or rejected."""
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def first_audio(self, latency_ms: float, heard_ms: float) -> None:
        """Record one first-audio latency (and the same plus the output latency)."""
        with self._lock:
            self._first_audio_ms.append(latency_ms)
            self._heard_ms.append(heard_ms)

    def synthesis(self, audio_s: float, compute_s: float) -> None:
        """Record synthesised audio length and the inference time it took."""
        with self._lock:
            self.audio_s += audio_s
            self.compute_s += compute_s

    def snapshot(self) -> dict[str, object]:
        """Everything as a JSON-ready dict."""
        current, peak = rss_bytes()
        with self._lock:
            return {
                "uptime_s": round(time.monotonic() - self.started_s, 3),
                "utterances": {
                    "accepted": self.accepted,
                    "done": self.done,
                    "cancelled": self.cancelled,
                    "failed": self.failed,
                    "rejected": self.rejected,
                },
                "first_audio_ms": percentiles(self._first_audio_ms),
                "heard_ms": percentiles(self._heard_ms),
                "rtf": round(self.compute_s / self.audio_s, 4) if self.audio_s else None,
                "audio_s": round(self.audio_s, 3),
                "compute_s": round(self.compute_s, 3),
                "rss_bytes": current,
                "peak_rss_bytes": peak,
            }
