"""Places audio can go, behind one small interface: device, WAV file, raw stdout, nowhere."""

from __future__ import annotations

import contextlib
import sys
import threading
import wave
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

import numpy as np

from autovoice.audio_io.output import AudioOutput

__all__ = ["DeviceSink", "NullSink", "RawStdoutSink", "Sink", "WavFileSink", "to_pcm16"]


@runtime_checkable
class Sink(Protocol):
    """Where synthesised mono float32 audio goes.

    `write` takes frames at `sample_rate` (blocking until accepted); `drain` returns once
    everything written has been played or stored; `abort` drops what is still queued (a file sink
    has nothing queued); `close` releases the resource (after `drain` if you want everything).

    Thread: one writer thread per sink. RT-safe: no.
    """

    @property
    def sample_rate(self) -> int: ...

    def write(self, samples: np.ndarray) -> None: ...

    def drain(self) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


def to_pcm16(samples: np.ndarray) -> bytes:
    """Convert float frames in [-1, 1] to 16-bit little-endian PCM bytes (clipping outside).

    >>> to_pcm16(np.array([0.0, 1.0, -1.0, 2.0]))
    b'\\x00\\x00\\xff\\x7f\\x01\\x80\\xff\\x7f'
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    pcm = np.clip(np.rint(x * 32767.0), -32767, 32767).astype("<i2")
    return pcm.tobytes()


def _check_rate(sample_rate_hz: int) -> int:
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, int):
        raise TypeError(f"sample_rate_hz must be an int, got {sample_rate_hz!r}")
    if sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
    return sample_rate_hz


class WavFileSink:
    """Write a mono 16-bit PCM WAV file.

    Args:
        path: File to create (overwritten).
        sample_rate_hz: Rate of the samples written.

    Raises:
        OSError: If the file cannot be created.

    Thread: one writer. RT-safe: no.
    """

    def __init__(self, path: str | Path, sample_rate_hz: int) -> None:
        self._rate = _check_rate(sample_rate_hz)
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._wav = wave.open(self._file, "wb")  # noqa: SIM115 (closed by close())
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self._rate)
        self.frames_written = 0

    @property
    def sample_rate(self) -> int:
        """Rate of the samples written, in Hz."""
        return self._rate

    def write(self, samples: np.ndarray) -> None:
        """Append frames to the file."""
        data = to_pcm16(samples)
        self._wav.writeframesraw(data)
        self.frames_written += len(data) // 2

    def drain(self) -> None:
        """Flush what was written to disk (the header is fixed on `close`)."""
        self._file.flush()

    def abort(self) -> None:
        """Nothing is queued in a file sink; does nothing."""

    def close(self) -> None:
        """Finish the header and close the file. Calling it twice is harmless."""
        if self._wav is not None:
            self._wav.close()
            self._wav = None
            self._file.close()

    def __enter__(self) -> WavFileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawStdoutSink:
    """Write 16-bit little-endian mono PCM to stdout's binary buffer (or another binary stream).

    Args:
        sample_rate_hz: Rate of the samples written (for the consumer to know).
        stream: Binary stream to write to; default `sys.stdout.buffer`.

    Thread: one writer. RT-safe: no.
    """

    def __init__(self, sample_rate_hz: int, stream: BinaryIO | None = None) -> None:
        self._rate = _check_rate(sample_rate_hz)
        self._stream = stream if stream is not None else sys.stdout.buffer
        self.frames_written = 0

    @property
    def sample_rate(self) -> int:
        """Rate of the samples written, in Hz."""
        return self._rate

    def write(self, samples: np.ndarray) -> None:
        """Write frames as PCM bytes."""
        data = to_pcm16(samples)
        self._stream.write(data)
        self.frames_written += len(data) // 2

    def drain(self) -> None:
        """Flush the stream."""
        self._stream.flush()

    def abort(self) -> None:
        """Nothing is queued here; does nothing."""

    def close(self) -> None:
        """Flush; stdout itself is left open."""
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


class NullSink:
    """Discard audio (headless servers, benchmarks); counts the frames.

    Thread: one writer. RT-safe: no.
    """

    def __init__(self, sample_rate_hz: int) -> None:
        self._rate = _check_rate(sample_rate_hz)
        self.frames_written = 0

    @property
    def sample_rate(self) -> int:
        """Rate of the samples written, in Hz."""
        return self._rate

    def write(self, samples: np.ndarray) -> None:
        """Count and drop the frames."""
        self.frames_written += int(np.asarray(samples).size)

    def drain(self) -> None:
        """Nothing to wait for."""

    def abort(self) -> None:
        """Nothing to drop."""

    def close(self) -> None:
        """Nothing to release."""


class DeviceSink:
    """Play through a started `AudioOutput`; each run of writes up to `drain` is one utterance.

    Args:
        output: A started `AudioOutput` (the sink does not close it unless `close_output`).
        close_output: Close `output` in `close()`.
        drain_timeout_s: Longest `drain` waits for playback.

    Thread: one writer. RT-safe: no.
    """

    def __init__(
        self, output: AudioOutput, close_output: bool = False, drain_timeout_s: float = 600.0
    ) -> None:
        self.output = output
        self._close_output = close_output
        self._drain_timeout_s = drain_timeout_s
        self._next_id = -1  # negative ids: never clash with the daemon's
        self._open_id: int | None = None
        self._cancel = threading.Event()

    @property
    def sample_rate(self) -> int:
        """Rate `write` takes (the output's input rate), in Hz."""
        return self.output.input_rate_hz

    def write(self, samples: np.ndarray) -> None:
        """Queue frames, blocking while the ring is full (returns early after `abort`)."""
        if self._open_id is None:
            self._cancel.clear()
            self._open_id = self._next_id
            self._next_id -= 1
            self.output.begin_utterance(self._open_id)
        self.output.write(samples, self._cancel)

    def drain(self) -> None:
        """Wait until everything written has left the ring, plus the output latency."""
        uid, self._open_id = self._open_id, None
        if uid is None:
            return
        self.output.end_utterance(uid)
        self.output.wait_played(uid, self._drain_timeout_s)
        threading.Event().wait(self.output.output_latency_s)

    def abort(self) -> None:
        """Drop everything queued (fade-out, then silence)."""
        self._cancel.set()
        self._open_id = None
        self.output.abort()

    def close(self) -> None:
        """Forget the open utterance; close the output if this sink owns it."""
        self._open_id = None
        if self._close_output:
            self.output.close()
