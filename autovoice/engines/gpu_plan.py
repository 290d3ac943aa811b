"""Fixed shapes and precision for the GPU engines (CUDA graphs, TensorRT); no torch needed.

CUDA graphs replay fixed shapes only, so the GPU engines run each stage at one of a few sizes:

- Encoder: phoneme ids padded up to a length bucket (masks make the padding exact), and the
  flow's frames padded up to a frame bucket (its frame mask makes that exact too). A clause
  longer than the largest bucket runs eagerly: keeping clauses short is the frontend's job
  (`streaming.max_unit_phonemes` packs clauses; one clause longer than that is rare).
- Decoder: the HiFi-GAN decoder has no mask, so zero-padding a window at its end changes the
  last samples (measured: 6 % relative error). Instead every chunk of `chunk_plan` is decoded
  in a window of one of a few fixed sizes, *slid* over the real latent frames: the window keeps
  at least the halo the streaming plan asks for, and only gains context (more left context at
  a clause's end, more right context at its start). A clause shorter than the smallest window
  is decoded eagerly. The kept samples are the streaming plan's, so switching engines mid-clause
  never repeats or skips audio.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from autovoice.engines.streaming import ChunkPlan, chunk_plan

__all__ = [
    "DECODER_DTYPES",
    "decode_planned",
    "decoder_windows",
    "frame_buckets",
    "phoneme_buckets",
    "pick_bucket",
    "resolve_precision",
    "stream_plan",
]

MIN_PHONEME_BUCKET = 32
"""Smallest phoneme-length bucket (ids are padded up to a power of two from here)."""
MAX_PHONEME_BUCKET = 1024
"""Largest phoneme bucket; longer clauses run eagerly."""
MIN_FRAME_BUCKET = 64
"""Smallest latent-frame bucket of the flow."""
MAX_FRAME_BUCKET = 4096
"""Largest frame bucket of the flow (47 s at 22050 Hz); longer clauses run the flow eagerly."""
DECODER_DTYPES = ("fp32", "fp16", "bf16")
"""Precisions a GPU decoder may run in (the encoder always runs fp32: see `resolve_precision`)."""


def resolve_precision(mode: str, precision: str) -> str:
    """The decoder precision of a GPU engine for the configured mode and precision.

    `quality` forces fp32; `speed` turns the default fp32 into fp16 (bf16 stays bf16);
    `balanced` uses `precision` as configured. The encoder (text encoder, duration predictor,
    flow) always runs fp32: durations are rounded up (ceil), so half precision there could
    change the number of samples, while the decoder holds nearly all the compute.

    >>> resolve_precision("speed", "fp32"), resolve_precision("quality", "fp16")
    ('fp16', 'fp32')

    Raises:
        ValueError: unknown mode or precision.
    """
    if precision not in DECODER_DTYPES:
        raise ValueError(f"precision must be one of {', '.join(DECODER_DTYPES)}, got {precision!r}")
    if mode == "quality":
        return "fp32"
    if mode == "speed":
        return "fp16" if precision == "fp32" else precision
    if mode == "balanced":
        return precision
    raise ValueError(f"mode must be speed, balanced or quality, got {mode!r}")


def _powers_of_two(low: int, high: int) -> tuple[int, ...]:
    sizes = []
    size = low
    while size < high:
        sizes.append(size)
        size *= 2
    sizes.append(size)
    return tuple(sizes)


def phoneme_buckets(max_unit_phonemes: int) -> tuple[int, ...]:
    """Phoneme-length buckets: powers of two from 32 covering `max_unit_phonemes` (+ margin).

    The largest bucket is at least twice `max_unit_phonemes`, so a packed unit whose last
    clause overshot the limit still fits.

    >>> phoneme_buckets(200)
    (32, 64, 128, 256, 512)
    """
    if max_unit_phonemes < 1:
        raise ValueError(f"max_unit_phonemes must be >= 1, got {max_unit_phonemes}")
    return _powers_of_two(MIN_PHONEME_BUCKET, min(MAX_PHONEME_BUCKET, 2 * max_unit_phonemes))


def frame_buckets(max_frames: int = MAX_FRAME_BUCKET) -> tuple[int, ...]:
    """Latent-frame buckets of the flow: powers of two from 64 up to `max_frames`.

    >>> frame_buckets(1000)
    (64, 128, 256, 512, 1024)
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    return _powers_of_two(MIN_FRAME_BUCKET, max_frames)


