"""The heard-latency yardstick on a real paced PulseAudio sink, with a plain PortAudio player.

The player is a separate process that never imports AutoVoice: it plays silence, then a
tone from a moment it prints (20 ms of it quiet, one 30 ms dropout), then silence from a
second printed moment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from autovoice.bench.heard import start_heard_device

pytestmark = pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="needs pulseaudio")

_PLAYER = r"""
import time, numpy as np, sounddevice as sd
state = {"on": None, "off": None}
def callback(out, frames, t, status):
    now = time.monotonic()
    on = state["on"] is not None and now >= state["on"]
    off = state["off"] is not None and now >= state["off"]
    gap = state["on"] is not None and 0.1 <= now - state["on"] < 0.13  # a 30 ms dropout
    quiet = on and now - state["on"] < 0.02  # a 20 ms lead-in below -60 dBFS
    out[:] = 1e-4 if quiet else 0.25 if on and not off and not gap else 0.0
with sd.OutputStream(samplerate=22050, channels=2, dtype="float32", latency="low",
                     blocksize=220, callback=callback):
    time.sleep(0.4)
    state["on"] = time.monotonic(); print("on", state["on"], flush=True)
    time.sleep(0.3)
    state["off"] = time.monotonic(); print("off", state["off"], flush=True)
    time.sleep(0.4)
"""


def test_capture_times_onset_and_silence_of_a_plain_player() -> None:
    with start_heard_device() as dev:
        result = subprocess.run(
            [sys.executable, "-c", _PLAYER],
            env={**os.environ, **dev.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        marks = dict(line.split() for line in result.stdout.splitlines())
        on, off = float(marks["on"]), float(marks["off"])
        found = dev.capture.onset_after(on, timeout_s=2)
        assert found is not None
        onset = found.at_s
        assert on + 0.02 < onset < on + 0.2  # lead-in, callback and buffer, not later
        assert dev.capture.first_audible_after(on, timeout_s=0) == onset
        assert 0.015 <= found.lead_in_s(22050, 2) <= 0.035
        assert dev.capture.first_audible_after(onset + 0.5, timeout_s=0.2) is None
        tail = dev.capture.last_audible_between(off, off + 1.0)
        assert tail is not None and off < tail < off + 0.2
        # the one 30 ms dropout (whole 10 ms blocks of zeros, stereo) and nothing else
        gaps = dev.capture.dropouts(onset, tail)
        assert len(gaps) == 1 and 2 * 220 * 2 <= gaps[0] <= 2 * 220 * 5, gaps
        reads = dev.capture.reads()
        assert sum(r.count for r in reads) > 22050 * 2 * 0.9  # ~1.1 s of stereo arrived
