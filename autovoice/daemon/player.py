"""The inference thread: takes utterances from the scheduler, synthesises them chunk by chunk and
writes the audio into the output's ring buffer, ahead of playback but never unboundedly.

One thread, "autovoice-player", uses the synthesizers and is the output's only writer. It asks
the scheduler for the next utterance, iterates the synthesizer's chunk generator and writes each
chunk (a blocking write: the ring holds at most `audio.lookahead_s` seconds, so a cancel wastes
little work and a 1 MB text keeps memory flat), checking the utterance's cancel event between
chunks. `interrupt` (from the event loop) aborts the output at once so a stop is heard within
one audio block; the thread then drops the rest of the utterance. Voices are loaded off this
thread (`autovoice.daemon.voices`): `prefetch` starts an utterance's load when it is accepted,
and the player waits only for what is left of it, and only while the utterance is not cancelled.

Thread: `run` is the player thread; `interrupt`, `pause`, `resume`, `swap`, `prefetch`, `info`
any.
RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from autovoice.audio_io import FirstAudio as AudioFirst
from autovoice.audio_io import UtterancePlayed
from autovoice.audio_io.resample import StreamResampler
from autovoice.config import AppConfig
from autovoice.daemon import protocol as p
from autovoice.daemon.cache import PhraseCache
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.scheduler import CancelReason, Scheduler, Utterance
from autovoice.daemon.voices import Voices
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.errors import AutoVoiceError, EngineError, VoiceError

__all__ = ["Output", "Player", "SpeakPayload"]

_LOG = logging.getLogger(__name__)

CACHE_WRITE_S = 0.05
"""Cached audio is written in slices this long, so a cancel lands between them."""
POLL_S = 0.02
"""How often waits re-check cancel and shutdown."""


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


@dataclass(frozen=True)
class SpeakPayload:
    """What the player needs to speak an utterance (the scheduler's opaque `payload`).

    Attributes:
        voice: Voice name or path; None = the configured voice.
        options: Per-request synthesis options (None fields = config defaults).
        pitch: Pitch factor (2.0 = an octave up). Piper voices have no pitch input, so the
            audio is made `pitch` times longer and played `pitch` times faster (resampling):
            the pitch moves, the duration stays.
    """

    voice: str | None = None
    options: SpeakOptions = field(default_factory=SpeakOptions)
    pitch: float = 1.0


@dataclass
class _Playing:
    """Playback state of the utterance being written (shared with the audio event thread)."""

    utt: Utterance
    first: threading.Event = field(default_factory=threading.Event)
    played: threading.Event = field(default_factory=threading.Event)


Emit = Callable[[Utterance, p.Event], None]
OutputFactory = Callable[[AppConfig, int, Callable[[Any], None]], Output]


class Player:
    """Owns the voices and the audio output; speaks what the scheduler hands out.

    Args:
        scheduler: Source of utterances.
        config: Effective configuration (voice, synthesis defaults, audio, cache).
        synth: The configured voice, loaded and warmed up.
        make_output: `make_output(config, input_rate_hz, on_event) -> Output` (not started).
        emit: `emit(utterance, event)`, called from this thread and the audio event thread to
            publish an utterance's events; the final one only after `utterance.settle()`.
        metrics: Where latencies and synthesis times are recorded.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        config: AppConfig,
        synth: Synthesizer,
        make_output: OutputFactory,
        emit: Emit,
        metrics: Metrics,
    ) -> None:
        self._scheduler = scheduler
        self._make_output = make_output
        self._emit = emit
        self._metrics = metrics
        self._voices = Voices(config, synth, self._needed_voices)
        self.cache = PhraseCache(int(config.daemon.cache_mb * 1e6), config.daemon.cache_max_chars)
        self._lock = threading.Lock()
        self._aborted_at: dict[int, float] = {}  # uid -> monotonic time of its (first) abort
        self._current: _Playing | None = None
        self._playing: dict[int, _Playing] = {}
        self._pending: tuple[AppConfig, Synthesizer] | None = None
        self._stopping = threading.Event()
        self._audio_config = config.audio
        self._output = make_output(config, synth.sample_rate, self._on_audio_event)
        self._thread = threading.Thread(target=self.run, name="autovoice-player", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the audio output and start the player thread.

        Raises:
            AudioDeviceError: the output cannot be opened.
        """
        self._output.start()
        self._voices.start()
        self._thread.start()

    def close(self, timeout_s: float = 0.3) -> None:
        """Stop the thread (after the chunk it is on), silence and close the output, release
        the synthesizers. A voice load under way is not waited for. Errors while closing are
        logged."""
        self._stopping.set()
        self._voices.stop()
        with self._lock:
            try:
                self._output.abort()
            except Exception as exc:
                _LOG.warning("audio abort on close failed: %s", exc)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            _LOG.warning("player thread still busy at shutdown; leaving it")
            return
        try:
            self._output.close()
        except Exception as exc:
            _LOG.warning("audio close failed: %s", exc)
        self._voices.close()

    # -- control (any thread) ----------------------------------------------------------------

    def interrupt(self, utt: Utterance) -> None:
        """Silence `utt` now if it is the one playing (its cancel event is already set)."""
        with self._lock:
            if self._current is not None and self._current.utt is utt:
                self._abort_locked(utt)

    def pause(self) -> None:
        """Hold playback where it is."""
        self._output.pause()

    def resume(self) -> None:
        """Continue playback."""
        self._output.resume()

    def prefetch(self, utt: Utterance) -> None:
        """Start loading the voice of a just accepted utterance unless it is loaded."""
        self._voices.want(getattr(utt.payload, "voice", None), utt.received_s)

    def swap(self, config: AppConfig, synth: Synthesizer) -> None:
        """Use a reloaded config and its freshly loaded voice from the next utterance on."""
        with self._lock:
            old = self._pending
            self._pending = (config, synth)
        if old is not None:
            old[1].close()

    def info(self) -> dict[str, Any]:
        """Engine, voice and audio output facts for `status`."""
        synth = self._voices.default
        stats = self._output.stats()
        audio = {
            "device": getattr(stats, "device_name", ""),
            "device_rate_hz": getattr(stats, "device_rate_hz", 0),
            "channels": getattr(stats, "channels", 1),
            "output_latency_ms": round(getattr(stats, "output_latency_s", 0.0) * 1e3, 2),
            "underruns": getattr(stats, "underruns", 0),
            "state": getattr(stats, "state", ""),
            "paused": getattr(stats, "paused", False),
        }
        return {
            "engine": synth.engine_name if synth else "",
            "engines": synth.engine_status() if synth else {},
            "voice": synth.voice.name if synth else "",
            "sample_rate_hz": synth.sample_rate if synth else 0,
            "loaded_voices": self._voices.loaded(),
            "loading_voices": self._voices.loading(),
            "audio": audio,
            "cache": self.cache.stats(),
        }

    # -- the thread --------------------------------------------------------------------------

    def run(self) -> None:
        """Player thread body: speak utterances until closed."""
        while not self._stopping.is_set():
            self._apply_swap()
            utt = self._scheduler.next_utterance(timeout_s=0.25)
            if utt is None:
                continue
            try:
                self._speak(utt)
            except Exception as exc:  # never let one utterance kill the thread
                _LOG.exception("utterance %d failed", utt.uid)
                self._fail(utt, p.ErrorCode.INTERNAL, f"internal error: {exc}")
            finally:
                with self._lock:
                    self._current = None
                    self._playing.pop(utt.uid, None)
                self._scheduler.finish(utt)

    def _speak(self, utt: Utterance) -> None:
        if utt.cancel_event.is_set():
            self._finish_cancelled(utt)
            return
        payload: SpeakPayload = utt.payload or SpeakPayload()
        options = payload.options
        try:
            synth = self._voices.get(payload.voice, utt.received_s, lambda: self._cancelled(utt))
        except VoiceError as exc:
            self._fail(utt, p.ErrorCode.UNKNOWN_VOICE, str(exc))
            return
        except EngineError as exc:
            self._fail(utt, p.ErrorCode.ENGINE_ERROR, str(exc))
            return
        if synth is None:  # cancelled (or shutting down) while its voice was loading
            self._finish_cancelled(utt)
            return
        pitch = min(4.0, max(0.25, payload.pitch))
        if pitch != 1.0:
            rate = options.rate if options.rate is not None else synth.config.synthesis.rate
            options = dataclasses.replace(options, rate=min(10.0, max(0.1, rate / pitch)))
        try:
            key = (*self._cache_key(synth, utt.text, options), pitch)
        except VoiceError as exc:
            self._fail(utt, p.ErrorCode.UNKNOWN_VOICE, str(exc))
            return
        cacheable = self.cache.cacheable(utt.text)
        cached = self.cache.get(key) if cacheable else None
        self._emit(
            utt,
            p.Started(
                utterance=utt.uid,
                id=utt.request_id,
                voice=synth.voice.name,
                cached=cached is not None,
                wait_ms=round((time.monotonic() - utt.received_s) * 1e3, 2),
            ),
        )
        playing = _Playing(utt)
        with self._lock:
            if utt.cancel_event.is_set():
                self._finish_cancelled(utt)
                return
            self._current = playing
            self._playing[utt.uid] = playing
        out = self._output
        out.begin_utterance(utt.uid)
        resampler = StreamResampler(round(synth.sample_rate * pitch), out.input_rate_hz)
        audio_s = compute_s = 0.0
        pieces: list[np.ndarray] | None = [] if cacheable and cached is None else None
        try:
            if cached is not None:
                step = max(1, int(CACHE_WRITE_S * synth.sample_rate))
                for start in range(0, len(cached), step):
                    if utt.cancel_event.is_set():
                        break
                    self._write(resampler, cached[start : start + step], utt)
                audio_s = len(cached) / synth.sample_rate
            else:
                chunks = synth.speak(utt.text, options)
                try:
                    for chunk in chunks:
                        compute_s += chunk.compute_s
                        audio_s += chunk.duration_s
                        if utt.cancel_event.is_set() or self._stopping.is_set():
                            break
                        if pieces is not None:
                            pieces.append(chunk.samples)
                        self._write(resampler, chunk.samples, utt)
                        if utt.cancel_event.is_set():
                            break
                finally:
                    chunks.close()
                self._metrics.synthesis(audio_s, compute_s)
        except (VoiceError, EngineError) as exc:
            with self._lock:
                self._abort_locked(utt)
            code = p.ErrorCode.UNKNOWN_VOICE if isinstance(exc, VoiceError) else None
            self._fail(utt, code or p.ErrorCode.ENGINE_ERROR, str(exc))
            return
        if utt.cancel_event.is_set() or self._stopping.is_set():
            with self._lock:
                self._abort_locked(utt)
            self._finish_cancelled(utt)
            return
        tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            out.write(tail, utt.cancel_event)
        out.end_utterance(utt.uid)
        while not playing.played.wait(POLL_S):
            if utt.cancel_event.is_set() or self._stopping.is_set():
                with self._lock:
                    self._abort_locked(utt)
                self._finish_cancelled(utt)
                return
        if pieces is not None and pieces:
            self.cache.put(key, np.concatenate(pieces))
        if utt.settle():
            rtf = round(compute_s / audio_s, 4) if compute_s and audio_s else None
            self._metrics.count("done")
            self._emit(
                utt,
                p.Done(
                    utterance=utt.uid,
                    id=utt.request_id,
                    audio_s=round(audio_s, 3),
                    compute_s=round(compute_s, 4),
                    rtf=rtf,
                ),
            )

    def _cancelled(self, utt: Utterance) -> bool:
        return utt.cancel_event.is_set() or self._stopping.is_set()

    def _write(self, resampler: StreamResampler, samples: np.ndarray, utt: Utterance) -> None:
        data = resampler.process(samples)
        if len(data):
            self._output.write(data, utt.cancel_event)

    def _abort_locked(self, utt: Utterance) -> None:
        """Abort the output once per utterance, remembering when (caller holds `_lock`)."""
        if utt.uid not in self._aborted_at:
            self._aborted_at[utt.uid] = time.monotonic()
            self._output.abort()

    def _silenced_at(self, utt: Utterance) -> float | None:
        """When the device went silent after this utterance's abort (waits up to 0.25 s)."""
        with self._lock:
            aborted = self._aborted_at.pop(utt.uid, None)
        if aborted is None:
            return None
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            silenced = float(getattr(self._output, "last_silenced_s", 0.0))
            if silenced >= aborted:
                return silenced
            time.sleep(0.001)
        return None

    def _finish_cancelled(self, utt: Utterance) -> None:
        silenced = self._silenced_at(utt)
        if utt.settle():
            reason = utt.cancel_reason or CancelReason.CANCEL
            if self._stopping.is_set() and utt.cancel_reason is None:
                reason = CancelReason.SHUTDOWN
            self._metrics.count("cancelled")
            self._emit(
                utt,
                p.Cancelled(
                    utterance=utt.uid,
                    id=utt.request_id,
                    reason=reason.value,
                    silenced_s=round(silenced, 6) if silenced is not None else None,
                ),
            )

    def _fail(self, utt: Utterance, code: p.ErrorCode, message: str) -> None:
        if utt.settle():
            self._metrics.count("failed")
            self._emit(
                utt,
                p.Error(
                    code=code.value,
                    message=message,
                    retryable=code in p.RETRYABLE_CODES,
                    id=utt.request_id,
                    utterance=utt.uid,
                ),
            )

    def _on_audio_event(self, event: Any) -> None:
        """`AudioOutput.on_event`, on the audio event thread."""
        playing = self._playing.get(event.utterance_id)
        if playing is None:
            return
        utt = playing.utt
        if isinstance(event, AudioFirst):
            if not utt.cancel_event.is_set() and not playing.first.is_set():
                latency_ms = (event.monotonic_s - utt.received_s) * 1e3
                out_ms = max(0.0, event.output_latency_s) * 1e3
                self._metrics.first_audio(latency_ms, latency_ms + out_ms)
                self._emit(
                    utt,
                    p.FirstAudio(
                        utterance=utt.uid,
                        id=utt.request_id,
                        latency_ms=round(latency_ms, 2),
                        at_s=round(event.monotonic_s, 6),
                        output_latency_ms=round(out_ms, 2),
                        heard_ms=round(latency_ms + out_ms, 2),
                    ),
                )
            playing.first.set()
        elif isinstance(event, UtterancePlayed):
            playing.played.set()

    # -- voices ------------------------------------------------------------------------------

    def _needed_voices(self) -> list[str | None]:
        """The `voice` of the current and every queued utterance (`Voices`' `needed`)."""
        return [getattr(u.payload, "voice", None) for u in self._scheduler.active()]

    @staticmethod
    def _cache_key(synth: Synthesizer, text: str, options: SpeakOptions) -> tuple:
        scales, gain = synth.scales(options)
        return (str(synth.voice.model_path), synth.engine_name, text, scales, gain)

    def _apply_swap(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        config, synth = pending
        audio_changed = (
            config.audio != self._audio_config or synth.sample_rate != self._output.input_rate_hz
        )
        self._voices.reset(config, synth)
        self.cache = PhraseCache(int(config.daemon.cache_mb * 1e6), config.daemon.cache_max_chars)
        if audio_changed:
            try:
                new_output = self._make_output(config, synth.sample_rate, self._on_audio_event)
                new_output.start()
            except (AutoVoiceError, ValueError) as exc:
                _LOG.error("reload: cannot open the new audio output, keeping the old: %s", exc)
            else:
                with self._lock:
                    old_output, self._output = self._output, new_output
                old_output.close()
                self._audio_config = config.audio
        _LOG.info("reloaded: voice %s on %s", synth.voice.name, synth.engine_name)
