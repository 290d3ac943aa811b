"""What the player is handed: an utterance's `SpeakPayload` (from the front-ends) and the
`Output` it writes audio to (with the `OutputFactory` that makes one).

Thread: any (a protocol and an immutable dataclass). RT-safe: no.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from autovoice.config import AppConfig
from autovoice.daemon.text_feed import TextFeed
from autovoice.engines import SpeakOptions

__all__ = ["Output", "OutputFactory", "SpeakPayload"]


class Output(Protocol):
    """What the player needs of an audio output (`autovoice.audio_io.AudioOutput`)."""

    input_rate_hz: int

    def start(self) -> None: ...
    def close(self) -> None: ...
    def begin_utterance(self, utterance_id: int) -> None: ...
    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> int: ...
    def end_utterance(self, utterance_id: int) -> None: ...
    def abort(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stats(self) -> Any: ...
    def wake(self) -> None: ...


@dataclass(frozen=True)
class SpeakPayload:
    """What the player needs to speak an utterance (the scheduler's opaque `payload`).

    Attributes:
        voice: Voice name or path; None = the configured voice.
        options: Per-request synthesis options (None fields = config defaults).
        pitch: Pitch factor (2.0 = an octave up). Piper voices have no pitch input, so the
            audio is made `pitch` times longer and played `pitch` times faster (resampling):
            the pitch moves, the duration stays.
        marks: Character offsets in the text of index marks: the player reports where they
            are heard (`playback.Anchor`, `playback.MarkSamples`) when the engine knows its
            word durations.
        feed: An open stream's text (the utterance's `text` is then unused): spoken as it
            comes, see `autovoice.daemon.text_feed`.
    """

    voice: str | None = None
    options: SpeakOptions = field(default_factory=SpeakOptions)
    pitch: float = 1.0
    marks: tuple[int, ...] = ()
    feed: TextFeed | None = field(default=None, compare=False)


OutputFactory = Callable[[AppConfig, int, Callable[[Any], None]], Output]
