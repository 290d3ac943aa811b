"""Latent frames made on demand: the flow runs window by window, just ahead of the decoder.

VITS's flow (z_p -> z) is convolutional in time, like the decoder, so z for frames [a, b) only
needs z_p over [a - halo, b + halo). `LazyLatent` computes each frame once, in growing steps, as
the chunked decoder asks for it: the first audio then waits for the flow over the first chunk's
window, not over the whole unit.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["LazyLatent"]

#: Frames made in doubling steps before the rest of a unit is made at once.
_SMALL_STEPS_UNTIL = 64


class LazyLatent:
    """z [channels, frames], computed from z_p by `flow` only when a window is asked for.

    Supports `shape`, `z[:, a:b]` (computes up to b) and `np.asarray(z)` (computes it all).

    Args:
        z_prior: z_p, float32 [channels, frames].
        flow: Maps a window of z_p [channels, n] to z [channels, n].
        halo_frames: Context on each side that makes a window equal the whole flow.
        durations: Latent frames of each phoneme id (their sum is the frames of z), or None
            when the engine does not know them.
    """

    def __init__(
        self,
        z_prior: np.ndarray,
        flow: Callable[[np.ndarray], np.ndarray],
        halo_frames: int,
        durations: np.ndarray | None = None,
    ) -> None:
        self.durations = durations
        self._prior = z_prior
        self._flow = flow
        self._halo = halo_frames
        self._z = np.empty_like(z_prior)
        self._ready = 0
        self.flow_calls = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """(channels, frames), like the array it stands for."""
        return self._prior.shape

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        channels, frames = key
        stop = frames.stop if frames.stop is not None else self.shape[1]
        self._ensure(min(stop, self.shape[1]))
        return self._z[channels, frames]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        self._ensure(self.shape[1])
        return self._z if dtype is None else self._z.astype(dtype)

    def _ensure(self, stop: int) -> None:
        if stop <= self._ready:
            return
        total = self.shape[1]
        # early on, small (doubling) steps: the next chunk is due before the first has played;
        # then the rest in one call: one more halo instead of many
        small = self._ready < _SMALL_STEPS_UNTIL
        stop = min(total, max(stop, 2 * self._ready)) if small else total
        start = self._ready
        window_start = max(0, start - self._halo)
        window_end = min(total, stop + self._halo)
        z = self._flow(self._prior[:, window_start:window_end])
        self._z[:, start:stop] = z[:, start - window_start : stop - window_start]
        self._ready = stop
        self.flow_calls += 1
