"""Text in, streamed audio chunks out: frontend + backend + chunked decoding for one voice.

Thread: one inference thread uses a Synthesizer at a time. RT-safe: no.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from autovoice.config import AppConfig
from autovoice.engines.base import AudioChunk, Backend, Scales
from autovoice.engines.frontend import Frontend, SpeechUnit
from autovoice.engines.manager import load_backend
from autovoice.engines.options import SpeakOptions
from autovoice.engines.streaming import decode_chunks
from autovoice.engines.voice import VoiceInfo, find_voices, resolve_voice

__all__ = ["Synthesizer", "list_voices"]

_LOG = logging.getLogger(__name__)
_WARM_UP_TEXT = "Ready, and warm."


@dataclass
class Synthesizer:
    """A loaded voice with its engine, ready to stream speech.

    Attributes:
        voice: The voice's facts.
        backend: The inference engine in use.
        frontend: Text -> phoneme ids for this voice.
        config: The configuration it was loaded with (defaults for every request).
        skipped_engines: Engines that were tried before `backend` and why they failed.
    """

    voice: VoiceInfo
    backend: Backend
    frontend: Frontend
    config: AppConfig
    skipped_engines: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, config: AppConfig, voice: str | None = None, warm_up: bool = True) -> Synthesizer:
        """Resolve and load a voice (default: the configured one), pick its engine, warm it up.

        Raises:
            VoiceError: the voice is missing or bad.
            EngineError: no engine could load it.
        """
        info = VoiceInfo.load(resolve_voice(voice or config.voice, config.voices_dir))
        choice = load_backend(info, config)
        synth = cls(
            voice=info,
            backend=choice.backend,
            frontend=Frontend(info, config.streaming.max_unit_phonemes),
            config=config,
            skipped_engines=choice.skipped,
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

    def speak(self, text: str, options: SpeakOptions | None = None) -> Iterator[AudioChunk]:
        """Yield audio chunks of `text` as they are made (stop iterating to abandon).

        Raises:
            VoiceError: unknown speaker (before any audio).
            EngineError: inference failed.
        """
        scales, gain = self.scales(options)
        streaming = self.config.streaming
        position = 0
        for index, unit in enumerate(self.frontend.units(text)):
            started = time.monotonic()
            z = self.backend.encode(list(unit.ids), scales)
            pieces = decode_chunks(
                self.backend,
                z,
                scales.speaker_id,
                streaming.first_chunk_frames,
                streaming.max_chunk_frames,
                streaming.halo_frames,
            )
            previous = None
            for audio in pieces:
                if previous is not None:
                    yield self._chunk(previous, position, index, False, started, gain)
                    position += len(previous)
                    started = time.monotonic()
                previous = audio
            if previous is not None:
                yield self._chunk(previous, position, index, True, started, gain)
                position += len(previous)

    def synthesize_whole(self, text: str, options: SpeakOptions | None = None) -> np.ndarray:
        """Whole-utterance synthesis (each unit encoded and decoded in one call), for comparison."""
        scales, gain = self.scales(options)
        parts = [self._whole_unit(unit, scales) for unit in self.frontend.units(text)]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return _apply_gain(audio, gain)

    def close(self) -> None:
        """Release the engine."""
        self.backend.close()

    def _whole_unit(self, unit: SpeechUnit, scales: Scales) -> np.ndarray:
        z = self.backend.encode(list(unit.ids), scales)
        return self.backend.decode(z, scales.speaker_id)

    def _chunk(
        self, audio: np.ndarray, position: int, index: int, last: bool, started: float, gain: float
    ) -> AudioChunk:
        now = time.monotonic()
        return AudioChunk(
            samples=_apply_gain(audio, gain),
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


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return float(value)
    raise ValueError("no value")


def _apply_gain(audio: np.ndarray, gain: float) -> np.ndarray:
    if gain != 1.0:
        audio = audio * np.float32(gain)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
