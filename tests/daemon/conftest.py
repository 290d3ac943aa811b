"""Fixtures for the daemon tests: a real `autovoice serve` on the virtual PulseAudio device."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from autovoice.daemon.testing import DaemonProcess, RawConnection
from tests.audio_fixtures import REPO_ROOT, AudioEnv, make_alsa_env

LOUD = 1e-3
"""A captured frame above this magnitude is speech."""


class DeviceDaemon:
    """A running daemon, its virtual device, and helpers to read what reached the device."""

    def __init__(self, proc: DaemonProcess, audio: AudioEnv) -> None:
        self.proc = proc
        self.audio = audio
        self.socket = proc.socket_path
        with self.connect() as conn:
            status = conn.request({"cmd": "status", "id": "s"})["status"]
        self.rate_hz = int(status["audio"]["device_rate_hz"])
        self.channels = int(status["audio"]["channels"])

    def connect(self, timeout_s: float = 5.0) -> RawConnection:
        return RawConnection.connect(self.socket, timeout_s)

    def capture(self) -> np.ndarray:
        """Mono view of everything the device received so far."""
        return self.audio.read_capture(self.channels)[:, 0]

    def captured_frames(self) -> int:
        path = self.audio.capture_path
        return path.stat().st_size // (4 * self.channels) if path.exists() else 0

    def cli(self, *args: str, timeout_s: float = 60.0, stdin: str | None = None):
        """Run `python -m autovoice ARGS --socket SOCKET` and return the CompletedProcess."""
        return subprocess.run(
            [sys.executable, "-m", "autovoice", *args, "--socket", str(self.socket)],
            env=self.audio.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            input=stdin,
        )


def write_config(path: Path, **sections: dict) -> Path:
    """A YAML config with the given sections (engine onnx: fast start, no torch import; the
    audio stream kept open unless `audio` says otherwise)."""
    import yaml

    audio = {"idle_stop_s": 0, **sections.pop("audio", {})}  # the capture is read by position
    data = {"engine": "onnx", **sections, "audio": audio}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def module_audio(pulse_server, tmp_path_factory) -> AudioEnv:
    """A paced virtual device (PulseAudio null sink with an exact ALSA file tee) per module."""
    return make_alsa_env(tmp_path_factory.mktemp("daemon_audio"), "pulse", pulse_server.vars)


@contextmanager
def running_device_daemon(audio: AudioEnv, d: Path, **sections: dict) -> Iterator[DeviceDaemon]:
    """A daemon in directory `d` on `audio`, configured with `sections`; it must exit 0 after."""
    config = write_config(d / "config.yaml", **sections)
    proc = DaemonProcess(
        d / "autovoice.sock", ["--config", str(config)], env=audio.env, cwd=REPO_ROOT
    )
    proc.start(timeout_s=180)
    yield DeviceDaemon(proc, audio)
    code = proc.stop()
    assert code == 0, proc.log


@contextmanager
def running_ssip_daemon(audio: AudioEnv, d: Path, config: Path) -> Iterator[DaemonProcess]:
    """A daemon in directory `d` with `config`, also serving SSIP on `proc.ssip_path`."""
    proc = DaemonProcess(
        d / "autovoice.sock",
        ["--config", str(config), "--ssip", str(d / "ssip.sock")],
        env=audio.env,
        cwd=REPO_ROOT,
    )
    proc.start(timeout_s=180)
    proc.ssip_path = d / "ssip.sock"
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def device_daemon(module_audio: AudioEnv, tmp_path_factory) -> DeviceDaemon:
    """One daemon per module, on the virtual device, with a 64 KiB text limit."""
    d = tmp_path_factory.mktemp("daemon")
    with running_device_daemon(module_audio, d, daemon={"max_text_bytes": 65536}) as daemon:
        yield daemon


def wait_until(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def start_activator(argv: list[str], env: dict[str, str]):
    """Start `systemd-socket-activate ARGV` (the daemon's stderr is its stderr).

    Returns (process, log, reader): a named thread `reader` collects its stderr lines in `log`.
    """
    activator = subprocess.Popen(
        ["systemd-socket-activate", *argv],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    reader = threading.Thread(
        target=lambda: log.extend(activator.stderr), name="activator-log", daemon=True
    )
    reader.start()
    return activator, log, reader


def loud_runs(x: np.ndarray) -> tuple[int, int] | None:
    """(first, last) index of loud frames, or None."""
    idx = np.flatnonzero(np.abs(x) > LOUD)
    return (int(idx[0]), int(idx[-1])) if len(idx) else None


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
