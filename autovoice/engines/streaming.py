"""Chunk plan for streaming decode: equal to whole-utterance decoding, first audio early.

The HiFi-GAN decoder is convolutional in time, so a chunk of latent frames decoded with
`halo_frames` of context on each side (then trimmed) reproduces the whole-utterance audio. The
first chunk is small for latency; chunks then double up to `max_chunk_frames`, so the extra work
of the halos stays small (about 2 * halo / max_chunk of the total). The synthesizer makes the
second chunk of an utterance 1.5 times the first (`second_chunk_frames`) rather than double the
first chunk as decoded: it must be ready before the first one has played, and the first one's
quiet start is not played. The synthesizer decodes each
plan with `gpu_plan.decode_one` (which also fits the plans to fixed GPU windows).

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChunkPlan", "chunk_plan"]


@dataclass(frozen=True)
class ChunkPlan:
    """One decoder call: frames [start, end) are kept, [window_start, window_end) are decoded."""

    start: int
    end: int
    window_start: int
    window_end: int


def chunk_plan(
    total_frames: int,
    first_chunk_frames: int,
    max_chunk_frames: int,
    halo_frames: int,
    start_frame: int = 0,
    second_chunk_frames: int | None = None,
) -> list[ChunkPlan]:
    """Chunk boundaries for latent frames [start_frame, total_frames): sizes double from the
    first chunk, or from `second_chunk_frames` when given; a chunk's halo may reach before
    `start_frame` (those frames are context only).

    >>> [(p.start, p.end) for p in chunk_plan(100, 16, 64, 8)]
    [(0, 16), (16, 48), (48, 100)]
    >>> [(p.start, p.end) for p in chunk_plan(100, 11, 64, 8, second_chunk_frames=12)]
    [(0, 11), (11, 23), (23, 47), (47, 100)]
    >>> [(p.start, p.end, p.window_start) for p in chunk_plan(100, 16, 64, 8, start_frame=5)][0]
    (5, 21, 0)
    """
    plans: list[ChunkPlan] = []
    start = min(max(0, start_frame), total_frames)
    size = max(1, first_chunk_frames)
    while start < total_frames:
        end = min(total_frames, start + size)
        # Fold a short tail into this chunk instead of paying a halo for a sliver.
        if total_frames - end < max(1, size // 2):
            end = total_frames
        plans.append(
            ChunkPlan(start, end, max(0, start - halo_frames), min(total_frames, end + halo_frames))
        )
        start = end
        if len(plans) == 1 and second_chunk_frames is not None:
            size = min(max_chunk_frames, max(1, second_chunk_frames))
        else:
            size = min(max_chunk_frames, size * 2)
    return plans
