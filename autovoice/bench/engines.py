"""Real-time factor of each available engine: streamed vs whole-utterance compute.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from autovoice.config import AppConfig
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.errors import AutoVoiceError

__all__ = ["EngineResult", "measure_engine"]

_LOG = logging.getLogger(__name__)
_EXACT = SpeakOptions(noise_scale=0.0, noise_w=0.0)


@dataclass(frozen=True)
class EngineResult:
    """One engine's figures over the benchmark sentences.

    Attributes:
        engine: Engine name.
        available: False when it could not load (then `reason` says why).
        rtf_streamed: Compute seconds per audio second, streaming (median over sentences).
        rtf_whole: The same, whole-utterance synthesis.
        first_chunk_ms: Median time to the first chunk (in-process, no daemon, no device).
        reason: Why it is unavailable.
    """

    engine: str
    available: bool
    rtf_streamed: float = float("nan")
    rtf_whole: float = float("nan")
    first_chunk_ms: float = float("nan")
    reason: str = ""

    @property
    def streamed_over_whole(self) -> float:
        """Streaming's compute relative to whole-utterance synthesis (1.0 = no overhead)."""
        return self.rtf_streamed / self.rtf_whole


def measure_engine(config: AppConfig, engine: str, texts: list[str], repeats: int) -> EngineResult:
    """Load `engine` and time streamed and whole synthesis of `texts`."""
    import numpy as np

    try:
        synth = Synthesizer.load(dataclasses.replace(config, engine=engine))
    except AutoVoiceError as exc:
        return EngineResult(engine, False, reason=str(exc))
    streamed, whole, first = [], [], []
    try:
        for _ in range(repeats):
            for text in texts:
                started = time.perf_counter()
                samples = 0
                first_at = None
                for chunk in synth.speak(text, _EXACT):
                    if first_at is None:
                        first_at = time.perf_counter()
                    samples += len(chunk.samples)
                took = time.perf_counter() - started
                audio_s = samples / synth.sample_rate
                streamed.append(took / audio_s)
                first.append(((first_at or started) - started) * 1e3)
                started = time.perf_counter()
                synth.synthesize_whole(text, _EXACT)
                whole.append((time.perf_counter() - started) / audio_s)
    finally:
        synth.close()
    return EngineResult(
        engine,
        True,
        rtf_streamed=float(np.median(streamed)),
        rtf_whole=float(np.median(whole)),
        first_chunk_ms=float(np.median(first)),
    )
