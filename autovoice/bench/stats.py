"""Percentile summaries of timing samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Summary:
    """p50/p95/p99, mean and count of a list of milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict (rounded) for JSON."""
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(values_ms: list[float]) -> Summary:
    """Summarise timings in milliseconds (an empty list gives NaNs)."""
    if not values_ms:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan)
    data = np.asarray(values_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return Summary(
        len(data), float(p50), float(p95), float(p99), float(data.mean()), float(data.max())
    )
