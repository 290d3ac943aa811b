"""The non-RT half of `AudioOutput`: the PortAudio stream and the event thread that keeps it.

`StreamSupervisor.start` opens the output stream (its callback is `Renderer.callback`) and
starts the thread "autovoice-audio-events", which in turns:
- delivers the `FirstAudio`/`UtterancePlayed` events the callback's marks produce (through
  `UtteranceBook.collect`) to `on_event`;
- watches the stream's health (stopped by PortAudio, or no callback for `STALL_S`);
- after a failure, closes the stream and reopens it at the same rate with exponential back-off,
  re-initialising PortAudio first so a replugged card is found again; meanwhile it consumes the
  ring in real time (`Renderer.discard_elapsed`) so writers and waiters go on;
- when nothing has played for `idle_stop_s` (no utterance outstanding, the ring empty), closes
  the stream and sleeps without a timeout: while idle there are no callbacks, no sound-server
  connection and no periodic wake-ups, the device is free for other programs, and
  PulseAudio/PipeWire may suspend the sink. `wake()` (an utterance was accepted, or is being
  written) reopens it from this thread (~1-4 ms) while the writer computes the first chunk.
  Closed, not merely stopped: PortAudio 19.6's ALSA host leaves a mutex locked when restarting
  a stopped stream fails (the sound server went away meanwhile) and then aborts the process when
  that stream is closed; a fresh open fails cleanly instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from autovoice.audio_io.devices import import_sounddevice, resolve_output_device
from autovoice.audio_io.events import PlaybackEvent, WakePipe
from autovoice.audio_io.render import Renderer
from autovoice.audio_io.tracking import UtteranceBook
from autovoice.errors import AudioDeviceError

__all__ = [
    "DEFAULT_IDLE_STOP_S",
    "RECONNECT_INITIAL_S",
    "RECONNECT_MAX_S",
    "STALL_S",
    "StreamSupervisor",
]

log = logging.getLogger(__name__)

RECONNECT_INITIAL_S = 0.25
"""First wait before reopening a failed stream, in seconds (doubled after each failed try)."""
RECONNECT_MAX_S = 8.0
"""Longest wait between reopen tries, in seconds."""
STALL_S = 2.0
"""A running stream whose callback has not run for this long is treated as failed."""
HEALTH_CHECK_S = 0.05
"""How often the event thread checks a running stream's health (only while it runs)."""
DEFAULT_IDLE_STOP_S = 5.0
"""Stop the stream after this many seconds with nothing to play (0: never)."""


