"""Pytest fixtures that give real PortAudio a device without a sound card (see docs/AUDIO.md).

Register with `pytest_plugins = ["tests.audio_fixtures"]`. Fixtures:

- `pulse_server` (session): a private PulseAudio with a paced, 48 kHz mono float null sink.
- `pulse_audio` (function): an `AudioEnv` whose ALSA default PCM is a `file` PCM that tees what
  is played into `capture_path` (raw float32, interleaved) with pulse as its slave: paced, exact.
- `alsa_null_audio` (function): an `AudioEnv` whose ALSA default PCM is a `file` PCM over `null`:
  exact but NOT paced (audio passes ~1000x real time); only for short tests that end their stream.
- `jack_server` (session) and `jack_audio` (function): a JACK dummy server at 48 kHz (the only
  rate it takes), for tests of rate negotiation.

sounddevice reads the ALSA configuration when it is first imported, so code that opens a stream
runs in a child process started with `AudioEnv.env` (`AudioEnv.run_python` does that); never
import sounddevice in the pytest process itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from autovoice.bench.virtual_audio import launch_pulseaudio, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
NULL_SINK_RATE_HZ = 48000
JACK_RATE_HZ = 48000


@dataclass
class AudioEnv:
    """A virtual audio device for child processes, and what it captured.

    Attributes:
        kind: "pulse", "alsa-null" or "jack".
        dir: Private temp dir holding the config and the capture.
        vars: Only the variables this device needs (merge them into a child's environment).
        env: `os.environ` plus `vars` plus PYTHONPATH for the repo: pass as `env=` to subprocess.
        capture_path: Raw interleaved float32 file of what the stream played (ALSA kinds only).
        paced: True when the device consumes audio in real time.
    """

    kind: str
    dir: Path
    vars: dict[str, str]
    env: dict[str, str] = field(repr=False)
    capture_path: Path | None
    paced: bool

    def read_capture(self, channels: int = 2) -> np.ndarray:
        """What reached the device so far: float32 frames, shape (frames, channels).

        Each new stream truncates the file (a daemon's reopen after `audio.idle_stop_s` too:
        tests that read it by position run their daemon with `idle_stop_s: 0`); it starts with
        a few periods of zeros.
        """
        if self.capture_path is None:
            raise ValueError(f"{self.kind} device has no capture file")
        if not self.capture_path.exists():
            return np.zeros((0, channels), dtype=np.float32)
        data = np.fromfile(self.capture_path, dtype="<f4")
        frames = len(data) // channels
        return data[: frames * channels].reshape(frames, channels)

    def run_python(
        self, code: str, *args: str, timeout_s: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `python -c code args...` with this device's environment, in the repo root."""
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if check and proc.returncode != 0:
            out, err = proc.stdout[-4000:], proc.stderr[-4000:]
            raise AssertionError(f"child failed (rc {proc.returncode}):\n{out}\n{err}")
        return proc

    def run_json(self, code: str, *args: str, timeout_s: float = 60.0) -> dict:
        """`run_python` and parse the last stdout line as JSON."""
        proc = self.run_python(code, *args, timeout_s=timeout_s)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if not lines:
            raise AssertionError(f"child printed nothing; stderr:\n{proc.stderr[-4000:]}")
        return json.loads(lines[-1])


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def write_alsa_config(path: Path, capture_path: Path, slave: str) -> Path:
    """Write a self-contained ALSA config whose default PCM tees into `capture_path`.

    Args:
        path: Config file to write.
        capture_path: Raw capture file (truncated by each new stream; appending through a pipe
            to `cat >>` was tried and made paced tests drop periods when `cat` lagged).
        slave: "null" (unpaced, exact) or "pulse" (paced through PULSE_SERVER).
    """
    if slave == "null":
        slave_def = "pcm.autovoice_slave { type null }"
    elif slave == "pulse":
        slave_def = "pcm.autovoice_slave { type pulse }\nctl.autovoice_slave { type pulse }"
    else:
        raise ValueError(f"slave must be 'null' or 'pulse', got {slave!r}")
    path.write_text(
        f"{slave_def}\n"
        "pcm.autovoice_tee {\n"
        "  type file\n"
        '  slave.pcm "autovoice_slave"\n'
        f'  file "{capture_path}"\n'
        '  format "raw"\n'
        "}\n"
        'pcm.!default "autovoice_tee"\n'
    )
    return path


def _need(binary: str, package: str) -> str:
    exe = shutil.which(binary)
    if exe is None:
        pytest.skip(f"{binary} not installed (apt-get install {package})")
    return exe


def _wait_for(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class PulseServer:
    """A private PulseAudio daemon. `vars` holds PULSE_SERVER (and a cookie path)."""

    dir: Path
    socket: Path
    proc: subprocess.Popen
    vars: dict[str, str]
    sink: str = "testsink"

    def stop(self) -> None:
        """Terminate the daemon (simulates the device going away)."""
        stop_process(self.proc)


def start_pulse_server(d: Path, rate_hz: int = NULL_SINK_RATE_HZ) -> PulseServer:
    """Start PulseAudio with a paced null sink in directory `d` (see AUDIO_TESTING.md)."""
    _need("pulseaudio", "pulseaudio")
    proc, sock = launch_pulseaudio(d, rate_hz, "testsink")
    return PulseServer(
        d, sock, proc, {"PULSE_SERVER": f"unix:{sock}", "PULSE_COOKIE": str(d / "cookie")}
    )


def enable_suspend_on_idle(server: PulseServer, timeout_s: int = 1) -> None:
    """Load module-suspend-on-idle, as desktop PulseAudio does (PipeWire does the same): a sink
    without a running stream is suspended after `timeout_s`."""
    exe = _need("pactl", "pulseaudio-utils")
    subprocess.run(
        [exe, "load-module", "module-suspend-on-idle", f"timeout={timeout_s}"],
        env=_child_env(server.vars),
        check=True,
        capture_output=True,
        timeout=10,
    )


def sink_state(server: PulseServer) -> str:
    """The test sink's state as `pactl list sinks short` says: RUNNING, IDLE or SUSPENDED."""
    exe = _need("pactl", "pulseaudio-utils")
    out = subprocess.run(
        [exe, "list", "sinks", "short"],
        env=_child_env(server.vars),
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[1] == server.sink:
            return fields[-1]
    raise RuntimeError(f"sink {server.sink} not listed: {out!r}")


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory):
    """A private PulseAudio (paced null sink, 48 kHz) for the whole session."""
    server = start_pulse_server(tmp_path_factory.mktemp("pulse"))
    yield server
    server.stop()


def make_alsa_env(d: Path, slave: str, extra: dict[str, str] | None = None) -> AudioEnv:
    """Build an `AudioEnv` in `d` whose ALSA default tees into `d/capture.raw`."""
    capture = d / "capture.raw"
    conf = write_alsa_config(d / "asound.conf", capture, slave)
    vars_ = {"ALSA_CONFIG_PATH": str(conf), **(extra or {})}
    return AudioEnv(
        kind="pulse" if slave == "pulse" else "alsa-null",
        dir=d,
        vars=vars_,
        env=_child_env(vars_),
        capture_path=capture,
        paced=slave == "pulse",
    )


@pytest.fixture
def pulse_audio(pulse_server: PulseServer, tmp_path: Path) -> AudioEnv:
    """Paced device: ALSA default = file tee (exact float32 capture) over PulseAudio's null sink.

    A child process started with `pulse_audio.env` sees one ALSA device "default" (plus
    "autovoice_tee"); it accepts any rate and channel count, paced in real time.
    """
    d = tmp_path / "pulse_audio"
    d.mkdir()
    return make_alsa_env(d, "pulse", pulse_server.vars)


@pytest.fixture
def alsa_null_audio(tmp_path: Path) -> AudioEnv:
    """Unpaced exact device: ALSA default = file tee over a null PCM (any rate, not paced)."""
    d = tmp_path / "alsa_null_audio"
    d.mkdir()
    return make_alsa_env(d, "null")


@dataclass
class JackServer:
    """A JACK dummy-driver server. `vars` holds JACK_DEFAULT_SERVER and JACK_NO_START_SERVER."""

    name: str
    proc: subprocess.Popen
    vars: dict[str, str]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory):
    """A JACK server with the dummy driver at 48 kHz, 256-frame periods."""
    exe = _need("jackd", "jackd2")
    d = tmp_path_factory.mktemp("jack")
    name = f"autovoice{os.getpid()}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1", HOME=str(d))
    log = open(d / "jackd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            exe,
            "--no-realtime",
            "-n",
            name,
            "-d",
            "dummy",
            "-r",
            str(JACK_RATE_HZ),
            "-p",
            "256",
            "-C",
            "0",
            "-P",
            "2",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    vars_ = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    wait = shutil.which("jack_wait")
    if wait:
        subprocess.run(
            [wait, "-w", "-t", "5"], env=dict(os.environ, **vars_), capture_output=True, timeout=10
        )
    else:
        time.sleep(0.5)
    if proc.poll() is not None:
        pytest.skip(f"jackd did not start: {(d / 'jackd.log').read_text()[-500:]}")
    server = JackServer(name, proc, vars_)
    yield server
    server.stop()


@pytest.fixture
def jack_audio(jack_server: JackServer, tmp_path: Path) -> AudioEnv:
    """An `AudioEnv` for the JACK server (ALSA default is a null PCM so import cannot abort)."""
    d = tmp_path / "jack_audio"
    d.mkdir()
    env = make_alsa_env(d, "null", jack_server.vars)
    env.kind = "jack"
    env.paced = True
    env.capture_path = None
    return env
