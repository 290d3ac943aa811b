"""The systems users would pick instead: piper-tts (same voice) and espeak-ng.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["espeak_ttfa_ms", "piper_ttfa_ms", "piper_version"]


def piper_version() -> str:
    """Installed piper-tts version."""
    from importlib.metadata import version

    return version("piper-tts")


def piper_ttfa_ms(
    model_path: Path, texts: Iterable[str], repeats: int, warmups: int = 2
) -> dict[str, list[float]]:
    """Time to piper-tts's first chunk per text, as its users call it (its Python API).

    `PiperVoice.synthesize` yields one chunk per sentence; its first chunk is its first audio.
    """
    from piper import PiperVoice

    voice = PiperVoice.load(model_path)
    texts = list(texts)
    for _ in range(warmups):
        next(iter(voice.synthesize(texts[0])))
    results: dict[str, list[float]] = {t: [] for t in texts}
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            chunks = voice.synthesize(text)
            next(iter(chunks))
            results[text].append((time.perf_counter() - started) * 1e3)
            for _ in chunks:  # finish it, as a user would, before the next request
                pass
    return results


def espeak_ttfa_ms(texts: Iterable[str], repeats: int) -> dict[str, list[float]] | None:
    """Time from starting `espeak-ng --stdout` to its first non-silent sample, per text.

    Includes process start (a few ms): it is how scripts call espeak-ng. None if not installed.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    results: dict[str, list[float]] = {}
    for text in texts:
        results[text] = []
        for _ in range(repeats):
            results[text].append(_espeak_once(exe, text))
    return results


def _espeak_once(exe: str, text: str) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen([exe, "--stdout", text], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    header = proc.stdout.read(44)  # RIFF/WAVE header of 16-bit mono PCM
    first = float("nan")
    if len(header) == 44:
        while True:
            block = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else b""
            if not block:
                break
            samples = np.frombuffer(block[: len(block) // 2 * 2], "<i2")
            if samples.size and np.abs(samples).max() > 16:
                first = (time.perf_counter() - started) * 1e3
                break
    proc.stdout.close()
    proc.kill()
    proc.wait()
    return first
