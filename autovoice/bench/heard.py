"""What a listener hears: a capture of the audio that actually reaches the (virtual) device.

A `HeardDevice` is a private PulseAudio null sink (paced, like a sound card) behind an ALSA
`file` tee: ALSA's default PCM writes every frame the stream plays into a FIFO on its way to
PulseAudio. The ALSA `file` plugin writes a frame there once the ALSA buffer after it has been
committed, i.e. about when it leaves the stream's buffer for the sound server, so the moment a
frame comes out of the FIFO is the moment it is heard (callback + output buffer included).
`HeardCapture` reads the FIFO on its own thread (a blocking read: each write is seen at once,
finer than a 1 ms poll) and keeps, per read, its arrival time (`time.monotonic()`) and where
audible samples (|x| > `AUDIBLE`, -60 dBFS) and dropouts (runs of exact zeros) lie. Nothing
of our daemon is imported: any program that plays through ALSA's default PCM can be measured.

Use::

    with start_heard_device() as dev:          # PulseAudio + tee + capture thread
        env = {**os.environ, **dev.env}           # start the player with this environment
        ...                                        # t0 = time.monotonic(); send a request
        onset = dev.capture.first_audible_after(t0, timeout_s=5)   # -> heard at (monotonic)
        ...                                        # t1 = time.monotonic(); send `stop`
        dev.capture.wait_quiet(0.1, timeout_s=5)
        tail = dev.capture.last_audible_between(t1, time.monotonic())

Request -> heard is `onset - t0`; stop -> silence is `tail - t1` (0 when nothing audible
arrived after `t1`). The capture reads float32 samples (what PortAudio streams with
`dtype="float32"` write); channels only matter for `dropouts`.

Thread: the capture has one reader thread ("autovoice-heard-capture"); queries from any thread.
RT-safe: no.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autovoice.bench.virtual_audio import launch_pulseaudio, stop_process

__all__ = ["AUDIBLE", "HeardCapture", "HeardDevice", "Onset", "Read", "start_heard_device"]

AUDIBLE = 1e-3
"""A sample with |x| above this (-60 dBFS) is audible."""
_PIPE_BYTES = 1 << 20
"""FIFO capacity asked for: seconds of audio, so a slow reader never holds the stream up."""


@dataclass(frozen=True)
class Read:
    """One read from the tee: when it arrived, and where its audible samples lie.

    Attributes:
        at_s: `time.monotonic()` when the read returned.
        start: Index (interleaved samples since the capture started) of its first sample.
        count: Samples in it.
        first_audible: Index of its first audible sample, or -1.
        last_audible: Index of its last audible sample, or -1.
        first_sound: Index of its first non-zero sample, or -1.
    """

    at_s: float
    start: int
    count: int
    first_audible: int
    last_audible: int
    first_sound: int


@dataclass(frozen=True)
class Onset:
    """Where sound began after a moment: the first audible sample and the first non-zero one.

    Attributes:
        at_s: `time.monotonic()` when the first audible sample reached the device.
        audible_index: Its index (interleaved samples since the capture started).
        sound_index: Index of the first non-zero sample that arrived after the moment (the
            start of the quiet lead-in before the audible onset; == audible_index when none).
    """

    at_s: float
    audible_index: int
    sound_index: int

    def lead_in_s(self, rate_hz: int, channels: int) -> float:
        """Seconds of quiet, non-zero sound played before the audible onset."""
        return (self.audible_index - self.sound_index) / (rate_hz * channels)


@dataclass
class HeardCapture:
    """Reads float32 frames from a tee FIFO and answers when audible sound reached the device.

    Args:
        path: The FIFO the ALSA `file` plugin writes to.
        gap_samples: Runs of exact zeros longer than this (interleaved samples) between two
            non-zero samples are recorded as dropouts (see `dropouts`).

    Thread: `start` spawns the reader; every query is safe from any thread. RT-safe: no.
    """

    path: Path
    gap_samples: int = 220
    _reads: list[Read] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)
    _audible_times: list[float] = field(default_factory=list)
    _gaps: list[tuple[float, int]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _fd: int = -1
    _thread: threading.Thread | None = None
    _stopping: bool = False

    def start(self) -> None:
        """Open the FIFO (read-write, so it never reports end-of-file) and start reading."""
        self._fd = os.open(self.path, os.O_RDWR)
        try:
            import fcntl

            fcntl.fcntl(self._fd, 1031, _PIPE_BYTES)  # F_SETPIPE_SZ
        except OSError:
            pass  # the default 64 KiB still holds a few hundred ms
        self._thread = threading.Thread(
            target=self._run, name="autovoice-heard-capture", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the FIFO."""
        self._stopping = True
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._fd, b"\0\0\0\0")  # wake the blocked read
        if self._thread is not None:
            self._thread.join(2.0)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _run(self) -> None:
        index = 0
        carry = b""
        last_nonzero = -1
        while not self._stopping:
            try:
                data = os.read(self._fd, 1 << 16)
            except OSError:
                return
            now = time.monotonic()
            data = carry + data
            usable = len(data) // 4 * 4
            carry = data[usable:]
            x = np.frombuffer(data[:usable], dtype=np.float32)
            if not len(x):
                continue
            loud = np.flatnonzero(np.abs(x) > AUDIBLE)
            first = index + int(loud[0]) if len(loud) else -1
            last = index + int(loud[-1]) if len(loud) else -1
            nonzero = np.flatnonzero(x) + index
            sound = int(nonzero[0]) if len(nonzero) else -1
            gaps: list[tuple[float, int]] = []
            if len(nonzero):
                edges = np.concatenate(([last_nonzero], nonzero)) if last_nonzero >= 0 else nonzero
                runs = np.diff(edges) - 1
                gaps = [(now, int(r)) for r in runs[runs > self.gap_samples]]
                last_nonzero = int(nonzero[-1])
            with self._cond:
                self._reads.append(Read(now, index, len(x), first, last, sound))
                self._times.append(now)
                if first >= 0:
                    self._audible_times.append(now)
                self._gaps.extend(gaps)
                self._cond.notify_all()
            index += len(x)

    # ------------------------------------------------------------------ queries
    def first_audible_after(self, t0_s: float, timeout_s: float = 5.0) -> float | None:
        """When the first audible sample that arrived after `t0_s` reached the device.

        Waits up to `timeout_s` for it. Returns its `time.monotonic()`, or None.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                i = bisect_right(self._audible_times, t0_s)
                if i < len(self._audible_times):
                    return self._audible_times[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def onset_after(self, t0_s: float, timeout_s: float = 5.0) -> Onset | None:
        """The `Onset` of the first audible sample that arrived after `t0_s` (waiting up to
        `timeout_s`), or None."""
        at = self.first_audible_after(t0_s, timeout_s)
        if at is None:
            return None
        with self._cond:
            i = bisect_right(self._times, t0_s)
            sound = -1
            for read in self._reads[i:]:
                if sound < 0 and read.first_sound >= 0:
                    sound = read.first_sound
                if read.first_audible >= 0:
                    return Onset(
                        at, read.first_audible, sound if sound >= 0 else read.first_audible
                    )
        return None

    def last_audible_between(self, t0_s: float, t1_s: float) -> float | None:
        """When the last audible sample that arrived within (t0_s, t1_s] reached the device."""
        with self._cond:
            i = bisect_right(self._audible_times, t1_s)
            if i and self._audible_times[i - 1] > t0_s:
                return self._audible_times[i - 1]
        return None

    def wait_quiet(self, quiet_s: float, timeout_s: float = 10.0) -> bool:
        """Wait until nothing audible has arrived for `quiet_s` (while samples keep arriving).

        Returns False when the device stayed audible (or silent without any reads) until the
        timeout.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            with self._cond:
                last = self._audible_times[-1] if self._audible_times else float("-inf")
                fresh = bool(self._times) and self._times[-1] > now - max(quiet_s, 0.1)
            if now - last >= quiet_s and fresh:
                return True
            time.sleep(min(0.01, quiet_s / 4))
        return False

    def dropouts(self, t0_s: float, t1_s: float) -> list[int]:
        """Runs of exact zeros (in interleaved samples) that ended within (t0_s, t1_s].

        Speech from a float32 voice never holds exact zeros, so inside an utterance (from its
        onset to its last audible sample) each such run is the callback running dry.
        """
        with self._cond:
            return [n for at, n in self._gaps if t0_s < at <= t1_s]

    def reads(self) -> list[Read]:
        """A copy of every read so far (for offline analysis)."""
        with self._cond:
            return list(self._reads)


