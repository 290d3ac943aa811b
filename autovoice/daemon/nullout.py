"""`--device null`: an audio output without a sound card, for headless servers and benchmarks.

It behaves like `autovoice.audio_io.AudioOutput` towards the player (bounded buffer, blocking
`write`, `abort`, `pause`, events) but a plain thread consumes the audio in real time, in fixed
blocks, and throws it away. Its output latency is zero. With no utterance outstanding (or while
paused) the thread sleeps without a timeout, so an idle daemon does not wake up.

Thread: writer (the player) for `begin_utterance`/`write`/`end_utterance`; control calls from
any thread; the consumer thread "autovoice-null-output" delivers events. RT-safe: no.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from autovoice.audio_io import FirstAudio, UtterancePlayed
from autovoice.audio_io.render import SILENCE_THRESHOLD

__all__ = ["NullOutput"]

BLOCK_S = 0.010
"""Audio consumed per tick, in seconds."""


@dataclass
class _Segment:
    uid: int
    chunks: deque[np.ndarray] = field(default_factory=deque)
    ended: bool = False
    first_sent: bool = False


class NullOutput:
    """Real-time paced, device-less audio output.

    Args:
        input_rate_hz: Rate of the samples given to `write`.
        buffer_s: Audio buffered ahead of "playback" at most.
        on_event: `on_event(event)` with `FirstAudio`/`UtterancePlayed`, on the consumer thread.
    """

    def __init__(
        self,
        input_rate_hz: int,
        buffer_s: float = 2.0,
        on_event: Callable[[Any], None] | None = None,
    ) -> None:
        self.input_rate_hz = int(input_rate_hz)
        self._capacity = max(1, int(buffer_s * input_rate_hz))
        self._on_event = on_event
        self.last_silenced_s = 0.0  # monotonic time of the last abort (silence is immediate)
        self._cond = threading.Condition()
        self._segments: deque[_Segment] = deque()
        self._buffered = 0
        self._paused = False
        self._idle = True
        self._closing = False
        self._gen = 0
        self._frames_written = 0
        self._frames_read = 0
        self._thread = threading.Thread(
            target=self._consume, name="autovoice-null-output", daemon=True
        )

    def start(self) -> None:
        """Start consuming."""
        self._thread.start()

    def close(self) -> None:
        """Stop the consumer; outstanding utterances are reported finished (aborted)."""
        self.abort()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def begin_utterance(self, utterance_id: int) -> None:
        """Start a new utterance; later writes belong to it."""
        with self._cond:
            self._segments.append(_Segment(int(utterance_id)))
            self._cond.notify_all()

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> int:
        """Buffer samples, blocking while the buffer is full; returns early on cancel/abort."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        done = 0
        with self._cond:
            gen = self._gen
            while done < len(x):
                if gen != self._gen or self._closing or not self._segments:
                    return done
                if cancel is not None and cancel.is_set():
                    return done
                room = self._capacity - self._buffered
                if room <= 0:
                    self._cond.wait(BLOCK_S)
                    continue
                part = x[done : done + room].copy()
                self._segments[-1].chunks.append(part)
                self._buffered += len(part)
                self._frames_written += len(part)
                done += len(part)
        return done

    def end_utterance(self, utterance_id: int) -> None:
        """Mark the end of the utterance being written."""
        with self._cond:
            for seg in reversed(self._segments):
                if seg.uid == int(utterance_id):
                    seg.ended = True
                    break
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop everything buffered; outstanding utterances are reported played (aborted)."""
        now = time.monotonic()
        self.last_silenced_s = now
        with self._cond:
            dropped = list(self._segments)
            self._segments.clear()
            self._buffered = 0
            self._gen += 1
            self._cond.notify_all()
        for seg in dropped:
            self._deliver(UtterancePlayed(seg.uid, now, True))

    def pause(self) -> None:
        """Hold consumption."""
        self._paused = True

    def resume(self) -> None:
        """Continue consumption."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def wake(self) -> None:
        """Nothing to prepare: the consumer starts with the next `begin_utterance`."""

    @property
    def write_pos(self) -> int:
        """Frames written so far (a position comparable with `read_pos`)."""
        return self._frames_written

    @property
    def read_pos(self) -> int:
        """Position of the next frame to be consumed (jumps to `write_pos` on abort)."""
        with self._cond:
            return self._frames_written - self._buffered

    def stats(self) -> Any:
        """A few of `OutputStats`' fields."""
        return SimpleNamespace(
            device_name="null",
            device_rate_hz=self.input_rate_hz,
            output_latency_s=0.0,
            underruns=0,
            state="idle" if self._idle else "ok",
            paused=self._paused,
            frames_written=self._frames_written,
            frames_read=self._frames_read,
        )

    def _deliver(self, event: Any) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _consume(self) -> None:
        block = max(1, int(BLOCK_S * self.input_rate_hz))
        next_tick = time.monotonic()
        while True:
            with self._cond:
                while not self._closing and (self._paused or not self._segments):
                    self._idle = True
                    self._cond.wait()  # no timeout: begin_utterance, resume or close wake it
                if self._idle:
                    self._idle = False
                    next_tick = time.monotonic()
            next_tick += BLOCK_S
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
            events: list[Any] = []
            with self._cond:
                if self._closing:
                    return
                if not self._paused:
                    self._take(block, events)
                self._cond.notify_all()
            for event in events:
                self._deliver(event)

    def _take(self, frames: int, events: list[Any]) -> None:
        now = time.monotonic()
        while frames > 0 and self._segments:
            seg = self._segments[0]
            while frames > 0 and seg.chunks:
                chunk = seg.chunks[0]
                part, rest = chunk[:frames], chunk[frames:]
                if not seg.first_sent and np.any(np.abs(part) > SILENCE_THRESHOLD):
                    seg.first_sent = True
                    events.append(FirstAudio(seg.uid, now, float("nan"), 0.0, now))
                if len(rest):
                    seg.chunks[0] = rest
                else:
                    seg.chunks.popleft()
                frames -= len(part)
                self._buffered -= len(part)
                self._frames_read += len(part)
            if seg.chunks or not seg.ended:
                return
            self._segments.popleft()
            events.append(UtterancePlayed(seg.uid, now, False))
