"""`autovoice synth`: one text to a WAV file, raw PCM on stdout, or the speakers.

Thread: main thread. RT-safe: no.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from autovoice.config import AppConfig
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.errors import AudioDeviceError

__all__ = ["DEFAULT_WAV", "ProgressBar", "synthesize_to_output"]

_LOG = logging.getLogger(__name__)
DEFAULT_WAV = "autovoice.wav"
_SENTENCE_END = re.compile(r"[.!?]+(\s|$)")


@dataclass
class ProgressBar:
    """A progress line on stderr, shown only once synthesis has taken `after_s` seconds.

    Attributes:
        total_sentences: Estimated number of sentences (from punctuation).
        stream: Where to draw (stderr).
        after_s: Seconds before the bar first appears.
    """

    total_sentences: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    after_s: float = 3.0
    started_s: float = field(default_factory=time.monotonic)
    _shown: bool = False
    _last_draw_s: float = 0.0

    def update(self, sentence_index: int, audio_s: float) -> None:
        """Redraw (at most 4 times a second) after the sentence `sentence_index` progressed."""
        now = time.monotonic()
        if now - self.started_s < self.after_s or now - self._last_draw_s < 0.25:
            return
        self._last_draw_s = now
        self._shown = True
        fraction = min(0.99, sentence_index / max(1, self.total_sentences))
        filled = int(fraction * 30)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} "
            f"{audio_s:7.1f} s of audio in {now - self.started_s:5.1f} s"
        )
        self.stream.flush()

    def finish(self, audio_s: float) -> None:
        """Close the bar with the final figures (only if it was shown)."""
        if self._shown:
            elapsed = time.monotonic() - self.started_s
            self.stream.write(
                f"\r[{'#' * 30}] 100% {audio_s:7.1f} s of audio in {elapsed:5.1f} s\n"
            )
            self.stream.flush()


def _open_sink(output: str | None, config: AppConfig, sample_rate: int):
    """Pick the sink: a WAV file, stdout, or the speakers (falling back to a WAV file)."""
    from autovoice.audio_io import AudioOutput, DeviceSink, RawStdoutSink, WavFileSink

    if output == "-":
        return RawStdoutSink(sample_rate), "stdout"
    if output:
        return WavFileSink(output, sample_rate), output
    try:
        device = AudioOutput(sample_rate, device=config.audio.device, latency=config.audio.latency)
        device.start()
    except AudioDeviceError as exc:
        print(f"autovoice: no sound device ({exc}); writing {DEFAULT_WAV}", file=sys.stderr)
        return WavFileSink(DEFAULT_WAV, sample_rate), DEFAULT_WAV
    print("autovoice: speaking on the sound device", file=sys.stderr)
    return DeviceSink(device), "device"


def synthesize_to_output(config: AppConfig, text: str, output: str | None, whole: bool) -> int:
    """Synthesise `text` with the configured voice into `output` (see module docstring).

    Returns:
        The process exit code.
    """
    synth = Synthesizer.load(config, warm_up=False)
    options = SpeakOptions()
    synth.scales(options)  # a bad speaker fails before any output is opened
    sink, where = _open_sink(output, config, synth.sample_rate)
    progress = ProgressBar(total_sentences=max(1, len(_SENTENCE_END.findall(text))))
    audio_s = 0.0
    try:
        if whole:
            audio = synth.synthesize_whole(text, options)
            sink.write(audio)
            audio_s = len(audio) / synth.sample_rate
        else:
            for chunk in synth.speak(text, options):
                sink.write(chunk.samples)
                audio_s += chunk.duration_s
                progress.update(chunk.clause_index, audio_s)
        sink.drain()
    except BaseException:
        sink.abort()
        raise
    finally:
        sink.close()
        synth.close()
    progress.finish(audio_s)
    _LOG.info("wrote %.2f s of audio to %s", audio_s, where)
    return 0