@dataclass
class HeardDevice:
    """A running paced null sink with its tee and capture; `env` points ALSA's default at it.

    Attributes:
        dir: Private directory (PulseAudio's socket, the FIFO, asound.conf).
        proc: The PulseAudio process.
        env: Environment for the player (PULSE_SERVER, ALSA_CONFIG_PATH).
        capture: The running capture of the tee.
    """

    dir: Path
    proc: object
    env: dict[str, str]
    capture: HeardCapture

    def stop(self) -> None:
        """Stop the capture and PulseAudio; remove the directory."""
        self.capture.stop()
        stop_process(self.proc)  # type: ignore[arg-type]
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> HeardDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tee_asound_conf(fifo: Path) -> str:
    """ALSA configuration: the default PCM writes to `fifo` on its way to PulseAudio."""
    return (
        "pcm.autovoice_tee {\n"
        "  type file\n"
        "  slave.pcm { type pulse }\n"
        f'  file "{fifo}"\n'
        '  format "raw"\n'
        "}\n"
        'pcm.!default "autovoice_tee"\n'
        "ctl.!default { type pulse }\n"
    )


def start_heard_device(rate_hz: int = 48000) -> HeardDevice:
    """Start PulseAudio with a paced null sink at `rate_hz`, the tee in front of it, and the
    capture thread. ALSA's default PCM (for a process started with `env`) goes through the tee.

    Raises:
        AudioDeviceError: pulseaudio is not installed or did not start.
    """
    directory = Path(tempfile.mkdtemp(prefix="autovoice-heard-"))
    fifo = directory / "tee.f32"
    os.mkfifo(fifo)
    (directory / "asound.conf").write_text(tee_asound_conf(fifo))
    capture = HeardCapture(fifo)
    capture.start()
    try:
        proc, socket_path = launch_pulseaudio(directory, rate_hz, "autovoice_heard")
    except Exception:
        capture.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    env = {
        "PULSE_SERVER": f"unix:{socket_path}",
        "PULSE_COOKIE": str(directory / "cookie"),
        "ALSA_CONFIG_PATH": str(directory / "asound.conf"),
    }
    return HeardDevice(directory, proc, env, capture)
