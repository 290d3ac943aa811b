"""Sinks (WAV, raw stdout, null), the streaming resampler, argument checks, missing PortAudio."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from autovoice.audio_io import (
    AudioOutput,
    NullSink,
    RawStdoutSink,
    Sink,
    StreamResampler,
    WavFileSink,
)
from autovoice.audio_io.devices import check_device, check_latency
from autovoice.audio_io.sinks import to_pcm16
from tests.audio_fixtures import REPO_ROOT

X = (0.5 * np.sin(np.arange(5000) / 7.0)).astype(np.float32)


def test_wav_sink_writes_16_bit_pcm(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with WavFileSink(path, 22050) as sink:
        assert isinstance(sink, Sink) and sink.sample_rate == 22050
        sink.write(X[:1000])
        sink.write(X[1000:])
        sink.drain()
        sink.abort()
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(data, np.rint(X * 32767).astype(np.int16))


def test_raw_sink_and_clipping() -> None:
    buf = io.BytesIO()
    sink = RawStdoutSink(16000, stream=buf)
    sink.write(np.array([0.0, 0.5, -1.5, 2.0]))
    sink.drain()
    sink.close()
    assert np.frombuffer(buf.getvalue(), "<i2").tolist() == [0, 16384, -32767, 32767]
    assert to_pcm16(np.zeros(0)) == b""


def test_raw_sink_to_real_stdout() -> None:
    code = (
        "import numpy as np; from autovoice.audio_io import RawStdoutSink;"
        "s = RawStdoutSink(22050); s.write(np.array([0.25, -0.25])); s.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    assert np.frombuffer(out, "<i2").tolist() == [8192, -8192]


def test_null_sink_counts() -> None:
    sink = NullSink(22050)
    sink.write(X)
    sink.drain()
    sink.abort()
    sink.close()
    assert sink.frames_written == len(X) and isinstance(sink, Sink)


@pytest.mark.parametrize("chunks", [[5000], [1, 2, 3, 994, 4000], [128] * 40])
def test_resampler_chunking_is_seamless(chunks: list[int]) -> None:
    x = np.resize(X, sum(chunks))
    rs = StreamResampler(22050, 48000)
    parts, i = [], 0
    for n in chunks:
        parts.append(rs.process(x[i : i + n]))
        i += n
    parts.append(rs.process(np.zeros(0), last=True))
    y = np.concatenate(parts)
    whole = soxr.resample(x, 22050, 48000, quality="HQ")
    assert y.dtype == np.float32
    assert abs(len(y) - len(whole)) <= 2
    n = min(len(y), len(whole))
    assert np.max(np.abs(y[:n] - whole[:n])) < 1e-4
    # After `last`, the resampler is fresh: the same input gives the same output again.
    again = np.concatenate([rs.process(x), rs.process(np.zeros(0), last=True)])
    ref = np.concatenate([StreamResampler(22050, 48000).process(x), np.zeros(0, np.float32)])
    np.testing.assert_array_equal(again[: len(ref)], ref)


def test_resampler_passthrough_and_reset() -> None:
    rs = StreamResampler(22050, 22050)
    assert rs.passthrough
    np.testing.assert_array_equal(rs.process(X), X)
    rs2 = StreamResampler(22050, 44100)
    a = rs2.process(X)
    rs2.reset()
    np.testing.assert_array_equal(rs2.process(X), a)
    with pytest.raises(ValueError):
        StreamResampler(0, 48000)


def test_argument_checks() -> None:
    assert check_latency("low") == "low" and check_latency(0.05) == 0.05
    assert check_latency("0.1") == 0.1
    for bad in ("medium", 0, -1.0):
        with pytest.raises(ValueError, match="'low', 'high'"):
            check_latency(bad)
    assert check_device("3") == 3 and check_device(" USB ") == "USB" and check_device(None) is None
    with pytest.raises(ValueError):
        check_device(-1)
    with pytest.raises(TypeError):
        check_device(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AudioOutput(22050, buffer_s=0)
    with pytest.raises(ValueError):
        AudioOutput(22050, latency="fast")
    with pytest.raises(TypeError):
        AudioOutput(22050.0)  # type: ignore[arg-type]
    out = AudioOutput(22050)
    with pytest.raises(RuntimeError, match="start"):
        out.write(X)
    assert out.stats().state == "stopped"
    out.close()


MISSING_CHILD = """
import sys
from autovoice.errors import AudioDeviceError
from autovoice.audio_io import list_devices, AudioOutput
try:
    {call}
except AudioDeviceError as exc:
    print(str(exc)); sys.exit(3)
print("no error"); sys.exit(0)
"""


def _run_missing(prefix: list[str], env: dict[str, str], call: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    code = MISSING_CHILD.format(call=call)
    return subprocess.run(
        [*prefix, sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("call", ["list_devices()", "AudioOutput(22050).start()"])
def test_missing_portaudio_not_found(tmp_path: Path, call: str) -> None:
    """Simulated: a sitecustomize in the child makes ctypes' library search find no PortAudio."""
    (tmp_path / "sitecustomize.py").write_text(
        "import ctypes.util\n"
        "_real = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda n: None if 'portaudio' in n else _real(n)\n"
    )
    proc = _run_missing([], {"PYTHONPATH": str(tmp_path)}, call)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = proc.stdout.strip()
    assert "\n" not in line and "libportaudio2" in line and "install" in line


def test_missing_portaudio_unloadable() -> None:
    """Real: in a private mount namespace the library file is replaced by an empty one."""
    import ctypes.util

    name = ctypes.util.find_library("portaudio")
    lib = next(
        (
            Path(d) / name
            for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
            if name and (Path(d) / name).exists()
        ),
        None,
    )
    unshare = shutil.which("unshare")
    if lib is None or unshare is None:
        pytest.skip("no libportaudio file or no unshare")
    probe = subprocess.run([unshare, "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m not permitted here")
    script = f'mount --bind /dev/null {lib.resolve()} && exec "$@"'
    proc = _run_missing(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh"],
        {},
        "list_devices()",
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "libportaudio2" in proc.stdout
