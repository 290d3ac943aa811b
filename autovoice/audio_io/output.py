"""The real-time output stream: ring buffer -> PortAudio callback -> device.

Three threads meet here:
- the *writer* (the inference thread): `begin_utterance`, `write`, `end_utterance`;
- the *PortAudio callback* (real time, `render.Renderer`): copies from the ring into the device
  block, zero-fills a shortfall, applies fades, and records first-audio / played moments into
  preallocated slots;
- the *event thread* "autovoice-audio-events" (non-RT, `supervisor.StreamSupervisor`): turns
  recorded slots into `FirstAudio`/`UtterancePlayed` events for `on_event` (through
  `tracking.UtteranceBook`), watches the stream's health, and reopens the device with back-off
  when it fails.
Control calls (`abort`, `pause`, `resume`, `stats`, `wait_played`) may come from any thread.

Utterances are tracked by absolute ring positions: `begin_utterance` records where the utterance
starts in the ring, `write` records where its first audible frame lands, `end_utterance` where
it ends. The callback compares those positions with its read position; it never allocates, locks,
logs or raises. The only system call it makes is a non-blocking one-byte pipe write (`WakePipe`)
to wake the writer or the event thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from autovoice.audio_io.devices import check_device, check_latency
from autovoice.audio_io.events import OutputStats, PlaybackEvent, WakePipe
from autovoice.audio_io.render import MAX_UTTERANCES, Renderer
from autovoice.audio_io.resample import StreamResampler
from autovoice.audio_io.ring import RingBuffer
from autovoice.audio_io.supervisor import DEFAULT_IDLE_STOP_S, StreamSupervisor
from autovoice.audio_io.tracking import Utterance, UtteranceBook

__all__ = ["AudioOutput"]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_S = 0.010
"""Callback block length in seconds (output is committed in fixed blocks)."""
DEFAULT_FADE_S = 0.004
"""Longest fade-out on abort/pause, fade-in on resume, in seconds (at most one block)."""


class AudioOutput:
    """Plays mono float32 audio on a PortAudio device through a lock-free ring buffer.

    The stream is opened by `start()`. After `idle_stop_s` with nothing to play it is closed (no
    callbacks, the device is free, the sink may suspend), and `wake()` or the next
    `begin_utterance` reopens it on the event thread, so an utterance does not wait for the
    device when `wake()` was called as it was accepted. Input at `input_rate_hz` is resampled
    (python-soxr, streaming) to the device rate when they differ, and duplicated to the
    device's channels.

    Args:
        input_rate_hz: Rate of the samples given to `write` (e.g. the voice's 22050).
        device: None for the default output, an index, or a case-insensitive name substring.
        latency: "low", "high" or seconds (> 0), passed to PortAudio.
        buffer_s: Ring capacity in seconds of audio.
        on_event: Called with each `FirstAudio`/`UtterancePlayed`, on the thread
            "autovoice-audio-events" (never the callback). Signature `on_event(event) -> None`;
            exceptions are logged and ignored.
        device_rate_hz: Force the stream rate; None opens at `input_rate_hz` when the device
            takes it, else at the device's default rate.
        channels: Device channels; None uses min(2, the device's maximum).
        block_s: Callback block length in seconds.
        fade_s: Length of the fade on abort/pause/resume in seconds (at most `block_s`);
            None: `DEFAULT_FADE_S` or the block, whichever is shorter.
        idle_stop_s: Stop the stream after this many seconds with nothing to play (0: never).

    Raises:
        ValueError, TypeError: For bad arguments (checked here, before any device is touched).

    Thread: see the module docstring. RT-safe: only the internal callback.
    """

    def __init__(
        self,
        input_rate_hz: int,
        device: str | int | None = None,
        latency: str | float = "low",
        buffer_s: float = 2.0,
        on_event: Callable[[PlaybackEvent], None] | None = None,
        *,
        device_rate_hz: int | None = None,
        channels: int | None = None,
        block_s: float = DEFAULT_BLOCK_S,
        fade_s: float | None = None,
        idle_stop_s: float = DEFAULT_IDLE_STOP_S,
    ) -> None:
        if isinstance(input_rate_hz, bool) or not isinstance(input_rate_hz, int):
            raise TypeError(f"input_rate_hz must be an int, got {input_rate_hz!r}")
        if input_rate_hz <= 0:
            raise ValueError(f"input_rate_hz must be > 0, got {input_rate_hz}")
        if device_rate_hz is not None and (
            not isinstance(device_rate_hz, int) or device_rate_hz <= 0
        ):
            raise ValueError(f"device_rate_hz must be None or an int > 0, got {device_rate_hz!r}")
        if channels is not None and (not isinstance(channels, int) or channels <= 0):
            raise ValueError(f"channels must be None or an int > 0, got {channels!r}")
        if not buffer_s > 0.05:
            raise ValueError(f"buffer_s must be > 0.05 seconds, got {buffer_s!r}")
        if not 0.001 <= block_s <= 0.1:
            raise ValueError(f"block_s must be within 0.001..0.1 seconds, got {block_s!r}")
        if fade_s is None:
            fade_s = min(DEFAULT_FADE_S, block_s)
        if not 0.0 <= fade_s <= block_s:
            raise ValueError(f"fade_s must be within 0..block_s, got {fade_s!r}")
        if not 0.0 <= idle_stop_s < float("inf"):
            raise ValueError(f"idle_stop_s must be >= 0 seconds (0: never), got {idle_stop_s!r}")
        self.input_rate_hz = input_rate_hz
        self.device = check_device(device)
        self.latency = check_latency(latency)
        self.buffer_s = float(buffer_s)
        self._block_s = block_s
        self._fade_s = fade_s
        self._resampler: StreamResampler | None = None

        # Locks (non-RT only): writer/abort exclusion; the book has its own.
        self._write_lock = threading.Lock()
        self._space_wake = WakePipe()
        self._event_wake = WakePipe()
        self._abort_gen = 0
        self._cur: Utterance | None = None
        self._closing = False

        self._renderer = Renderer(self._event_wake, self._space_wake)
        self._book = UtteranceBook()
        self._sup = StreamSupervisor(
            self.device,
            self.latency,
            block_s,
            input_rate_hz,
            device_rate_hz,
            channels,
            self._renderer,
            self._book,
            self._event_wake,
            self._setup_buffers,
            on_event,
            idle_stop_s,
        )

    @property
    def on_event(self) -> Callable[[PlaybackEvent], None] | None:
        """The event handler (see the class Args); may be replaced at any time."""
        return self._sup.on_event

    @on_event.setter
    def on_event(self, handler: Callable[[PlaybackEvent], None] | None) -> None:
        self._sup.on_event = handler

    @property
    def ring(self) -> RingBuffer | None:
        """The ring buffer at the device rate (None until `start()` opened the device)."""
        return self._renderer.ring

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Open the device and start playing (silence until audio is written).

        Raises:
            AudioDeviceError: If PortAudio is missing or the device cannot be opened.
            RuntimeError: If already started.

        Thread: control (non-RT). RT-safe: no.
        """
        if self._sup.state != "stopped" or self._closing:
            raise RuntimeError("AudioOutput already started (or closed)")
        self._sup.start()

    def close(self) -> None:
        """Stop the stream at once (queued audio is dropped) and release the device.

        Outstanding utterances are reported finished (aborted). Errors while closing are
        logged, not raised. Calling it twice is harmless.

        Thread: control (non-RT). RT-safe: no.
        """
        if self._closing:
            return
        self._closing = True
        self._space_wake.set()
        self._sup.stop()
        self._book.finish_all()
        self._space_wake.close()
        self._event_wake.close()

    def __enter__(self) -> AudioOutput:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wake(self) -> None:
        """Audio is coming (e.g. an utterance was accepted): start the stream if it is idle.

        Returns at once; the event thread starts the stream while the caller computes the first
        chunk. Harmless before `start()` and after `close()`.

        Thread: any. RT-safe: no.
        """
        self._sup.wake()

    def _setup_buffers(self, rate: int) -> None:
        """Make the ring, resampler and fades for the stream rate (first open, before start)."""
        ring = RingBuffer(max(int(rate * self.buffer_s), 4 * int(rate * self._block_s)))
        self._resampler = StreamResampler(self.input_rate_hz, rate)
        self._renderer.setup(ring, rate, self._fade_s)

    # ------------------------------------------------------------------ writer side
    def _require_started(self) -> RingBuffer:
        ring = self.ring
        if ring is None or self._closing:
            raise RuntimeError("AudioOutput is not started (call start() first)")
        return ring

    def begin_utterance(self, utterance_id: int) -> None:
        """Mark where a new utterance starts; later writes belong to it.

        An utterance still open (not ended) is ended first.

        Raises:
            RuntimeError: If not started, or more than MAX_UTTERANCES are outstanding for 5 s.

        Thread: writer. RT-safe: no.
        """
        ring = self._require_started()
        self._sup.wake()
        if self._cur is not None:
            self.end_utterance(self._cur.utterance_id)
        if not self._book.wait_for_room(self._renderer, timeout_s=5.0):
            raise RuntimeError(f"more than {MAX_UTTERANCES} utterances outstanding")
        renderer = self._renderer
        with self._write_lock:
            seq = renderer.slot_tail
            renderer.open_slot(seq, ring.write_pos)
            utt = Utterance(int(utterance_id), seq, self._abort_gen)
            self._book.add(utt)
            self._cur = utt
            renderer.slot_tail = seq + 1  # publish to the callback
            if self._resampler is not None:
                self._resampler.reset()

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> int:
        """Queue samples for playback, blocking until all are in the ring or `cancel` is set.

        While the ring is full it sleeps on a wake-up the callback raises after each block (no
        spinning). It returns early, too, when `abort()` drops the current utterance.

        Args:
            samples: 1-D mono float32 frames at `input_rate_hz`.
            cancel: Optional event; once set, `write` returns what it has queued so far.

        Returns:
            Input frames queued (when cut short after resampling: the proportional count).

        Raises:
            RuntimeError: If not started.

        Thread: writer. RT-safe: no.
        """
        self._require_started()
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(x):
            return 0
        self._sup.wake()
        utt = self._cur
        gen = utt.abort_gen if utt is not None else self._abort_gen
        with self._write_lock:
            if gen != self._abort_gen:
                return 0
            y = self._resampler.process(x)
            if utt is not None:
                self._renderer.mark_first(utt.seq, y)
        done = self._push(y, gen, cancel)
        if done == len(y):
            return len(x)
        return min(len(x), int(done * self.input_rate_hz / self._sup.rate_hz))

    def _push(self, y: np.ndarray, gen: int, cancel: threading.Event | None) -> int:
        ring = self.ring
        renderer = self._renderer
        done = 0
        while True:
            with self._write_lock:
                if gen != self._abort_gen or self._closing:
                    return done
                done += ring.write(y[done:])
            if done >= len(y) or (cancel is not None and cancel.is_set()):
                return done
            renderer.writer_waiting = True
            try:
                if ring.free_frames == 0:
                    # The callback raises the wake-up after each block while we wait.
                    self._space_wake.wait(max(0.05, 4 * self._block_s))
            finally:
                renderer.writer_waiting = False

    def end_utterance(self, utterance_id: int) -> None:
        """Mark the end of the current utterance (flushing the resampler's tail into the ring).

        Ending an utterance that is not the one being written (e.g. one `abort()` dropped) does
        nothing.

        Raises:
            RuntimeError: If not started.

        Thread: writer. RT-safe: no.
        """
        self._require_started()
        utt = self._cur
        if utt is None or utt.utterance_id != int(utterance_id):
            log.debug("audio output: end_utterance(%s) ignored: not being written", utterance_id)
            return
        with self._write_lock:
            tail = self._resampler.process(np.zeros(0, dtype=np.float32), last=True)
            if utt.abort_gen == self._abort_gen:
                self._renderer.mark_first(utt.seq, tail)
        if utt.abort_gen == self._abort_gen:
            self._push(tail, utt.abort_gen, None)
        with self._write_lock:
            self._renderer.mark_end(utt.seq, self.ring.write_pos)
            self._cur = None
        self._event_wake.set()

    def wait_played(self, utterance_id: int, timeout_s: float) -> bool:
        """Wait until an utterance's last frame has been handed to PortAudio (or it was dropped).

        Returns:
            True once the utterance is finished, False on timeout or for an unknown id.

        Thread: any non-RT. RT-safe: no.
        """
        return self._book.wait_played(utterance_id, timeout_s)

    # ------------------------------------------------------------------ control
    def abort(self) -> None:
        """Drop everything queued: the callback fades out over a few ms, then plays silence.

        Every outstanding utterance (including one being written) is reported finished with
        `aborted=True`; a blocked `write` returns.

        Thread: any non-RT. RT-safe: no.
        """
        with self._write_lock:
            self._abort_gen += 1
            ring = self.ring
            if ring is None:
                return
            now = time.monotonic()
            self._renderer.drop_unplayed(self._book.head_seq)
            ring.clear()
            if self._resampler is not None:
                self._resampler.reset()
            # `_cur` stays: its stale abort generation makes its further writes drop.
        self._space_wake.set()
        self._event_wake.set()
        log.debug("audio output: abort at %.3f", now)

    def pause(self) -> None:
        """Hold playback where it is (fading out over a few ms); queued audio stays queued.

        Thread: any. RT-safe: no.
        """
        self._renderer.pause_req = True

    def resume(self) -> None:
        """Continue after `pause()` from where playback stopped (fading in).

        Thread: any. RT-safe: no.
        """
        self._renderer.pause_req = False

    @property
    def paused(self) -> bool:
        """True while paused."""
        return self._renderer.pause_req

    @property
    def last_silenced_s(self) -> float:
        """`time.monotonic()` when the callback last carried out an `abort()`: the block it
        handed to PortAudio then held the few ms of fade-out and silence after it (0.0: never).

        Thread: any. RT-safe: yes (reads one float).
        """
        last_clear = self._renderer.last_clear_mono
        return last_clear + self._fade_s if last_clear else 0.0

    @property
    def output_latency_s(self) -> float:
        """PortAudio's reported output latency of the open stream (0.0 when not started)."""
        return self._sup.latency_s

    @property
    def device_rate_hz(self) -> int:
        """The stream's rate (0 when not started)."""
        return self._sup.rate_hz

    def stats(self) -> OutputStats:
        """A snapshot of the counters and state. Thread: any. RT-safe: no."""
        ring = self.ring
        renderer = self._renderer
        sup = self._sup
        return OutputStats(
            frames_written=ring.frames_written if ring else 0,
            frames_read=ring.frames_read if ring else 0,
            frames_discarded=ring.frames_discarded if ring else 0,
            underruns=renderer.underruns,
            underrun_callbacks=ring.underrun_reads if ring else 0,
            silence_frames=ring.silence_frames if ring else 0,
            high_water_frames=ring.high_water_frames if ring else 0,
            ring_capacity_frames=ring.capacity_frames if ring else 0,
            portaudio_underflows=renderer.pa_underflows,
            callbacks=renderer.callbacks,
            device_name=sup.device_name,
            device_rate_hz=sup.rate_hz,
            input_rate_hz=self.input_rate_hz,
            channels=sup.channels,
            blocksize_frames=sup.blocksize_frames,
            output_latency_s=sup.latency_s,
            state=sup.state,
            paused=renderer.pause_req,
            reconnects=sup.reconnects,
            last_error=sup.last_error,
            idle_stops=sup.idle_stops,
        )

    def __repr__(self) -> str:
        return (
            f"AudioOutput(input_rate_hz={self.input_rate_hz}, device={self.device!r}, "
            f"state={self._sup.state!r})"
        )
