"""Latent frames made on demand: the flow runs window by window, just ahead of the decoder.

VITS's flow (z_p -> z) is convolutional in time, like the decoder, so z for frames [a, b) only
needs z_p over [a - halo, b + halo). `LazyLatent` computes the frames in growing steps, as the
chunked decoder asks for them: the first audio then waits for the flow over the first chunk's
window, not over the whole unit.

The first window, which the first audio waits for, gets less context on its right
(`FIRST_WINDOW_HALO_FRAMES`, not the flow's full reach): its last frames are then a little off
(z within ~1e-3), but they only feed the first chunk's right edge and its discarded halo. Those
frames are provisional: the next window makes them again with the full reach, so every later
chunk is decoded from exact frames.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["LazyLatent"]

#: Frames made in doubling steps before the rest of a unit is made at once.
_SMALL_STEPS_UNTIL = 64
FIRST_WINDOW_HALO_FRAMES = 20
"""Right context of the first flow window. Measured over 12 sentences (noise off): the first
chunk's audio is as close to whole decoding as with the full reach (32 frames: rel. L2 at most
2.5e-5 against 2.6e-5; the decoder's own halo dominates), while 16 gives 3.6e-4. It saves the
flow 12 of ~54 frames before the first audio."""


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
        self._first_halo = min(halo_frames, FIRST_WINDOW_HALO_FRAMES)  # see the module docstring
        self._z = np.empty_like(z_prior)
        self._ready = 0  # frames [0, _ready) are made
        self._exact = 0  # frames [0, _exact) are as the whole flow makes them
        self.flow_calls = 0

    def exact_from_start(self) -> None:
        """Give the first window the flow's whole reach too (for a unit made while earlier
        audio plays, whose first chunk is not waited for): no frame is then made twice."""
        self._first_halo = self._halo

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
        """Make frames [0, stop) available: exact ones, except on the first call, whose last
        frames may be provisional (read once, by the caller that asked for them)."""
        if stop <= self._exact:
            return
        total = self.shape[1]
        first = self._ready == 0
        # early on, small (doubling) steps: the next chunk is due before the first has played;
        # then the rest in one call: one more halo instead of many
        small = self._ready < _SMALL_STEPS_UNTIL
        stop = min(total, max(stop, 2 * self._ready)) if small else total
        start = self._exact  # provisional frames are made again
        window_start = max(0, start - self._halo)
        window_end = min(total, stop + (self._first_halo if first else self._halo))
        if window_end == total:  # every frame up to the end has its whole context: keep them all
            stop = total
        z = self._flow(self._prior[:, window_start:window_end])
        self._z[:, start:stop] = z[:, start - window_start : stop - window_start]
        self._ready = stop
        self._exact = stop if window_end == total else max(0, min(stop, window_end - self._halo))
        self.flow_calls += 1
