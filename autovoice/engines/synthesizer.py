"""Text in, streamed audio chunks out: frontend + backend + chunked decoding for one voice.

Run-time fallback: when the engine fails mid-utterance (a CUDA error, a TensorRT enqueue
failure, ...), the synthesizer loads the next engine of the `auto` chain and continues from the
chunk that failed: a unit's latent `z` is engine-independent, so if it was already encoded only
the remaining chunks are decoded by the new engine; nothing already yielded is repeated. The
failure is logged once and counted (`fallbacks`, `failures`, `engine_status()`). Errors of the
request itself (bad speaker: ValueError/TypeError/VoiceError) are raised as they are.

Thread: several threads may use one Synthesizer at once (the daemon's player and its synthesis
pool); calls into an engine that is not `thread_safe` (the GPU engines) take turns, a chunk at a
time, under the synthesizer's engine lock. RT-safe: no.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autovoice.config import AppConfig
from autovoice.engines.base import AudioChunk, Backend, Scales
from autovoice.engines.frontend import Frontend, SpeechUnit
from autovoice.engines.gpu_plan import decode_one, stream_plan
from autovoice.engines.latent import LazyLatent
from autovoice.engines.lead_in import MARGIN_S, audible_start, lead_frames
from autovoice.engines.manager import load_backend
from autovoice.engines.options import SpeakOptions
from autovoice.engines.voice import VoiceInfo, find_voices, resolve_voice
from autovoice.errors import EngineError, VoiceError

__all__ = ["Synthesizer", "list_voices"]

_LOG = logging.getLogger(__name__)
_WARM_UP_TEXT = "Ready, and warm."
_REQUEST_ERRORS = (ValueError, TypeError, VoiceError)
"""Errors of the request, not the engine: raised as they are, never a reason to fall back."""
FAILURES_KEPT = 16
"""Most recent engine failures kept for `engine_status()`."""


@dataclass
class Synthesizer:
    """A loaded voice with its engine, ready to stream speech.

    Attributes:
        voice: The voice's facts.
        backend: The inference engine in use.
        frontend: Text -> phoneme ids for this voice.
        config: The configuration it was loaded with (defaults for every request).
        skipped_engines: Engines that were tried before `backend` and why they failed.
        fallback_chain: Engines to fall back to, in order, when `backend` fails at run time
            (empty unless the engine is `auto`).
        fallbacks: Times the engine was replaced at run time.
        failures: Engine failures at run time (with or without a fallback).
    """

    voice: VoiceInfo
    backend: Backend
    frontend: Frontend
    config: AppConfig
    skipped_engines: tuple[str, ...] = field(default=())
    fallback_chain: tuple[str, ...] = field(default=())
    fallbacks: int = 0
    failures: int = 0
    _recent_failures: deque = field(default_factory=lambda: deque(maxlen=FAILURES_KEPT))
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, config: AppConfig, voice: str | None = None, warm_up: bool = True) -> Synthesizer:
        """Resolve and load a voice (default: the configured one), pick its engine, warm it up.

        Raises:
            VoiceError: the voice is missing or bad.
            EngineError: no engine could load it.
        """
        info = VoiceInfo.load(resolve_voice(voice or config.voice, config.voices_dir))
        frontend = Frontend(  # first: a missing phonemizer package fails before the model loads
            info, config.streaming.max_unit_phonemes, config.streaming.first_unit_phonemes
        )
        choice = load_backend(info, config)
        synth = cls(
            voice=info,
            backend=choice.backend,
            frontend=frontend,
            config=config,
            skipped_engines=choice.skipped,
            fallback_chain=choice.remaining,
        )
        info.speaker_id(config.speaker)  # a bad configured speaker fails now, not mid-speech
        if warm_up:
            synth.warm_up()
        return synth

    @property
    def engine_name(self) -> str:
        """Name of the engine in use."""
        return self.backend.name

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return self.voice.sample_rate

    def engine_status(self) -> dict[str, Any]:
        """Engine facts for the daemon's status: name, skipped engines, fallback counters."""
        return {
            "engine": self.engine_name,
            "skipped": list(self.skipped_engines),
            "fallback_chain": list(self.fallback_chain),
            "fallbacks": self.fallbacks,
            "failures": self.failures,
            "recent_failures": list(self._recent_failures),
        }

    def warm_up(self) -> None:
        """Run a short synthesis so the first real request pays no first-call costs."""
        started = time.monotonic()
        for _ in self.speak(_WARM_UP_TEXT, SpeakOptions(noise_scale=0.0, noise_w=0.0)):
            pass
        _LOG.info("warmed up %s in %.2f s", self.engine_name, time.monotonic() - started)

    def scales(self, options: SpeakOptions | None = None) -> tuple[Scales, float]:
        """Resolve request options over config over voice defaults: (scales, gain).

        Raises:
            VoiceError: unknown speaker.
        """
        options = options or SpeakOptions()
        defaults = self.config.synthesis
        rate = options.rate if options.rate is not None else defaults.rate
        noise_scale = _first(options.noise_scale, defaults.noise_scale, self.voice.noise_scale)
        noise_w = _first(options.noise_w, defaults.noise_w, self.voice.noise_w)
        gain = options.gain if options.gain is not None else defaults.gain
        speaker = options.speaker if options.speaker is not None else self.config.speaker
        scales = Scales(
            noise_scale=noise_scale,
            length_scale=self.voice.length_scale / rate,
            noise_w=noise_w,
            speaker_id=self.voice.speaker_id(speaker),
        )
        return scales, gain

    def speak(
        self, text: str, options: SpeakOptions | None = None, *, trim_lead_in: bool = False
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks of `text` as they are made (stop iterating to abandon).

        The first chunk of each unit carries `word_starts` when the engine knows its phoneme
        durations (the onnx engine does).

        Args:
            text: What to say.
            options: Request options over the config's defaults.
            trim_lead_in: Drop the quiet lead-in of the first unit (`lead_in`): its BOS frames
                are not decoded and its samples before the first audible one (less a 1 ms
                margin) are not yielded. Sample 0 of the chunks (`start_sample`,
                `word_starts`) is then the first sample yielded.

        Raises:
            VoiceError: unknown speaker (before any audio).
            EngineError: inference failed.
        """
        scales, gain = self.scales(options)
        margin = int(round(MARGIN_S * self.voice.sample_rate))
        bos = self.voice.phoneme_id_map.get("^", [None])[0]
        position = 0  # samples yielded so far
        for index, unit in enumerate(self.frontend.units(text)):
            z: np.ndarray | None = None
            words: tuple[int, ...] = ()  # word starts within the unit's own audio
            skip: int | None = None  # leading frames not decoded
            extra = 0  # quiet frames added to the first chunk: it still plays as long
            unit_start = position  # where the unit's own sample 0 falls among yielded samples
            trimming = trim_lead_in and index == 0
            done = 0  # chunks of this unit already made
            yielded = False
            while True:
                backend = self.backend
                started = time.monotonic()
                try:
                    with self._engine_turn(backend):
                        if z is None:
                            encode = getattr(backend, "encode_lazy", backend.encode)
                            z = encode(list(unit.ids), scales)
                            if index > 0 and isinstance(z, LazyLatent):
                                z.exact_from_start()  # made while earlier audio plays
                            words = self._word_starts(unit, z, backend.hop_samples, 0)
                        if skip is None:  # once per unit: a fallback engine keeps the same plan
                            durations = getattr(z, "durations", None)
                            skip, extra = (
                                lead_frames(unit.ids, durations, bos) if trimming else (0, 0)
                            )
                            unit_start -= skip * backend.hop_samples
                        plans = self._plans(backend, z.shape[1], index == 0, skip, extra)
                        if done >= len(plans):
                            break
                        audio = decode_one(backend, z, scales.speaker_id, plans[done])
                except _REQUEST_ERRORS:
                    raise
                except Exception as exc:  # any engine fault: fall back and retry this chunk
                    z = _detach(z)
                    self._fall_back(backend, exc)
                    continue
                last = done == len(plans) - 1
                done += 1
                samples = _apply_gain(audio, gain)
                if trimming:
                    cut = audible_start(samples, margin)
                    if cut is None and not last:  # quiet throughout: not played
                        unit_start -= len(samples)
                        continue
                    samples = samples[cut or 0 :]
                    unit_start -= cut or 0
                    trimming = False
                chunk = self._chunk(samples, position, index, last, started)
                if not yielded and words:
                    starts = tuple(max(0, unit_start + w) for w in words)
                    chunk = dataclasses.replace(chunk, word_starts=starts)
                yielded = True
                yield chunk
                position += len(samples)

    def synthesize_whole(self, text: str, options: SpeakOptions | None = None) -> np.ndarray:
        """Whole-utterance synthesis (each unit encoded and decoded in one call), for comparison."""
        scales, gain = self.scales(options)
        parts = [self._whole_unit(unit, scales) for unit in self.frontend.units(text)]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return _apply_gain(audio, gain)

    def close(self) -> None:
        """Release the engine."""
        self.backend.close()

    def _engine_turn(self, backend: Backend) -> contextlib.AbstractContextManager:
        """Nothing for an engine that may run on several threads at once, else the lock."""
        if getattr(backend, "thread_safe", False):
            return contextlib.nullcontext()
        return self._engine_lock

    def _whole_unit(self, unit: SpeechUnit, scales: Scales) -> np.ndarray:
        while True:
            backend = self.backend
            try:
                with self._engine_turn(backend):
                    z = backend.encode(list(unit.ids), scales)
                    return backend.decode(z, scales.speaker_id)
            except _REQUEST_ERRORS:
                raise
            except Exception as exc:  # any engine fault: fall back and redo the unit
                self._fall_back(backend, exc)

    def _word_starts(
        self, unit: SpeechUnit, z: Any, hop_samples: int, position: int
    ) -> tuple[int, ...]:
        """Utterance sample where each word of `unit` starts (its audio begins at `position`),
        from the frames per phoneme id the engine reports; () when it reports none."""
        durations = getattr(z, "durations", None)
        if durations is None or len(durations) != len(unit.ids):
            return ()
        frames = np.concatenate(([0], np.cumsum(durations)))
        starts = self.frontend.word_id_starts(unit.phonemes)
        return tuple(position + int(frames[i]) * hop_samples for i in starts)

    def _plans(
        self,
        backend: Backend,
        total_frames: int,
        first_unit: bool = True,
        start_frame: int = 0,
        extra_first: int = 0,
    ) -> list:
        """Chunk plan of a unit from `start_frame` on; GPU engines get their fixed windows.

        Only the first unit of a text starts with the small `first_chunk_frames` (that is the
        latency a listener waits for), and its second chunk is 1.5 times that, not double the
        first as decoded (with its quiet frames): it has to be made while the first one plays,
        which is shorter than planned when the onset comes late (a stop's closure), and with a
        core busy (`ab_heard`-style runs, 56 busy sentences played out each: the ring ran dry
        in 6 with doubling, in 0 with 1.5x, in 5 with 1x, whose second chunk plays too briefly
        to cover the third). Later units are made while earlier audio plays, so they start with
        chunks 8 times as large and pay fewer halos.
        """
        s = self.config.streaming
        first = (
            s.first_chunk_frames + extra_first
            if first_unit
            else min(8 * s.first_chunk_frames, s.max_chunk_frames)
        )
        second = (3 * s.first_chunk_frames + 1) // 2 if first_unit else None
        windows = getattr(backend, "decoder_windows", ())
        return stream_plan(
            total_frames, first, s.max_chunk_frames, s.halo_frames, windows, start_frame, second
        )

    def _fall_back(self, failed: Backend, exc: Exception) -> None:
        """Replace a failed engine by the next one of the chain that loads.

        Raises:
            EngineError: no fallback (explicit engine) or none of the chain could load.
        """
        reason = f"{type(exc).__name__}: {exc}"
        self.failures += 1
        self._recent_failures.append(f"{failed.name}: {reason}")
        if not self.fallback_chain:
            if isinstance(exc, EngineError):
                raise exc
            raise EngineError(failed.name, f"inference failed: {reason}") from exc
        _LOG.warning("engine %s failed at run time (%s); falling back", failed.name, reason)
        try:
            choice = load_backend(self.voice, self.config, chain=self.fallback_chain)
        except EngineError as load_exc:
            self.fallback_chain = ()
            raise EngineError(
                failed.name, f"inference failed ({reason}) and no fallback loaded: {load_exc}"
            ) from exc
        self.backend = choice.backend
        self.fallback_chain = choice.remaining
        self.skipped_engines = (*self.skipped_engines, f"engine {failed.name}: {reason}")
        self.skipped_engines += choice.skipped
        self.fallbacks += 1
        _LOG.warning("engine %s in use after the failure of %s", choice.backend.name, failed.name)
        try:
            failed.close()
        except Exception as close_exc:  # a broken engine may fail to close too
            _LOG.warning("closing the failed engine %s: %s", failed.name, close_exc)

    def _chunk(
        self, samples: np.ndarray, position: int, index: int, last: bool, started: float
    ) -> AudioChunk:
        now = time.monotonic()
        return AudioChunk(
            samples=samples,
            sample_rate=self.voice.sample_rate,
            start_sample=position,
            clause_index=index,
            last_in_clause=last,
            compute_s=now - started,
            made_at_s=now,
        )


def list_voices(config: AppConfig) -> list[VoiceInfo]:
    """Every voice AutoVoice can find with this config (default first)."""
    voices: list[VoiceInfo] = []
    for path in find_voices(config.voices_dir):
        try:
            voices.append(VoiceInfo.load(path))
        except Exception as exc:  # one broken voice must not hide the others
            _LOG.warning("skipping voice %s: %s", path, exc)
    return voices


def _detach(z: np.ndarray | LazyLatent | None) -> np.ndarray | None:
    """A latent that no longer needs its engine: finish a lazy one, or None to encode again."""
    if not isinstance(z, LazyLatent):
        return z
    try:
        return np.asarray(z)
    except Exception:  # the failed engine's flow failed too: the next engine encodes again
        return None


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return float(value)
    raise ValueError("no value")


def _apply_gain(audio: np.ndarray, gain: float) -> np.ndarray:
    if gain != 1.0:
        audio = audio * np.float32(gain)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