def pick_bucket(length: int, buckets: Sequence[int]) -> int | None:
    """Smallest bucket >= `length`, or None when none is large enough.

    >>> pick_bucket(33, (32, 64)), pick_bucket(65, (32, 64))
    (64, None)
    """
    for size in sorted(buckets):
        if size >= length:
            return size
    return None


def decoder_windows(first_chunk_frames: int, max_chunk_frames: int, halo_frames: int) -> tuple:
    """Fixed decoder window sizes (frames) that cover every window of `chunk_plan`.

    One per chunk size (chunk + 2 halos, sizes doubling from the first chunk), plus the largest
    window a folded last chunk can need (1.5 * max chunk + halo).

    >>> decoder_windows(16, 256, 16)
    (48, 64, 96, 160, 288, 400)
    """
    sizes = set()
    size = max(1, first_chunk_frames)
    while True:
        sizes.add(size + 2 * halo_frames)
        if size >= max_chunk_frames:
            break
        size = min(max_chunk_frames, size * 2)
    largest = max(1, max_chunk_frames)
    sizes.add(largest + largest // 2 + halo_frames)
    return tuple(sorted(sizes))


def stream_plan(
    total_frames: int,
    first_chunk_frames: int,
    max_chunk_frames: int,
    halo_frames: int,
    windows: Sequence[int] = (),
    start_frame: int = 0,
    second_chunk_frames: int | None = None,
) -> list[ChunkPlan]:
    """`chunk_plan` (from `start_frame`, second chunk as given), with each window widened and
    slid to a size from `windows` when it fits.

    The kept frames [start, end) are exactly `chunk_plan`'s; a window only grows, so it keeps at
    least the context the streaming plan gives. A window that no size fits (a clause shorter
    than the smallest window) is left as it is (the engine decodes it eagerly).

    >>> plans = stream_plan(100, 16, 64, 8, (32, 64, 80))
    >>> [(p.start, p.end, p.window_start, p.window_end) for p in plans]
    [(0, 16, 0, 32), (16, 48, 8, 72), (48, 100, 36, 100)]
    """
    plans = chunk_plan(
        total_frames,
        first_chunk_frames,
        max_chunk_frames,
        halo_frames,
        start_frame,
        second_chunk_frames,
    )
    if not windows:
        return plans
    out = []
    for plan in plans:
        size = pick_bucket(plan.window_end - plan.window_start, windows)
        if size is None or size > total_frames:
            out.append(plan)
            continue
        window_start = min(plan.window_start, total_frames - size)
        out.append(ChunkPlan(plan.start, plan.end, window_start, window_start + size))
    return out


def decode_planned(
    backend: Any, z: np.ndarray, speaker_id: int | None, plans: Sequence[ChunkPlan]
) -> Iterator[np.ndarray]:
    """Yield the kept audio of each plan, decoding its window with `backend.decode`."""
    for plan in plans:
        yield decode_one(backend, z, speaker_id, plan)


def decode_one(backend: Any, z: np.ndarray, speaker_id: int | None, plan: ChunkPlan) -> np.ndarray:
    """Decode the window of one plan and return its kept samples."""
    hop = backend.hop_samples
    audio = backend.decode(z[:, plan.window_start : plan.window_end], speaker_id)
    offset = (plan.start - plan.window_start) * hop
    return audio[offset : offset + (plan.end - plan.start) * hop]
