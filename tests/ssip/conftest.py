"""Fixtures for the SSIP tests: the real daemon with `--ssip` on the virtual PulseAudio device,
Debian's real `spd-say` pointed at it, a raw SSIP client, and a native subscriber that sees
every utterance's events (SSIP messages included)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from autovoice.daemon.ssip.testing import SsipConnection
from autovoice.daemon.testing import DaemonProcess, RawConnection
from tests.audio_fixtures import REPO_ROOT, AudioEnv, make_alsa_env

LOUD = 1e-3
"""A captured sample above this magnitude is speech."""
MAX_TEXT_BYTES = 8192
"""The test daemon's text limit (small, so the too-long case is cheap)."""


class SsipDaemon:
    """A running daemon with an SSIP socket, its virtual device, and helpers."""

    def __init__(self, proc: DaemonProcess, audio: AudioEnv, ssip_path: Path) -> None:
        self.proc = proc
        self.audio = audio
        self.ssip_path = ssip_path
        self.socket = proc.socket_path
        with RawConnection.connect(self.socket) as conn:
            status = conn.request({"cmd": "status", "id": "s"})["status"]
        self.rate_hz = int(status["audio"]["device_rate_hz"])
        self.channels = int(status["audio"]["channels"])
        self.env = dict(
            audio.env, LANG="C.UTF-8", LC_ALL="C.UTF-8", SPEECHD_ADDRESS=f"unix_socket:{ssip_path}"
        )

    def connect(self, timeout_s: float = 5.0) -> SsipConnection:
        """A raw SSIP connection."""
        return SsipConnection.connect(self.ssip_path, timeout_s)

    def subscribe(self) -> RawConnection:
        """A native connection that receives every utterance's events."""
        conn = RawConnection.connect(self.socket)
        assert conn.request({"cmd": "subscribe", "id": "sub"})["event"] == "ok"
        return conn

    def spd_say(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        """Run Debian's `spd-say ARGS` against this daemon (always under a timeout)."""
        return subprocess.run(
            ["timeout", str(timeout_s), "spd-say", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
        )

    def spd_say_bg(self, *args: str, timeout_s: float = 30.0) -> subprocess.Popen:
        """Start `spd-say ARGS` without waiting for it."""
        return subprocess.Popen(
            ["timeout", str(timeout_s), "spd-say", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def captured_frames(self) -> int:
        path = self.audio.capture_path
        return path.stat().st_size // (4 * self.channels) if path and path.exists() else 0

    def capture(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Mono samples that reached the device, frames [start, end)."""
        return self.audio.read_capture(self.channels)[start:end, 0]


def final_of(sub: RawConnection, utterance: int, timeout_s: float = 30.0) -> dict:
    """The final event (done/cancelled/error) of `utterance` seen by a subscriber."""
    return sub.next(
        lambda e: e.get("utterance") == utterance and e["event"] in ("done", "cancelled", "error"),
        timeout_s,
    )


def next_queued(sub: RawConnection, timeout_s: float = 10.0) -> dict:
    """The next `queued` event a subscriber sees."""
    return sub.next(lambda e: e["event"] == "queued", timeout_s)


def loud_s(x: np.ndarray, rate_hz: int) -> float:
    """Seconds of samples above `LOUD`."""
    return float(np.count_nonzero(np.abs(x) > LOUD)) / rate_hz


@pytest.fixture(scope="module")
def ssip_daemon(pulse_server, tmp_path_factory) -> SsipDaemon:
    """One daemon per module on a paced virtual device, listening for SSIP."""
    if shutil.which("spd-say") is None:
        pytest.skip("spd-say not installed (apt-get install speech-dispatcher)")
    config = {"engine": "onnx", "daemon": {"max_text_bytes": MAX_TEXT_BYTES}}
    daemon = start_ssip_daemon(tmp_path_factory.mktemp("ssip"), pulse_server, config)
    yield daemon
    code = daemon.proc.stop()
    assert code == 0, daemon.proc.log
    assert not daemon.ssip_path.exists(), "the SSIP socket was left behind"


def start_ssip_daemon(d: Path, pulse_server, config: dict) -> SsipDaemon:
    """Start a daemon with `config` and `--ssip` on a virtual device, in directory `d`."""
    import yaml

    (d / "audio").mkdir()
    audio = make_alsa_env(d / "audio", "pulse", pulse_server.vars)
    config_path = d / "config.yaml"
    # The stream stays open (a reopen after idle would truncate the capture read by position).
    config = {**config, "audio": {"idle_stop_s": 0, **config.get("audio", {})}}
    config_path.write_text(yaml.safe_dump(config))
    ssip_path = d / "speech-dispatcher" / "speechd.sock"
    proc = DaemonProcess(
        d / "autovoice.sock",
        ["--config", str(config_path), "--ssip", str(ssip_path)],
        env=audio.env,
        cwd=REPO_ROOT,
    )
    proc.start(timeout_s=180)
    return SsipDaemon(proc, audio, ssip_path)


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
