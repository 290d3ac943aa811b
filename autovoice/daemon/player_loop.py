"""The player thread's side of `Player`: speaking one utterance after another.

`PlayerLoop.run` is the "autovoice-player" thread's body: it applies a pending reload, takes the
next utterance from the scheduler, prepares it (voice, cache, `started`), writes its audio into
the output chunk by chunk, waits for an open stream's text, takes a held utterance off the
output and parks it, and reports cancels with the time the device went silent. `Player`
(`autovoice.daemon.player`) builds the state used here and adds the lifecycle and the control
other threads use.

Thread: `run` and what it calls are the player thread; `_abort_locked` and `_take_off_locked`
any (under `_lock`).
RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from autovoice.audio_io.resample import StreamResampler
from autovoice.config import AppConfig, AudioConfig
from autovoice.daemon import protocol as p
from autovoice.daemon.cache import PhraseCache
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.playback import Job, Piece, Playing, first_loud
from autovoice.daemon.player_io import Output, OutputFactory, SpeakPayload
from autovoice.daemon.reporting import Reporter
from autovoice.daemon.scheduler import Scheduler, Utterance
from autovoice.daemon.voices import Voices
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.errors import AutoVoiceError, EngineError, VoiceError

__all__ = ["POLL_S", "PlayerLoop"]

_LOG = logging.getLogger("autovoice.daemon.player")  # the `Player`'s log, named as before

POLL_S = 0.02
"""How often waits re-check cancel and shutdown."""


class PlayerLoop:
    """The player thread's work; `Player` sets the state below in its constructor."""

    _scheduler: Scheduler
    _make_output: OutputFactory
    _report: Reporter
    _metrics: Metrics
    _voices: Voices
    cache: PhraseCache
    _lock: threading.Lock
    _aborted_at: dict[int, float]
    _current: Playing | None
    _playing: dict[int, Playing]
    _segment_ids: Iterator[int]
    _pending: tuple[AppConfig, Synthesizer] | None
    _stopping: threading.Event
    _audio_config: AudioConfig
    _output: Output
    _busy_since: float | None
    _stepped_s: float
    _on_audio_event: Callable[[Any], None]

    def run(self) -> None:
        """Player thread body: speak utterances until closed."""
        while not self._stopping.is_set():
            self._apply_swap()
            utt = self._scheduler.next_utterance()  # no timeout: idle means asleep
            if utt is None:
                continue
            try:
                self._busy_since = self._stepped_s = time.monotonic()
                self._speak(utt)
            except Exception as exc:  # never let one utterance kill the thread
                _LOG.exception("utterance %d failed", utt.uid)
                self._report.failed(utt, p.ErrorCode.INTERNAL, f"internal error: {exc}")
            finally:
                self._busy_since = None
                with self._lock:
                    self._current = None
                    self._playing.clear()
                self._scheduler.finish(utt)

    def _speak(self, utt: Utterance) -> None:
        if utt.cancel_event.is_set():
            self._finish_cancelled(utt)
            return
        job, utt.resume_state = utt.resume_state, None
        if job is None:
            job = self._prepare(utt)
            if job is None:
                return
        elif job.stale and not self._restart(utt, job):
            return
        try:
            self._play(utt, job)
        finally:
            if utt.resume_state is not job and job.chunks is not None:  # it ended early
                job.chunks.close()
                self._metrics.synthesis(job.audio_s, job.compute_s)

    def _prepare(self, utt: Utterance) -> Job | None:
        """Load the voice, announce `started`, and set up the audio source (None: it ended or
        was held before that)."""
        payload: SpeakPayload = utt.payload or SpeakPayload()
        options = payload.options
        try:
            synth = self._voices.get(payload.voice, utt.received_s, lambda: self._halted(utt))
        except VoiceError as exc:
            self._report.failed(utt, p.ErrorCode.UNKNOWN_VOICE, str(exc))
            return None
        except EngineError as exc:
            self._report.failed(utt, p.ErrorCode.ENGINE_ERROR, str(exc))
            return None
        if synth is None:  # cancelled, held (or shutting down) while its voice was loading
            if utt.hold_event.is_set() and not self._cancelled(utt):
                self._park(utt, None)
            else:
                self._finish_cancelled(utt)
            return None
        pitch = min(4.0, max(0.25, payload.pitch))
        if pitch != 1.0:
            rate = options.rate if options.rate is not None else synth.config.synthesis.rate
            options = dataclasses.replace(options, rate=min(10.0, max(0.1, rate / pitch)))
        try:
            key = (*self._cache_key(synth, utt.text, options), pitch)
        except VoiceError as exc:
            self._report.failed(utt, p.ErrorCode.UNKNOWN_VOICE, str(exc))
            return None
        cacheable = payload.feed is None and self.cache.cacheable(utt.text)
        cached = self.cache.get(key) if cacheable else None
        self._report.started(utt, synth.voice.name, cached is not None)
        job = Job(synth, options, pitch, key, cached, feed=payload.feed)
        if payload.marks and cached is None:
            job.mark_words = tuple(synth.frontend.words_before(utt.text, payload.marks))
        if cached is not None:
            job.audio_s = len(cached) / synth.sample_rate
        elif payload.feed is None:
            job.chunks = synth.speak(
                utt.text, options, trim_lead_in=synth.config.streaming.trim_lead_in
            )
            job.pieces = [] if cacheable else None
        return job

    def _restart(self, utt: Utterance, job: Job) -> bool:
        """A held utterance whose voice a reload replaced: synthesise again with the new voice
        from the clause it was in (False: it ended)."""
        payload: SpeakPayload = utt.payload or SpeakPayload()
        try:
            synth = self._voices.get(payload.voice, utt.received_s, lambda: self._halted(utt))
        except (VoiceError, EngineError) as exc:
            self._report.failed(utt, p.ErrorCode.ENGINE_ERROR, str(exc))
            return False
        if synth is None:
            if utt.hold_event.is_set() and not self._cancelled(utt):
                self._park(utt, job)
            else:
                self._finish_cancelled(utt)
            return False
        job.restart(synth, utt.text)
        return True

    def _play(self, utt: Utterance, job: Job) -> None:
        """Play `job` from where it is: to its end, until cancelled, or until a pause of its
        client takes it off the output (then it is parked with the scheduler)."""
        playing = Playing(utt, next(self._segment_ids), job.first, resumed=job.segments > 0)
        if job.mark_words:
            playing.rate_hz = job.synth.sample_rate * job.pitch
        with self._lock:
            if not utt.cancel_event.is_set() and not utt.hold_event.is_set():
                self._current = playing
                self._playing[playing.segment] = playing
        if self._current is not playing:
            if utt.cancel_event.is_set():
                self._finish_cancelled(utt)
            else:
                self._park(utt, job)
            return
        job.segments += 1
        out = self._output
        out.begin_utterance(playing.segment)
        resampler = StreamResampler(round(job.synth.sample_rate * job.pitch), out.input_rate_hz)
        job.written = []
        try:
            while not self._halted(utt):
                synthesising = job.chunks is not None or job.feed is not None
                piece = job.next_piece()
                if piece is None:
                    if job.waiting:  # an open stream: its next text has not come yet
                        playing, resampler = self._await_text(utt, job, playing, resampler)
                        continue
                    if synthesising:  # the generator just ran out
                        self._metrics.synthesis(job.audio_s, job.compute_s)
                    break
                if self._halted(utt):
                    job.replay.appendleft(piece)
                    break
                if job.mark_words:
                    self._time_marks(utt, job, playing, piece)
                piece.pos = self._positions()[0]
                job.written.append(piece)
                self._write(resampler, piece.samples, utt)
                job.prune(self._positions()[1])
        except (VoiceError, EngineError) as exc:
            with self._lock:
                self._abort_locked(utt)
            code = p.ErrorCode.UNKNOWN_VOICE if isinstance(exc, VoiceError) else None
            self._report.failed(utt, code or p.ErrorCode.ENGINE_ERROR, str(exc))
            return
        if self._ended_early(utt, job, playing):
            return
        tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            out.write(tail, utt.cancel_event)
        out.end_utterance(playing.segment)
        while not playing.played.wait(POLL_S) or playing.aborted:
            if self._ended_early(utt, job, playing):
                return
            if playing.played.is_set():
                break  # dropped by the output itself (a lost device): ends as before
        if job.pieces:
            self.cache.put(job.key, np.concatenate(job.pieces))
        self._report.done(utt, job)

    def _ended_early(self, utt: Utterance, job: Job, playing: Playing) -> bool:
        """True when `utt` ends here: cancelled (silenced and reported), or held by its client
        (taken off the output and parked)."""
        if self._cancelled(utt):
            with self._lock:
                self._abort_locked(utt)
            self._finish_cancelled(utt)
            return True
        if utt.hold_event.is_set():
            self._take_off(utt, job, playing)
            return True
        return False

    def _await_text(
        self, utt: Utterance, job: Job, playing: Playing, resampler: StreamResampler
    ) -> tuple[Playing, StreamResampler]:
        """An open stream ran out of text: end its output segment (what was written plays on;
        a dry ring between segments is no underrun), wait for more text, the stream's end, or a
        cancel or hold, then begin a new segment of the same utterance. Returns the segment and
        resampler to go on with (the old ones when it was halted meanwhile)."""
        out = self._output
        tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            out.write(tail, utt.cancel_event)
        out.end_utterance(playing.segment)
        assert job.feed is not None
        while not job.feed.wait(POLL_S):
            if self._halted(utt):
                return playing, resampler
        nxt = Playing(utt, next(self._segment_ids), job.first)
        with self._lock:
            if self._halted(utt):
                return playing, resampler
            self._current = nxt
            self._playing[nxt.segment] = nxt
        out.begin_utterance(nxt.segment)
        return nxt, StreamResampler(resampler.in_rate_hz, resampler.out_rate_hz)

    def _time_marks(self, utt: Utterance, job: Job, playing: Playing, piece: Piece) -> None:
        """Before `piece` is written: report the samples of marks whose words were just made,
        and the segment's first sound if it is in `piece`."""
        self._report.marks(utt, job)
        if playing.loud_sample is None:
            loud = first_loud(piece)
            if loud is not None:
                self._report.sound(playing, loud, bool(job.word_starts))

    def _positions(self) -> tuple[int, int]:
        """(write, read) positions of the output, in its own frames (comparable, not mixable
        with input frames)."""
        out = self._output
        ring = getattr(out, "ring", None)
        src = ring if ring is not None else out
        return int(getattr(src, "write_pos", 0)), int(getattr(src, "read_pos", 0))

    def _take_off(self, utt: Utterance, job: Job, playing: Playing) -> None:
        """Its client paused: drop it from the output and keep what has not played, from the
        start of the clause that was playing, for when it continues."""
        with self._lock:
            self._take_off_locked(playing)
        job.take_off(playing.stop_pos if playing.stop_pos is not None else 0)
        self._park(utt, job)

    def _take_off_locked(self, playing: Playing) -> None:
        if playing.stop_pos is None:
            playing.stop_pos = self._positions()[1]
        self._output.abort()

    def _park(self, utt: Utterance, job: Job | None) -> None:
        utt.resume_state = job
        if not self._scheduler.park(utt):
            utt.resume_state = None
            self._finish_cancelled(utt)

    def _cancelled(self, utt: Utterance) -> bool:
        return utt.cancel_event.is_set() or self._stopping.is_set()

    def _halted(self, utt: Utterance) -> bool:
        self._stepped_s = time.monotonic()  # a step: see `health`
        return self._cancelled(utt) or utt.hold_event.is_set()

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
        self._report.cancelled(utt, silenced, self._stopping.is_set())

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
        for utt in self._scheduler.active():  # held ones: their voice is about to be closed
            job = utt.resume_state
            if isinstance(job, Job) and job.chunks is not None:
                job.chunks.close()
                job.stale, job.chunks = True, None
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
