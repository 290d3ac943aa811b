"""The real-time output stream: ring buffer -> PortAudio callback -> device.

Three threads meet here:
- the *writer* (the inference thread): `begin_utterance`, `write`, `end_utterance`;
- the *PortAudio callback* (real time): copies from the ring into the device block, zero-fills
  a shortfall, applies fades, and records first-audio / played moments into preallocated slots;
- the *event thread* "autovoice-audio-events" (non-RT): turns recorded slots into
  `FirstAudio`/`UtterancePlayed` events for `on_event`, watches the stream's health, and reopens
  the device with back-off when it fails.
Control calls (`abort`, `pause`, `resume`, `stats`, `wait_played`) may come from any thread.

Utterances are tracked by absolute ring positions: `begin_utterance` records where the utterance
starts in the ring, `write` records where its first non-silent frame lands, `end_utterance` where
it ends. The callback compares those positions with its read position; it never allocates, locks,
logs or raises. The only system call it makes is a non-blocking one-byte pipe write (`WakePipe`)
to wake the writer or the event thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from autovoice.audio_io.devices import (
    check_device,
    check_latency,
    import_sounddevice,
    resolve_output_device,
)
from autovoice.audio_io.events import (
    FirstAudio,
    OutputStats,
    PlaybackEvent,
    UtterancePlayed,
    WakePipe,
)
from autovoice.audio_io.resample import StreamResampler
from autovoice.audio_io.ring import RingBuffer
from autovoice.errors import AudioDeviceError

__all__ = ["AudioOutput"]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_S = 0.010
"""Callback block length in seconds (output is committed in fixed blocks)."""
DEFAULT_FADE_S = 0.004
"""Fade-out length on abort/pause, fade-in on resume, in seconds."""
SILENCE_THRESHOLD = 1.0 / 32768.0
"""A frame whose magnitude exceeds this (one 16-bit step) counts as non-silent."""
MAX_UTTERANCES = 256
"""Utterances that may be outstanding (begun and not yet reported finished) at once."""
RECONNECT_INITIAL_S = 0.25
RECONNECT_MAX_S = 8.0
STALL_S = 2.0
"""A running stream whose callback has not run for this long is treated as failed."""
_SCRATCH_FRAMES = 16384


@dataclass
class _Utt:
    """Non-RT bookkeeping of one utterance."""

    utterance_id: int
    seq: int
    abort_gen: int
    done: threading.Event
    first_sent: bool = False
    finished: bool = False


class AudioOutput:
    """Plays mono float32 audio on a PortAudio device through a lock-free ring buffer.

    The stream is opened by `start()` and stays open, playing silence when idle, so an utterance
    never waits for a device to open. Input at `input_rate_hz` is resampled (python-soxr,
    streaming) to the device rate when they differ, and duplicated to the device's channels.

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
        fade_s: Length of the fade on abort/pause/resume in seconds.

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
        fade_s: float = DEFAULT_FADE_S,
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
        if not 0.0 <= fade_s <= block_s:
            raise ValueError(f"fade_s must be within 0..block_s, got {fade_s!r}")
        self.input_rate_hz = input_rate_hz
        self.device = check_device(device)
        self.latency = check_latency(latency)
        self.buffer_s = float(buffer_s)
        self.on_event = on_event
        self._want_rate = device_rate_hz
        self._want_channels = channels
        self._block_s = block_s
        self._fade_s = fade_s

        self._sd = None
        self._stream = None
        self._state = "stopped"
        self._device_name = ""
        self._rate = 0
        self._channels = 0
        self._blocksize = 0
        self._latency_s = 0.0
        self._reconnects = 0
        self._last_error = ""
        self.ring: RingBuffer | None = None
        self._resampler: StreamResampler | None = None

        # Locks (non-RT only): writer/abort exclusion, bookkeeping.
        self._write_lock = threading.Lock()
        self._book_lock = threading.Condition()
        self._space_wake = WakePipe()
        self._event_wake = WakePipe()
        self._writer_waiting = False
        self._abort_gen = 0
        self._cur: _Utt | None = None
        self._utts: dict[int, _Utt] = {}  # seq -> utt, outstanding
        self._finished_ids: OrderedDict[int, bool] = OrderedDict()
        self._ev_head = 0  # first seq not yet finished (event thread)
        self._closing = False
        self._thread: threading.Thread | None = None

        # Slots shared with the callback (preallocated).
        n = MAX_UTTERANCES
        self._slot_tail = 0  # writer publishes
        self._slot_head = 0  # callback owns
        self._s_active = np.zeros(n, dtype=bool)
        self._s_start = np.zeros(n, dtype=np.int64)
        self._s_first = np.full(n, -1, dtype=np.int64)
        self._s_end = np.full(n, -1, dtype=np.int64)
        self._s_first_done = np.zeros(n, dtype=bool)
        self._s_played = np.zeros(n, dtype=bool)
        self._s_aborted = np.zeros(n, dtype=bool)
        # [monotonic, currentTime, outputBufferDacTime, offset_frames] of the first frame.
        self._s_first_t = np.zeros((n, 4), dtype=np.float64)
        self._s_played_t = np.zeros(n, dtype=np.float64)

        # Callback state.
        self._mono = np.zeros(_SCRATCH_FRAMES, dtype=np.float32)
        self._fade_out = np.zeros(0, dtype=np.float32)
        self._fade_in = np.zeros(0, dtype=np.float32)
        self._pause_req = False
        self._paused_out = False
        self._fade_in_pending = False
        self._underruns = 0
        self._pa_underflows = 0
        self._callbacks = 0
        self._last_cb_mono = 0.0
        self._last_clear_mono = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Open the device and start playing (silence until audio is written).

        Raises:
            AudioDeviceError: If PortAudio is missing or the device cannot be opened.
            RuntimeError: If already started.

        Thread: control (non-RT). RT-safe: no.
        """
        if self._state != "stopped" or self._closing:
            raise RuntimeError("AudioOutput already started (or closed)")
        self._sd = import_sounddevice(self.device)
        self._open_stream(first=True)
        self._closing = False
        self._thread = threading.Thread(
            target=self._event_loop, name="autovoice-audio-events", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the stream at once (queued audio is dropped) and release the device.

        Outstanding utterances are reported finished (aborted). Errors while closing are
        logged, not raised. Calling it twice is harmless.

        Thread: control (non-RT). RT-safe: no.
        """
        if self._closing:
            return
        self._closing = True
        self._event_wake.set()
        self._space_wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._close_stream()
        self._state = "stopped"
        with self._book_lock:
            for utt in list(self._utts.values()):
                self._finish(utt, time.monotonic(), aborted=True)
        self._space_wake.close()
        self._event_wake.close()

    def __enter__(self) -> AudioOutput:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_stream(self, first: bool) -> None:
        sd = self._sd
        try:
            info = resolve_output_device(sd, self.device)
        except AudioDeviceError:
            raise
        index = int(info["index"])
        max_ch = int(info["max_output_channels"])
        channels = self._want_channels or min(2, max_ch)
        if first:
            rates = [self._want_rate] if self._want_rate else [self.input_rate_hz]
            default_rate = int(round(info["default_samplerate"]))
            if not self._want_rate and default_rate not in rates:
                rates.append(default_rate)
        else:
            rates = [self._rate]  # keep the ring's rate across reconnects
        errors = []
        for rate in rates:
            blocksize = max(16, int(round(rate * self._block_s)))
            try:
                stream = sd.OutputStream(
                    samplerate=rate,
                    blocksize=blocksize,
                    device=index,
                    channels=channels,
                    dtype="float32",
                    latency=self.latency,
                    callback=self._callback,
                    finished_callback=self._event_wake.set,
                )
            except (sd.PortAudioError, ValueError) as exc:
                errors.append(f"{rate} Hz: {exc}")
                continue
            break
        else:
            raise AudioDeviceError(self.device, "cannot open output: " + "; ".join(errors))
        if first:
            self._setup_buffers(rate)
        self._rate, self._channels, self._blocksize = rate, channels, blocksize
        self._device_name = str(info["name"])
        self._latency_s = float(stream.latency)
        self._last_cb_mono = time.monotonic()
        self._stream = stream
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self._close_stream()
            raise AudioDeviceError(self.device, f"cannot start output: {exc}") from exc
        self._state = "ok"
        log.info(
            "audio output %r: %d Hz, %d ch, block %d, latency %.1f ms",
            self._device_name,
            rate,
            channels,
            blocksize,
            self._latency_s * 1e3,
        )

    def _setup_buffers(self, rate: int) -> None:
        self.ring = RingBuffer(max(int(rate * self.buffer_s), 4 * int(rate * self._block_s)))
        self._resampler = StreamResampler(self.input_rate_hz, rate)
        nfade = max(1, int(round(rate * self._fade_s)))
        ramp = np.linspace(1.0, 0.0, nfade + 1, dtype=np.float32)[1:]
        self._fade_out = ramp
        self._fade_in = ramp[::-1].copy()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
        except Exception as exc:  # a dead device may refuse; closing must go on
            log.warning("audio output: abort failed: %s", exc)
        try:
            stream.close()
        except Exception as exc:
            log.warning("audio output: close failed: %s", exc)

    # ------------------------------------------------------------------ writer side
    def _require_started(self) -> RingBuffer:
        if self.ring is None or self._closing:
            raise RuntimeError("AudioOutput is not started (call start() first)")
        return self.ring

    def begin_utterance(self, utterance_id: int) -> None:
        """Mark where a new utterance starts; later writes belong to it.

        An utterance still open (not ended) is ended first.

        Raises:
            RuntimeError: If not started, or more than MAX_UTTERANCES are outstanding for 5 s.

        Thread: writer. RT-safe: no.
        """
        ring = self._require_started()
        if self._cur is not None:
            self.end_utterance(self._cur.utterance_id)
        with self._book_lock:
            if not self._book_lock.wait_for(
                lambda: self._slot_tail - self._ev_head < MAX_UTTERANCES, timeout=5.0
            ):
                raise RuntimeError(f"more than {MAX_UTTERANCES} utterances outstanding")
        with self._write_lock:
            seq = self._slot_tail
            i = seq % MAX_UTTERANCES
            self._s_start[i] = ring.write_pos
            self._s_first[i] = -1
            self._s_end[i] = -1
            self._s_first_done[i] = False
            self._s_played[i] = False
            self._s_aborted[i] = False
            self._s_active[i] = True
            utt = _Utt(int(utterance_id), seq, self._abort_gen, threading.Event())
            with self._book_lock:
                self._utts[seq] = utt
            self._cur = utt
            self._slot_tail = seq + 1  # publish to the callback
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
        utt = self._cur
        gen = utt.abort_gen if utt is not None else self._abort_gen
        with self._write_lock:
            if gen != self._abort_gen:
                return 0
            y = self._resampler.process(x)
            if utt is not None:
                self._mark_first(utt, y)
        done = self._push(y, gen, cancel)
        if done == len(y):
            return len(x)
        return min(len(x), int(done * self.input_rate_hz / self._rate))

    def _mark_first(self, utt: _Utt, y: np.ndarray) -> None:
        """Record where the utterance's first non-silent frame will land (under write lock)."""
        i = utt.seq % MAX_UTTERANCES
        if self._s_first[i] >= 0 or not len(y):
            return
        loud = np.abs(y) > SILENCE_THRESHOLD
        k = int(np.argmax(loud))
        if loud[k]:
            self._s_first[i] = self.ring.write_pos + k

    def _push(self, y: np.ndarray, gen: int, cancel: threading.Event | None) -> int:
        ring = self.ring
        done = 0
        while True:
            with self._write_lock:
                if gen != self._abort_gen or self._closing:
                    return done
                done += ring.write(y[done:])
            if done >= len(y) or (cancel is not None and cancel.is_set()):
                return done
            self._writer_waiting = True
            try:
                if ring.free_frames == 0:
                    # The callback raises the wake-up after each block while we wait.
                    self._space_wake.wait(max(0.05, 4 * self._block_s))
            finally:
                self._writer_waiting = False

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
                self._mark_first(utt, tail)
        if utt.abort_gen == self._abort_gen:
            self._push(tail, utt.abort_gen, None)
        with self._write_lock:
            self._s_end[utt.seq % MAX_UTTERANCES] = self.ring.write_pos
            self._cur = None
        self._event_wake.set()

    def wait_played(self, utterance_id: int, timeout_s: float) -> bool:
        """Wait until an utterance's last frame has been handed to PortAudio (or it was dropped).

        Returns:
            True once the utterance is finished, False on timeout or for an unknown id.

        Thread: any non-RT. RT-safe: no.
        """
        uid = int(utterance_id)
        with self._book_lock:
            if uid in self._finished_ids:
                return True
            utt = next((u for u in self._utts.values() if u.utterance_id == uid), None)
        if utt is None:
            return False
        return utt.done.wait(timeout_s)

    # ------------------------------------------------------------------ control
    def abort(self) -> None:
        """Drop everything queued: the callback fades out over a few ms, then plays silence.

        Every outstanding utterance (including one being written) is reported finished with
        `aborted=True`; a blocked `write` returns.

        Thread: any non-RT. RT-safe: no.
        """
        with self._write_lock:
            self._abort_gen += 1
            if self.ring is None:
                return
            now = time.monotonic()
            for seq in range(self._ev_head, self._slot_tail):
                i = seq % MAX_UTTERANCES
                if not self._s_played[i]:
                    self._s_active[i] = False
                    self._s_aborted[i] = True
            self.ring.clear()
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
        self._pause_req = True

    def resume(self) -> None:
        """Continue after `pause()` from where playback stopped (fading in).

        Thread: any. RT-safe: no.
        """
        self._pause_req = False

    @property
    def paused(self) -> bool:
        """True while paused."""
        return self._pause_req

    @property
    def last_silenced_s(self) -> float:
        """`time.monotonic()` when the callback last carried out an `abort()`: the block it
        handed to PortAudio then held the few ms of fade-out and silence after it (0.0: never).

        Thread: any. RT-safe: yes (reads one float).
        """
        return self._last_clear_mono + self._fade_s if self._last_clear_mono else 0.0

    @property
    def output_latency_s(self) -> float:
        """PortAudio's reported output latency of the open stream (0.0 when not started)."""
        return self._latency_s

    @property
    def device_rate_hz(self) -> int:
        """The stream's rate (0 when not started)."""
        return self._rate

    def stats(self) -> OutputStats:
        """A snapshot of the counters and state. Thread: any. RT-safe: no."""
        ring = self.ring
        return OutputStats(
            frames_written=ring.frames_written if ring else 0,
            frames_read=ring.frames_read if ring else 0,
            frames_discarded=ring.frames_discarded if ring else 0,
            underruns=self._underruns,
            underrun_callbacks=ring.underrun_reads if ring else 0,
            silence_frames=ring.silence_frames if ring else 0,
            high_water_frames=ring.high_water_frames if ring else 0,
            ring_capacity_frames=ring.capacity_frames if ring else 0,
            portaudio_underflows=self._pa_underflows,
            callbacks=self._callbacks,
            device_name=self._device_name,
            device_rate_hz=self._rate,
            input_rate_hz=self.input_rate_hz,
            channels=self._channels,
            blocksize_frames=self._blocksize,
            output_latency_s=self._latency_s,
            state=self._state,
            paused=self._pause_req,
            reconnects=self._reconnects,
            last_error=self._last_error,
        )

    # ------------------------------------------------------------------ callback (RT)
    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio callback: `callback(outdata, frames, time, status)`.

        Thread: PortAudio's audio thread. RT-safe: yes.
        """
        if status.output_underflow:
            self._pa_underflows += 1
        if frames > _SCRATCH_FRAMES:
            outdata.fill(0.0)
            return
        mono = self._mono[:frames]
        self._render(mono, time.monotonic(), time_info.currentTime, time_info.outputBufferDacTime)
        if outdata.shape[1] == 1:
            outdata[:, 0] = mono
        else:
            outdata[:] = mono[:, None]

    def _render(self, mono: np.ndarray, now: float, pa_now: float, pa_dac: float) -> None:
        """Fill `mono` from the ring and record utterance moments.

        Thread: the single reader (the callback, or the event thread while no stream runs).
        RT-safe: yes.
        """
        self._callbacks += 1
        self._last_cb_mono = now
        ring = self.ring
        n = len(mono)
        if self._pause_req:
            if not self._paused_out:
                got = ring.peek_into(mono)  # fade out what would play next, keep it queued
                nf = min(len(self._fade_out), n)
                mono[:nf] *= self._fade_out[:nf]
                mono[nf:] = 0.0
                self._paused_out = True
                self._fade_in_pending = got > 0  # fade back in only what was faded out
            else:
                mono.fill(0.0)
            return
        self._paused_out = False
        clearing = ring.clear_pending
        if clearing:
            self._last_clear_mono = now
        got = ring.read_into(mono, self._fade_out)
        r1 = ring.read_pos
        lead = ring.last_faded  # frames faded out from before a clear's jump
        if clearing:
            self._fade_in_pending = False
        elif self._fade_in_pending:
            self._fade_in_pending = False
            nf = min(len(self._fade_in), got)
            mono[:nf] *= self._fade_in[:nf]
        r0 = r1 - (got - lead)
        head = self._slot_head
        tail = self._slot_tail
        woke = False
        while head < tail:
            i = head % MAX_UTTERANCES
            if not self._s_active[i]:
                head += 1
                continue
            fp = self._s_first[i]
            if fp >= 0 and not self._s_first_done[i] and fp < r1:
                t = self._s_first_t[i]
                t[0] = now
                t[1] = pa_now
                t[2] = pa_dac
                t[3] = lead + max(0, fp - r0)
                self._s_first_done[i] = True
                woke = True
            ep = self._s_end[i]
            if 0 <= ep <= r1:
                self._s_played_t[i] = now
                self._s_played[i] = True
                woke = True
                head += 1
                continue
            if got < n and r1 > self._s_start[i]:
                self._underruns += 1
            break
        self._slot_head = head
        if woke:
            self._event_wake.set()
        if self._writer_waiting:
            self._space_wake.set()

    # ------------------------------------------------------------------ event thread
    def _event_loop(self) -> None:
        backoff = RECONNECT_INITIAL_S
        next_try = 0.0
        while not self._closing:
            try:
                backoff, next_try = self._event_step(backoff, next_try)
            except Exception:  # keep the thread alive whatever happens
                log.exception("audio output: event thread error")
                time.sleep(0.1)
        self._deliver()

    def _event_step(self, backoff: float, next_try: float) -> tuple[float, float]:
        """One turn of the event thread: wait, deliver events, check health, reconnect."""
        if self._state == "ok":
            self._event_wake.wait(0.05)
        else:
            self._event_wake.wait(self._block_s)
            self._discard_block()
        if self._closing:
            return backoff, next_try
        self._deliver()
        now = time.monotonic()
        if self._state == "ok" and self._stream_failed(now):
            self._state = "reconnecting"
            log.warning(
                "audio output %r lost (%s); reconnecting",
                self._device_name,
                self._last_error or "stream stopped",
            )
            self._close_stream()
            self._last_cb_mono = now
            backoff = RECONNECT_INITIAL_S
            next_try = now + backoff
        elif self._state == "reconnecting" and now >= next_try:
            try:
                self._reinit_portaudio()
                self._open_stream(first=False)
                self._reconnects += 1
                log.info("audio output %r back", self._device_name)
            except AudioDeviceError as exc:
                self._last_error = str(exc)
                log.warning("audio output: reopen failed (%s); retry in %.1f s", exc, backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                next_try = now + backoff
        return backoff, next_try

    def _stream_failed(self, now: float) -> bool:
        stream = self._stream
        if stream is None:
            return True
        try:
            active = stream.active
        except Exception as exc:
            self._last_error = str(exc)
            return True
        if not active:
            self._last_error = "stream stopped"
            return True
        if now - self._last_cb_mono > max(STALL_S, 20 * self._latency_s):
            self._last_error = f"no callback for {now - self._last_cb_mono:.1f} s"
            return True
        return False

    def _reinit_portaudio(self) -> None:
        """Re-scan devices (a replugged card gets a new index). Only our stream is affected."""
        sd = self._sd
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:  # keep trying with the old device list
            log.debug("audio output: PortAudio re-init failed: %s", exc)

    def _discard_block(self) -> None:
        """While no stream runs, consume the ring in real time so writers and waiters go on."""
        now = time.monotonic()
        frames = int((now - self._last_cb_mono) * self._rate)
        frames = max(0, min(frames, _SCRATCH_FRAMES))
        if frames and self.ring is not None:
            self._render(self._mono[:frames], now, float("nan"), float("nan"))
            self._last_cb_mono = now

    def _deliver(self) -> None:
        """Turn recorded slot moments into events (event thread)."""
        events: list[PlaybackEvent] = []
        with self._book_lock:
            for seq in range(self._ev_head, self._slot_tail):
                utt = self._utts.get(seq)
                if utt is None or utt.finished:
                    continue
                i = seq % MAX_UTTERANCES
                if self._s_first_done[i] and not utt.first_sent:
                    utt.first_sent = True
                    events.append(self._first_event(utt.utterance_id, self._s_first_t[i]))
                if self._s_played[i]:
                    events.append(self._finish(utt, float(self._s_played_t[i]), aborted=False))
                elif self._s_aborted[i]:
                    events.append(self._finish(utt, time.monotonic(), aborted=True))
            while self._ev_head < self._slot_tail:
                utt = self._utts.get(self._ev_head)
                if utt is not None and not utt.finished:
                    break
                self._utts.pop(self._ev_head, None)
                self._ev_head += 1
            self._book_lock.notify_all()
        for ev in events:
            if self.on_event is None:
                continue
            try:
                self.on_event(ev)
            except Exception:
                log.exception("audio output: on_event handler failed for %r", ev)

    def _first_event(self, uid: int, t: np.ndarray) -> FirstAudio:
        mono, pa_now, pa_dac, offset = (float(v) for v in t)
        rate = self._rate or 1
        dac = pa_dac + offset / rate
        latency = dac - pa_now if pa_now > 0 and pa_dac > 0 else self._latency_s + offset / rate
        return FirstAudio(uid, mono, dac, latency, mono + latency)

    def _finish(self, utt: _Utt, when: float, aborted: bool) -> UtterancePlayed:
        """Mark an utterance finished (book lock held)."""
        utt.finished = True
        utt.done.set()
        self._finished_ids[utt.utterance_id] = True
        while len(self._finished_ids) > 1024:
            self._finished_ids.popitem(last=False)
        return UtterancePlayed(utt.utterance_id, when, aborted)

    def __repr__(self) -> str:
        return (
            f"AudioOutput(input_rate_hz={self.input_rate_hz}, device={self.device!r}, "
            f"state={self._state!r})"
        )
