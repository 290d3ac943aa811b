"""Streaming sample-rate conversion with python-soxr, its state carried across chunks."""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_RESAMPLE_QUALITY", "StreamResampler"]

DEFAULT_RESAMPLE_QUALITY = "HQ"
"""soxr quality recipe ("QQ", "LQ", "MQ", "HQ", "VHQ")."""


class StreamResampler:
    """Convert a mono float32 stream from `in_rate_hz` to `out_rate_hz` chunk by chunk.

    Joins between chunks are seamless: feeding a signal in any chunking gives the same output as
    one `soxr.ResampleStream` fed the same chunks (and, to rounding, as resampling it whole).
    When the rates are equal the samples pass through unchanged (as float32).

    Args:
        in_rate_hz: Rate of the samples given to `process`.
        out_rate_hz: Rate of the samples returned.
        quality: soxr quality recipe.

    Raises:
        ValueError: If a rate is not a positive integer.

    Thread: one thread at a time (the writer of an `AudioOutput`). RT-safe: no.

    >>> StreamResampler(22050, 22050).process(np.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(
        self, in_rate_hz: int, out_rate_hz: int, quality: str = DEFAULT_RESAMPLE_QUALITY
    ) -> None:
        for name, rate in (("in_rate_hz", in_rate_hz), ("out_rate_hz", out_rate_hz)):
            if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
                raise ValueError(f"{name} must be a positive integer, got {rate!r}")
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self.quality = quality
        self._stream = None
        self.reset()

    @property
    def passthrough(self) -> bool:
        """True when no conversion happens (equal rates)."""
        return self.in_rate_hz == self.out_rate_hz

    def reset(self) -> None:
        """Forget all state (call between unrelated signals). Thread: owner. RT-safe: no."""
        if self.passthrough:
            self._stream = None
            return
        import soxr

        self._stream = soxr.ResampleStream(
            self.in_rate_hz, self.out_rate_hz, 1, dtype="float32", quality=self.quality
        )

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample one chunk.

        Args:
            samples: 1-D array of frames at `in_rate_hz` (may be empty).
            last: True for the final chunk of a signal: flushes the filter's tail. The resampler
                is then reset, ready for the next signal.

        Returns:
            A 1-D float32 array at `out_rate_hz` (possibly empty).

        Thread: owner. RT-safe: no.
        """
        x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        if self._stream is None:
            return x
        y = self._stream.resample_chunk(x, last=last)
        if last:
            self.reset()
        return np.asarray(y, dtype=np.float32).reshape(-1)

    def __repr__(self) -> str:
        return f"StreamResampler(in_rate_hz={self.in_rate_hz}, out_rate_hz={self.out_rate_hz})"
