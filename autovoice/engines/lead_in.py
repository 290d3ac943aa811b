"""The quiet lead-in of an utterance: found, so it is neither decoded nor played.

A Piper voice's output starts with 25-55 ms (up to 170 ms) below -60 dBFS: the frames of the
BOS phoneme (and the pad after it). Played, they are pure latency. The synthesizer drops them
from the first unit of an utterance only (pauses inside and between sentences stay), in two
steps:

1. before decoding, the frames of the BOS phoneme less `SAFETY_FRAMES` (from the durations the
   engine reports): measured over 44 sentences x 5 settings (noise, rate 0.5-2), the first
   audible sample never came earlier than 2 frames before the BOS phoneme's end. The first
   chunk is made longer by the BOS frames still decoded, so after trimming it still plays
   `first_chunk_frames` (the time the next chunk has to be made in; measured under load:
   without it the ring ran dry 50-95 ms after the onset);
2. in the first decoded chunks, every sample before the first audible one less
   `MARGIN_S` (so the attack of an onset consonant is kept).

What is played then equals the whole-utterance audio from (onset - margin) on.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "AUDIBLE",
    "MARGIN_S",
    "SAFETY_FRAMES",
    "audible_start",
    "lead_frames",
    "silent_frames",
]

AUDIBLE = 1e-3
"""A sample with |x| above this (-60 dBFS) is audible (the audio output's threshold too)."""
MARGIN_S = 0.001
"""Quiet audio kept before the first audible sample, in seconds. What it keeps is below -60
dBFS by definition, so it only keeps the onset from starting with a step; each millisecond of
it is a millisecond of heard latency (4 ms before 2026-11-30: heard p50 3.5 ms later,
BENCHMARKS.md)."""
SAFETY_FRAMES = 3
"""Frames of the BOS phoneme still decoded, before its end."""


def silent_frames(ids: Sequence[int], durations: Sequence[int] | None, bos_id: int | None) -> int:
    """Leading latent frames that hold no audible sound: the BOS phoneme's less the safety.

    0 when the engine reports no durations or the unit does not start with BOS.

    >>> silent_frames([1, 0, 20], [9, 2, 3], bos_id=1), silent_frames([1, 0], None, 1)
    (6, 0)
    """
    if durations is None or not len(ids) or bos_id is None or ids[0] != bos_id:
        return 0
    if len(durations) != len(ids):
        return 0
    return max(0, int(durations[0]) - SAFETY_FRAMES)


def lead_frames(
    ids: Sequence[int], durations: Sequence[int] | None, bos_id: int | None
) -> tuple[int, int]:
    """(frames not decoded, BOS frames decoded but quiet) of a unit's start.

    The first chunk is made longer by the second figure: its quiet start is trimmed, and it
    must still play as long as planned while the next chunk is made.

    >>> lead_frames([1, 0, 20], [9, 2, 3], bos_id=1), lead_frames([1, 0, 20], [2, 2, 3], 1)
    ((6, 3), (0, 2))
    """
    skip = silent_frames(ids, durations, bos_id)
    if durations is None or skip == 0 and (not len(ids) or ids[0] != bos_id):
        return 0, 0
    return skip, int(durations[0]) - skip


def audible_start(samples: np.ndarray, margin_samples: int) -> int | None:
    """Index from which to play `samples`: `margin_samples` before the first audible sample
    (0 at the least); None when nothing in it is audible.

    >>> audible_start(np.array([0.0, 1e-4, 0.0, 0.5], dtype=np.float32), 1)
    2
    """
    loud = np.flatnonzero(np.abs(samples) > AUDIBLE)
    if not len(loud):
        return None
    return max(0, int(loud[0]) - margin_samples)
