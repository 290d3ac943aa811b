"""`autovoice synth` as a user runs it: a real process, the real default voice."""

from __future__ import annotations

import io
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from autovoice.engines import Synthesizer
from autovoice.synth import ProgressBar
from tests.conftest import EXACT

EXACT_ARGS = ["--engine", "onnx", "--noise-scale", "0", "--noise-w", "0"]


def run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "autovoice", "synth", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def read_wav(data: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        frames = wav.readframes(wav.getnframes())
        return wav.getframerate(), np.frombuffer(frames, "<i2").astype(np.float32) / 32767


def test_wav_output_matches_engine(tmp_path: Path, onnx_synth: Synthesizer) -> None:
    out = tmp_path / "out.wav"
    result = run([*EXACT_ARGS, "-o", str(out), "Hello world, this is AutoVoice."])
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    rate, audio = read_wav(out.read_bytes())
    expected = onnx_synth.synthesize_whole("Hello world, this is AutoVoice.", EXACT)
    assert rate == 22050
    assert audio.shape == expected.shape
    assert np.abs(audio - expected).max() < 2 / 32767


def test_stdout_is_raw_pcm_only_and_stdin_text(onnx_synth: Synthesizer) -> None:
    result = run([*EXACT_ARGS, "-o", "-", "-"], stdin=b"Reading from standard input.")
    assert result.returncode == 0, result.stderr
    audio = np.frombuffer(result.stdout, "<i2").astype(np.float32) / 32767
    expected = onnx_synth.synthesize_whole("Reading from standard input.", EXACT)
    assert audio.shape == expected.shape
    assert np.abs(audio - expected).max() < 2 / 32767


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "-", "   "], "no text to speak"),
        (["--voice", "/nonexistent/voice.onnx", "-o", "-", "hi"], "model file not found"),
        (["--rate", "0", "-o", "-", "hi"], "synthesis.rate: 0.0 is out of range"),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], message: str) -> None:
    result = run(args)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_progress_bar_draws_after_delay() -> None:
    stream = io.StringIO()
    bar = ProgressBar(total_sentences=4, stream=stream, after_s=0.0)
    bar.update(2, 3.5)
    bar.finish(7.0)
    text = stream.getvalue()
    assert "50%" in text and "3.5 s of audio" in text and "100%" in text
    quiet = io.StringIO()
    slow = ProgressBar(total_sentences=4, stream=quiet, after_s=60.0)
    slow.update(2, 3.5)
    slow.finish(7.0)
    assert quiet.getvalue() == ""


def test_torch_engine_speaks_like_onnx(tmp_path: Path) -> None:
    """`synth --engine torch` (our PyTorch VITS) gives the onnx engine's audio."""
    pytest.importorskip("torch")
    text = "The torch engine speaks, with numbers like 42."
    outputs = {}
    for engine in ("onnx", "torch"):
        out = tmp_path / f"{engine}.wav"
        args = ["--engine", engine, "--noise-scale", "0", "--noise-w", "0", "-o", str(out), text]
        result = run(args)
        assert result.returncode == 0, result.stderr
        outputs[engine] = read_wav(out.read_bytes())[1]
    torch_audio, onnx_audio = outputs["torch"], outputs["onnx"]
    assert torch_audio.shape == onnx_audio.shape
    # both are 16-bit: allow a few steps of rounding, and a tiny relative error overall
    assert np.abs(torch_audio - onnx_audio).max() <= 4 / 32767
    assert np.linalg.norm(torch_audio - onnx_audio) / np.linalg.norm(onnx_audio) < 1e-3
