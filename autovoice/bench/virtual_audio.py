"""A private, paced virtual sound card (PulseAudio null sink) for machines without one.

Used by `autovoice bench --virtual-device` (and automatically when PortAudio finds no output
device), so latency is measured through real PortAudio on any machine.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autovoice.errors import AudioDeviceError

__all__ = ["VirtualDevice", "launch_pulseaudio", "start_virtual_device", "stop_process"]


def stop_process(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM a helper process and wait; SIGKILL it if it has not gone after `timeout_s`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


@dataclass
class VirtualDevice:
    """A running PulseAudio with a null sink; `env` points ALSA's default PCM at it."""

    dir: Path
    proc: subprocess.Popen
    env: dict[str, str]

    def stop(self) -> None:
        """Stop PulseAudio and remove its directory."""
        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def launch_pulseaudio(
    directory: Path, rate_hz: int, sink_name: str, timeout_s: float = 10.0
) -> tuple[subprocess.Popen, Path]:
    """Start a private PulseAudio in `directory` with a paced float32 mono null sink.

    Returns:
        The process and its native-protocol socket (clients set PULSE_SERVER=unix:SOCKET).

    Raises:
        AudioDeviceError: pulseaudio is not installed or did not start in time.
    """
    exe = shutil.which("pulseaudio")
    if exe is None:
        raise AudioDeviceError(
            "virtual", "pulseaudio is not installed (apt-get install pulseaudio)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "native"
    child_env = dict(os.environ, HOME=str(directory), XDG_RUNTIME_DIR=str(directory))
    log = open(directory / "pulse.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        [
            exe,
            "--daemonize=no",
            "-n",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disable-shm=yes",
            "--enable-memfd=no",
            "--realtime=no",
            "--high-priority=no",
            "--log-target=stderr",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket_path}",
            f"--load=module-null-sink sink_name={sink_name} norewinds=1 "
            f"rate={rate_hz} channels=1 format=float32le",
        ],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while not socket_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            problem = (directory / "pulse.log").read_text(errors="replace")[-300:]
            raise AudioDeviceError("virtual", f"pulseaudio did not start: {problem}")
        time.sleep(0.02)
    return proc, socket_path


def start_virtual_device(rate_hz: int = 48000) -> VirtualDevice:
    """Start PulseAudio (no hardware) with a paced null sink at `rate_hz`; ALSA's default -> it.

    Raises:
        AudioDeviceError: pulseaudio is not installed or did not start.
    """
    directory = Path(tempfile.mkdtemp(prefix="autovoice-vdev-"))
    (directory / "asound.conf").write_text(
        "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
    )
    proc, socket_path = launch_pulseaudio(directory, rate_hz, "autovoice_null")
    env = {
        "PULSE_SERVER": f"unix:{socket_path}",
        "PULSE_COOKIE": str(directory / "cookie"),
        "ALSA_CONFIG_PATH": str(directory / "asound.conf"),
    }
    return VirtualDevice(directory, proc, env)
