"""What the player reports: an utterance's events (started, first audio or continued, done,
cancelled, error) with the metrics that go with them, and its engine and output facts for
`status`. For an utterance with index marks, also the internal `Anchor` and `MarkSamples` that
time them (the SSIP listener's).

A final event (done, cancelled, error) is sent only by whoever claims `Utterance.settle()`, so an
utterance gets exactly one, whichever thread ends it.

Thread: `Reporter.first_audio` is the audio event thread's; the rest the player thread's (or any).
RT-safe: no.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autovoice.audio_io import FirstAudio as AudioFirst
from autovoice.daemon import protocol as p
from autovoice.daemon.cache import PhraseCache
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.playback import Continued, Job, Playing
from autovoice.daemon.utterance import CancelReason, Utterance
from autovoice.daemon.voices import Voices
from autovoice.engines import Synthesizer

__all__ = ["Emit", "Reporter", "output_activity", "status_info"]

Emit = Callable[[Utterance, Any], None]


class Reporter:
    """Publishes an utterance's events through `emit` and counts its outcome in `metrics`.

    Args:
        emit: `emit(utterance, event)`, called from the player thread and the audio event thread.
        metrics: Where first-audio latencies and outcomes (done, cancelled, failed) are recorded.

    Thread: see the methods. RT-safe: no.
    """

    def __init__(self, emit: Emit, metrics: Metrics) -> None:
        self._emit = emit
        self._metrics = metrics

    def started(self, utt: Utterance, voice: str, cached: bool) -> None:
        """`utt` is about to be spoken by `voice` (from the phrase cache if `cached`).

        Thread: the player thread.
        """
        self._emit(
            utt,
            p.Started(
                utterance=utt.uid,
                id=utt.request_id,
                voice=voice,
                cached=cached,
                wait_ms=round((time.monotonic() - utt.received_s) * 1e3, 2),
            ),
        )

    def first_audio(self, playing: Playing, event: AudioFirst) -> None:
        """The output's `FirstAudio` for `playing`'s segment: the utterance's first audio, or
        `Continued` once for a segment that continues it after a pause. The caller then sets
        `playing.first`.

        Thread: the audio event thread.
        """
        utt = playing.utt
        with playing.lock:
            if playing.heard_s is None:
                playing.heard_s = event.monotonic_s
            anchor = playing.anchor()
        if anchor is not None:
            self._emit(utt, anchor)
        if playing.first.is_set():
            if playing.resumed and not playing.continued_sent:
                playing.continued_sent = True
                self._emit(utt, Continued(utt.uid))
        elif not utt.cancel_event.is_set():
            feed = getattr(utt.payload, "feed", None)  # an open stream: from its first text
            since = feed.first_text_s if feed is not None and feed.first_text_s else None
            latency_ms = (event.monotonic_s - (since or utt.received_s)) * 1e3
            out_ms = max(0.0, event.output_latency_s) * 1e3
            if not playing.resumed:  # a wait for a pause is no latency
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

    def sound(self, playing: Playing, loud_sample: int, words: bool) -> None:
        """The first sound of `playing`'s segment, utterance sample `loud_sample`, is about to be
        written; `words`: the engine reports where words start. Emits the segment's `Anchor`
        if its first audio was already heard (else `first_audio` does).

        Thread: the player thread.
        """
        with playing.lock:
            playing.loud_sample, playing.words = loud_sample, words
            anchor = playing.anchor()
        if anchor is not None:
            self._emit(playing.utt, anchor)

    def marks(self, utt: Utterance, job: Job) -> None:
        """Emit `MarkSamples` for the marks whose words the engine has made since the last call.

        Thread: the player thread.
        """
        found = job.new_marks(utt.uid)
        if found is not None:
            self._emit(utt, found)

    def done(self, utt: Utterance, job: Job) -> None:
        """`utt` played to its end: if it settles here, report `done` with `job`'s audio and
        compute times.

        Thread: the player thread.
        """
        if utt.settle():
            audio_s, compute_s = job.audio_s, job.compute_s
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

    def cancelled(self, utt: Utterance, silenced_s: float | None, shutdown: bool) -> None:
        """`utt` ended early: if it settles here, report `cancelled`.

        Args:
            utt: The utterance.
            silenced_s: When the device went silent after its abort (None: not measured).
            shutdown: The daemon is stopping (the reason when the utterance has none).

        Thread: the player thread.
        """
        if utt.settle():
            reason = utt.cancel_reason or CancelReason.CANCEL
            if shutdown and utt.cancel_reason is None:
                reason = CancelReason.SHUTDOWN
            self._metrics.count("cancelled")
            self._emit(
                utt,
                p.Cancelled(
                    utterance=utt.uid,
                    id=utt.request_id,
                    reason=reason.value,
                    silenced_s=round(silenced_s, 6) if silenced_s is not None else None,
                ),
            )

    def failed(self, utt: Utterance, code: p.ErrorCode, message: str) -> None:
        """`utt` failed: if it settles here, report the error.

        Thread: the player thread.
        """
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


def status_info(
    synth: Synthesizer | None, stats: Any, voices: Voices, cache: PhraseCache
) -> dict[str, Any]:
    """Engine, voice and audio output facts for `status`.

    Args:
        synth: The configured voice (None once closed).
        stats: The audio output's `stats()`.
        voices: The loaded and loading voices.
        cache: The phrase cache.

    Returns:
        The player's part of the `status` reply.

    Thread: any. RT-safe: no.
    """
    audio = {
        "device": getattr(stats, "device_name", ""),
        "device_rate_hz": getattr(stats, "device_rate_hz", 0),
        "channels": getattr(stats, "channels", 1),
        "output_latency_ms": round(getattr(stats, "output_latency_s", 0.0) * 1e3, 2),
        "underruns": getattr(stats, "underruns", 0),
        "portaudio_underflows": getattr(stats, "portaudio_underflows", 0),
        "state": getattr(stats, "state", ""),
        "output": output_activity(getattr(stats, "state", "")),
        "callbacks": getattr(stats, "callbacks", 0),
        "idle_stops": getattr(stats, "idle_stops", 0),
        "paused": getattr(stats, "paused", False),
    }
    return {
        "engine": synth.engine_name if synth else "",
        "engines": synth.engine_status() if synth else {},
        "voice": synth.voice.name if synth else "",
        "sample_rate_hz": synth.sample_rate if synth else 0,
        "loaded_voices": voices.loaded(),
        "loading_voices": voices.loading(),
        "audio": audio,
        "cache": cache.stats(),
    }


def output_activity(state: str) -> str:
    """`status`'s `audio.output`: "running" (the stream plays, silence included), "idle" (stopped
    for lack of anything to play: no callbacks, the sink may suspend; the next request starts
    it), "reconnecting" (the device was lost) or "stopped".

    Thread: any. RT-safe: no.
    """
    return {"ok": "running"}.get(state, state or "stopped")
