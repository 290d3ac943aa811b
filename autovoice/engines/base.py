"""The contract every inference backend fulfils, and the chunk it yields.

A backend turns the phoneme ids of one clause into the latent frames `z` (`encode`) and a
window of latent frames into PCM (`decode`). Chunked streaming on top of that is shared by all
backends (see `autovoice.engines.streaming`).

Thread: a backend is used by one thread at a time (the inference thread). RT-safe: no.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["AudioChunk", "Backend", "Scales", "check_encode_args"]


@dataclass(frozen=True)
class Scales:
    """Resolved synthesis scales for one clause (no `None`s left).

    Attributes:
        noise_scale: Noise added to the prior (0 = deterministic).
        length_scale: Phoneme duration multiplier (>1 slower, <1 faster).
        noise_w: Noise of the stochastic duration predictor (0 = deterministic).
        speaker_id: Speaker of a multi-speaker voice, else None.
    """

    noise_scale: float
    length_scale: float
    noise_w: float
    speaker_id: int | None = None


@dataclass(frozen=True)
class AudioChunk:
    """One piece of synthesised audio, yielded as soon as it is made.

    Attributes:
        samples: Mono float32 PCM in [-1, 1] at `sample_rate`.
        sample_rate: Samples per second (the voice's rate).
        start_sample: Offset of the first sample within the whole utterance.
        clause_index: Which clause (synthesis unit) of the utterance this came from.
        last_in_clause: True for the final chunk of its clause.
        compute_s: Seconds of inference spent making this chunk.
        made_at_s: `time.monotonic()` when the chunk was ready.
        word_starts: On the first chunk of a unit, the utterance sample (same count as
            `start_sample`) where each word of the unit starts, from the engine's phoneme
            durations; empty when the engine does not report them, and on other chunks.
    """

    samples: np.ndarray
    sample_rate: int
    start_sample: int
    clause_index: int
    last_in_clause: bool
    compute_s: float
    made_at_s: float
    word_starts: tuple[int, ...] = ()

    @property
    def duration_s(self) -> float:
        """Length of the chunk in seconds."""
        return len(self.samples) / self.sample_rate


@runtime_checkable
class Backend(Protocol):
    """An inference backend for one loaded voice.

    Attributes:
        name: Engine name as used in config and on the command line ("onnx", "torch", ...).
        hop_samples: Audio samples per latent frame (256 for Piper voices).
        z_channels: Channels of the latent `z` (192 for Piper voices).
    """

    name: str
    hop_samples: int
    z_channels: int

    def encode(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray:
        """Phoneme ids of one clause -> latent frames `z`, float32 [z_channels, frames]."""
        ...

    def decode(self, z: np.ndarray, speaker_id: int | None = None) -> np.ndarray:
        """Latent frames float32 [z_channels, frames] -> float32 PCM [frames * hop_samples]."""
        ...

    def close(self) -> None:
        """Release sessions and device memory."""
        ...


def check_encode_args(phoneme_ids: list[int], scales: Scales, n_vocab: int) -> None:
    """Reject what no backend can encode: no ids, ids outside the voice's symbols, length <= 0.

    Raises:
        ValueError: naming the bad argument and what is accepted.
    """
    if len(phoneme_ids) == 0:
        raise ValueError("phoneme_ids must not be empty")
    if min(phoneme_ids) < 0 or max(phoneme_ids) >= n_vocab:
        raise ValueError(f"phoneme ids must be in 0..{n_vocab - 1}")
    if not scales.length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {scales.length_scale}")
