"""Playback events, output statistics, and the wake-up primitive the audio callback may touch."""

from __future__ import annotations

import os
import select
from dataclasses import dataclass
from typing import Union

__all__ = ["FirstAudio", "OutputStats", "PlaybackEvent", "UtterancePlayed", "WakePipe"]


@dataclass(frozen=True)
class FirstAudio:
    """The first audible frame of an utterance left the ring (was handed to PortAudio).

    Attributes:
        utterance_id: The id given to `AudioOutput.begin_utterance`.
        monotonic_s: `time.monotonic()` in the audio callback that copied the frame out.
        dac_time_s: When that frame reaches the DAC, on PortAudio's stream clock
            (`outputBufferDacTime` plus the frame's offset in the block); NaN when the device is
            away and audio is being discarded.
        output_latency_s: `dac_time_s` minus the callback's `currentTime`: how long after
            `monotonic_s` the frame is heard.
        dac_monotonic_s: `monotonic_s + output_latency_s`: when the frame is heard, on the
            monotonic clock.
    """

    utterance_id: int
    monotonic_s: float
    dac_time_s: float
    output_latency_s: float
    dac_monotonic_s: float = float("nan")


@dataclass(frozen=True)
class UtterancePlayed:
    """An utterance is finished with: its last frame left the ring, or it was dropped.

    Attributes:
        utterance_id: The id given to `AudioOutput.begin_utterance`.
        monotonic_s: `time.monotonic()` when the last frame was handed to PortAudio (played), or
            when it was dropped.
        aborted: True when `abort()` (or a lost device) dropped some of it.
    """

    utterance_id: int
    monotonic_s: float
    aborted: bool = False


PlaybackEvent = Union[FirstAudio, UtterancePlayed]  # noqa: UP007 (3.10 runtime alias)


@dataclass(frozen=True)
class OutputStats:
    """A snapshot of an `AudioOutput`'s counters. Frame counts are at the device rate.

    Attributes:
        frames_written: Frames stored in the ring (after resampling).
        frames_read: Frames the callback took from the ring.
        frames_discarded: Frames dropped by `abort()` or while the device was away.
        underruns: Callbacks in which the ring ran dry while an utterance was playing (goal: 0).
        underrun_callbacks: All callbacks that could not fill their block from the ring (idle
            callbacks included).
        silence_frames: Zero frames the callback inserted.
        high_water_frames: Highest ring fill level seen.
        ring_capacity_frames: Ring size.
        portaudio_underflows: Callbacks PortAudio flagged with `output_underflow`.
        callbacks: Callbacks run.
        device_name: Name of the open device ("" before `start()`).
        device_rate_hz: Rate the stream runs at (0 before `start()`).
        input_rate_hz: Rate `write()` takes.
        channels: Device channels the mono signal is duplicated to.
        blocksize_frames: Frames per callback.
        output_latency_s: PortAudio's reported output latency.
        state: "stopped" (not started or closed), "ok" (the stream runs), "idle" (the stream
            is stopped because nothing has played for `idle_stop_s`; the next utterance starts
            it) or "reconnecting".
        paused: True while paused.
        reconnects: Times the stream was reopened after a device error.
        last_error: The last device error, or "".
        idle_stops: Times the stream was stopped for being idle.
    """

    frames_written: int
    frames_read: int
    frames_discarded: int
    underruns: int
    underrun_callbacks: int
    silence_frames: int
    high_water_frames: int
    ring_capacity_frames: int
    portaudio_underflows: int
    callbacks: int
    device_name: str
    device_rate_hz: int
    input_rate_hz: int
    channels: int
    blocksize_frames: int
    output_latency_s: float
    state: str
    paused: bool
    reconnects: int
    last_error: str
    idle_stops: int = 0


class WakePipe:
    """A one-bit wake-up signal that a real-time thread can raise without locks (self-pipe).

    `set()` writes one byte to a non-blocking pipe (a full pipe means it is already set), so it
    never blocks, locks or allocates; `wait()` sleeps in `select` until set or timeout.

    Thread: `set` any (RT-safe: yes); `wait`/`clear` one waiting thread (RT-safe: no).
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._closed = False

    def set(self) -> None:
        """Raise the signal. Thread: any. RT-safe: yes."""
        if self._closed:
            return
        try:  # noqa: SIM105 (no context-manager object on the RT path)
            os.write(self._w, b"\x01")
        except (BlockingIOError, OSError):
            pass

    def clear(self) -> None:
        """Lower the signal (drain the pipe). Thread: the waiter. RT-safe: no."""
        try:
            while os.read(self._r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def wait(self, timeout_s: float | None) -> bool:
        """Sleep until the signal is raised or `timeout_s` passes (None: no timeout); lowers it.

        Returns:
            True if the signal was raised.
        """
        if self._closed:
            return False
        timeout = None if timeout_s is None else max(0.0, timeout_s)
        try:
            ready, _, _ = select.select([self._r], [], [], timeout)
        except (OSError, ValueError):
            return False
        if ready:
            self.clear()
            return True
        return False

    def close(self) -> None:
        """Close the pipe. Thread: owner, once nobody uses it. RT-safe: no."""
        if not self._closed:
            self._closed = True
            os.close(self._r)
            os.close(self._w)