class StreamSupervisor:
    """Opens, watches and reopens the PortAudio output stream; delivers playback events.

    Args:
        device: Checked device selector (None, index or name substring).
        latency: Checked latency ("low", "high" or seconds), passed to PortAudio.
        block_s: Callback block length in seconds.
        input_rate_hz: Preferred stream rate when `device_rate_hz` is None.
        device_rate_hz: Forced stream rate, or None.
        channels: Forced device channels, or None for min(2, the device's maximum).
        renderer: Supplies the callback; read by the event thread for events and discarding.
        book: Turns the renderer's marks into events.
        event_wake: Raised by the callback (and `finished_callback`) to wake the event thread.
        prepare: `prepare(rate_hz)`, called once on the first open with the chosen rate, before
            the stream starts (sets up the ring, resampler and fades).
        on_event: `on_event(event) -> None`, called on the event thread; exceptions are logged.
        idle_stop_s: Stop the stream after this long with nothing to play; 0 keeps it running.
            It never stops before the last frame can have left the device (output latency plus
            two blocks after it was handed over).

    Attributes:
        state: "stopped", "ok" (running), "idle" (stopped while there is nothing to play) or
            "reconnecting".
        device_name, rate_hz, channels, blocksize_frames, latency_s: Facts of the open stream
            ("" / 0 before `start`).
        reconnects: Times the stream was reopened after a failure.
        last_error: The last device error, or "".
        idle_stops: Times the stream was stopped for being idle.

    Thread: `start`/`stop` control (non-RT); `wake` any; everything else the event thread.
    RT-safe: no.
    """

    def __init__(
        self,
        device: str | int | None,
        latency: str | float,
        block_s: float,
        input_rate_hz: int,
        device_rate_hz: int | None,
        channels: int | None,
        renderer: Renderer,
        book: UtteranceBook,
        event_wake: WakePipe,
        prepare: Callable[[int], None],
        on_event: Callable[[PlaybackEvent], None] | None,
        idle_stop_s: float = DEFAULT_IDLE_STOP_S,
    ) -> None:
        self._device = device
        self._latency = latency
        self._block_s = block_s
        self._input_rate_hz = input_rate_hz
        self._want_rate = device_rate_hz
        self._want_channels = channels
        self._renderer = renderer
        self._book = book
        self._event_wake = event_wake
        self._prepare = prepare
        self.on_event = on_event
        self._idle_stop_s = float(idle_stop_s)

        self._sd: Any = None
        self._stream: Any = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.state = "stopped"
        self.device_name = ""
        self.rate_hz = 0
        self.channels = 0
        self.blocksize_frames = 0
        self.latency_s = 0.0
        self.reconnects = 0
        self.last_error = ""
        self.idle_stops = 0
        # Idle bookkeeping (event thread), except `_wake_gen`, which `wake` bumps from any thread.
        self._wake_gen = 0
        self._seen_wake_gen = 0
        self._idle_since: float | None = None
        self._backoff = RECONNECT_INITIAL_S
        self._next_try = 0.0

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        """Open the device, start the stream and the event thread.

        Raises:
            AudioDeviceError: If PortAudio is missing or the device cannot be opened.

        Thread: control (non-RT). RT-safe: no.
        """
        self._sd = import_sounddevice(self._device)
        self._open_stream(first=True)
        self._thread = threading.Thread(
            target=self._event_loop, name="autovoice-audio-events", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the event thread (it delivers what is pending), then abort and close the stream.

        Errors while closing are logged, not raised.

        Thread: control (non-RT). RT-safe: no.
        """
        self._stopping = True
        self._event_wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._close_stream()
        self.state = "stopped"

    def wake(self) -> None:
        """Audio is coming: have the stream running (start it if idle) and reset the idle timer.

        Cheap when the stream runs (no system call); from idle it raises the event thread, which
        starts the stream while the caller goes on (e.g. computes the first chunk).

        Thread: any. RT-safe: no.
        """
        self._wake_gen += 1  # read by the event thread after it publishes "idle"
        if self.state != "ok":
            self._event_wake.set()

    # ------------------------------------------------------------------ the stream
    def _open_stream(self, first: bool, level: int = logging.INFO) -> None:
        sd = self._sd
        info = resolve_output_device(sd, self._device)
        index = int(info["index"])
        max_ch = int(info["max_output_channels"])
        channels = self._want_channels or min(2, max_ch)
        if first:
            rates = [self._want_rate] if self._want_rate else [self._input_rate_hz]
            default_rate = int(round(info["default_samplerate"]))
            if not self._want_rate and default_rate not in rates:
                rates.append(default_rate)
        else:
            rates = [self.rate_hz]  # keep the ring's rate across reconnects
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
                    latency=self._latency,
                    callback=self._renderer.callback,
                    finished_callback=self._event_wake.set,
                )
            except (sd.PortAudioError, ValueError) as exc:
                errors.append(f"{rate} Hz: {exc}")
                continue
            break
        else:
            raise AudioDeviceError(self._device, "cannot open output: " + "; ".join(errors))
        if first:
            self._prepare(rate)
        self.rate_hz, self.channels, self.blocksize_frames = rate, channels, blocksize
        self.device_name = str(info["name"])
        self.latency_s = float(stream.latency)
        self._renderer.last_cb_mono = time.monotonic()
        self._stream = stream
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self._close_stream()
            raise AudioDeviceError(self._device, f"cannot start output: {exc}") from exc
        self.state = "ok"
        log.log(
            level,
            "audio output %r: %d Hz, %d ch, block %d, latency %.1f ms",
            self.device_name,
            rate,
            channels,
            blocksize,
            self.latency_s * 1e3,
        )

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

    # ------------------------------------------------------------------ event thread
    def _event_loop(self) -> None:
        while not self._stopping:
            try:
                self._event_step()
            except Exception:  # keep the thread alive whatever happens
                log.exception("audio output: event thread error")
                time.sleep(0.1)
        self._deliver()

    def _event_step(self) -> None:
        """One turn of the event thread: wait, deliver events, check health, reconnect, idle."""
        state = self.state
        if state == "ok":
            self._event_wake.wait(HEALTH_CHECK_S)
        elif state == "idle":
            self._event_wake.wait(None)  # no timeout: only `wake`, an abort or a stop end it
        else:
            self._event_wake.wait(self._block_s)
            self._renderer.discard_elapsed(self.rate_hz)
        if self._stopping:
            return
        self._deliver()
        now = time.monotonic()
        busy = self._busy()
        if busy:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now  # nothing left to hand over: the idle timer starts
        if state == "idle":
            self._settle_idle(now)
            if busy:
                self._leave_idle(now)
            return
        if self.state == "ok" and self._stream_failed(now):
            self.state = "reconnecting"
            log.warning(
                "audio output %r lost (%s); reconnecting",
                self.device_name,
                self.last_error or "stream stopped",
            )
            self._close_stream()
            self._renderer.last_cb_mono = now
            self._backoff = RECONNECT_INITIAL_S
            self._next_try = now + self._backoff
        elif self.state == "reconnecting" and now >= self._next_try:
            self._reopen(now)
        if not busy and self._idle_due(now):
            self._enter_idle()

    def _busy(self) -> bool:
        """Whether there is something to play: an utterance outstanding, frames in the ring, or
        a `wake` since the last look."""
        gen = self._wake_gen
        woken = gen != self._seen_wake_gen
        self._seen_wake_gen = gen
        ring = self._renderer.ring
        queued = ring is not None and ring.available_frames > 0
        return woken or queued or self._renderer.slot_tail != self._book.head_seq

    def _idle_due(self, now: float) -> bool:
        if self._idle_stop_s <= 0 or self._idle_since is None:
            return False
        wait_s = max(self._idle_stop_s, self.latency_s + 2 * self._block_s)
        return now - self._idle_since >= wait_s

    def _enter_idle(self) -> None:
        """Close the stream and sleep until `wake`."""
        self.state = "idle"  # published first: a `wake` from now on raises the event pipe
        if self._busy():  # a `wake` came in between: keep going
            self.state = "ok" if self._stream is not None else "reconnecting"
            return
        self._close_stream()  # the ring is empty: only silence is dropped
        self.idle_stops += 1
        log.debug("audio output %r idle: stream closed", self.device_name)

    def _settle_idle(self, now: float) -> None:
        """While no stream runs, this thread is the ring's reader: carry out an `abort()`."""
        ring = self._renderer.ring
        if ring is not None and ring.clear_pending:
            ring.skip(0)
            self._renderer.last_clear_mono = now

    def _leave_idle(self, now: float) -> None:
        """Open the stream again (as it was: same device, rate and channels)."""
        self._renderer.last_cb_mono = now
        try:
            self._open_stream(first=False, level=logging.DEBUG)
        except AudioDeviceError as exc:  # gone while idle: reconnect (re-scanning devices)
            self.last_error = str(exc)
            log.warning("audio output %r: reopen after idle failed (%s)", self.device_name, exc)
            self.state = "reconnecting"
            self._backoff = RECONNECT_INITIAL_S
            self._next_try = now
            return
        log.debug(
            "audio output %r running again at %.4f (reopened in %.1f ms)",
            self.device_name,
            now,
            (time.monotonic() - now) * 1e3,
        )

    def _reopen(self, now: float) -> None:
        """One try at reopening a lost stream (state "reconnecting"), with back-off."""
        try:
            self._reinit_portaudio()
            self._open_stream(first=False)
            self.reconnects += 1
            log.info("audio output %r back", self.device_name)
        except AudioDeviceError as exc:
            self.last_error = str(exc)
            log.warning("audio output: reopen failed (%s); retry in %.1f s", exc, self._backoff)
            self._backoff = min(self._backoff * 2, RECONNECT_MAX_S)
            self._next_try = now + self._backoff

    def _stream_failed(self, now: float) -> bool:
        stream = self._stream
        if stream is None:
            return True
        try:
            active = stream.active
        except Exception as exc:
            self.last_error = str(exc)
            return True
        if not active:
            self.last_error = "stream stopped"
            return True
        renderer = self._renderer
        if now - renderer.last_cb_mono > max(STALL_S, 20 * self.latency_s):
            self.last_error = f"no callback for {now - renderer.last_cb_mono:.1f} s"
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

    def _deliver(self) -> None:
        """Turn recorded slot moments into events and hand them to `on_event`."""
        events = self._book.collect(self._renderer, self.rate_hz, self.latency_s)
        for ev in events:
            if self.on_event is None:
                continue
            try:
                self.on_event(ev)
            except Exception:
                log.exception("audio output: on_event handler failed for %r", ev)
