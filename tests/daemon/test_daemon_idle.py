"""A silent daemon sleeps: the real daemon on a PulseAudio null sink that suspends when idle.

After `audio.idle_stop_s` with nothing to play the output stream stops (status says so), the
callbacks stop, the sink suspends, and no thread of the daemon wakes up. The next request starts
the stream again, and what reaches the device equals the offline synthesis of its text from the
first sample on (the daemon runs without synthesis noise, so this process can make the same
audio), so no syllable is lost to a device that is waking up.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from autovoice.bench.procstat import thread_switches
from autovoice.config import AudioConfig
from autovoice.daemon.testing import DaemonProcess
from tests.audio_fixtures import (
    REPO_ROOT,
    enable_suspend_on_idle,
    make_alsa_env,
    sink_state,
    start_pulse_server,
)
from tests.conftest import EXACT
from tests.daemon.conftest import DeviceDaemon, wait_until, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

IDLE_STOP_S = 0.5
TEXT = "Back from silence, every syllable intact."


@pytest.fixture(scope="module")
def idle_daemon(tmp_path_factory):
    """A daemon (no synthesis noise, idle after 0.5 s) on a private sink that suspends."""
    d = tmp_path_factory.mktemp("idle")
    server = start_pulse_server(d / "pulse")
    try:
        enable_suspend_on_idle(server, timeout_s=1)
        (d / "audio").mkdir()
        audio = make_alsa_env(d / "audio", "pulse", server.vars)
        config = write_config(
            d / "config.yaml",
            synthesis={"noise_scale": 0.0, "noise_w": 0.0},
            audio={"idle_stop_s": IDLE_STOP_S},
        )
        proc = DaemonProcess(
            d / "autovoice.sock", ["--config", str(config)], env=audio.env, cwd=REPO_ROOT
        )
        proc.start(timeout_s=180)
        daemon = DeviceDaemon(proc, audio)
        daemon.pulse = server
        yield daemon
        assert proc.stop() == 0, proc.log
    finally:
        server.stop()


HEAD_S = 0.5
"""The start of the utterance, compared exactly whatever happens later."""
PERIOD = round(AudioConfig().block_s * 22050)
"""Frames per callback block (`audio.block_s` at 22050 Hz): what an ALSA xrun drops at once."""


def alsa_xruns(daemon: DeviceDaemon) -> int:
    """ALSA underruns (xrun recoveries) the daemon's stderr reported so far."""
    return sum("underrun occurred" in line for line in daemon.proc.lines)


def assert_matches_with_dropped_periods(got: np.ndarray, want: np.ndarray) -> None:
    """`got` equals `want` but for whole periods missing (at most 3 in a row, 4 in all)."""
    i = j = drops = 0
    while j < len(want):
        n = min(len(got) - i, len(want) - j)
        assert n > 0, f"{len(want) - j} samples missing at the end"
        bad = np.flatnonzero(np.abs(got[i : i + n] - want[j : j + n]) > 1e-5)
        if not len(bad):
            i, j = i + n, j + n
            continue
        i, j = i + int(bad[0]), j + int(bad[0])
        for k in (1, 2, 3):
            w = want[j + k * PERIOD : j + k * PERIOD + 64]
            if len(w) and np.allclose(got[i : i + len(w)], w, atol=1e-5):
                j += k * PERIOD
                drops += k
                break
        else:
            raise AssertionError(f"sample {i} of what was heard is not the offline audio")
    assert drops <= 4, f"{drops} periods dropped"


def audio_status(daemon: DeviceDaemon) -> dict:
    with daemon.connect() as conn:
        return conn.request({"cmd": "status", "id": "s"})["status"]["audio"]


def test_idle_daemon_sleeps_and_speaks_whole_after(idle_daemon: DeviceDaemon, onnx_synth):
    d = idle_daemon
    wait_until(lambda: audio_status(d)["output"] == "idle", 10, "the output to go idle")
    wait_until(lambda: sink_state(d.pulse) == "SUSPENDED", 10, "the sink to suspend")
    before = audio_status(d)
    time.sleep(0.3)  # the loop is done with that connection
    switches = thread_switches(d.proc.proc.pid)
    time.sleep(1.0)
    woken = {
        t: n - switches.get(t, 0)
        for t, n in thread_switches(d.proc.proc.pid).items()
        if n != switches.get(t, 0)
    }
    after = audio_status(d)
    assert woken == {}, f"threads of the idle daemon (pid {d.proc.proc.pid}) woke up"
    assert after["callbacks"] == before["callbacks"] and after["state"] == "idle"
    assert before["idle_stops"] >= 1

    with d.connect() as conn:
        conn.send({"cmd": "speak", "text": TEXT, "id": "back"})
        conn.expect_types("back", ["queued", "started", "first_audio", "done"], timeout_s=30)
    # the daemon drops the quiet lead-in of an utterance's start (engines/lead_in.py)
    offline = np.concatenate([c.samples for c in onnx_synth.speak(TEXT, EXACT, trim_lead_in=True)])
    assert d.rate_hz == onnx_synth.sample_rate  # no resampling: the device gets the samples

    def heard() -> np.ndarray:
        # The stream was closed while idle, so its reopening started a new capture file: it
        # holds this utterance only. Exact zeros dropped: the silence before the onset, and any
        # the callback inserted if the machine was too loaded to keep up (an underrun delays
        # the rest, it does not lose it). The voice's output holds no exact zeros.
        x = d.capture()
        return x[x != 0]

    assert np.count_nonzero(offline) == len(offline)
    xruns_before = alsa_xruns(d)
    head = int(HEAD_S * d.rate_hz)  # where a device that is waking up would cut
    wait_until(lambda: len(heard()) >= head, 10, "the start of the utterance at the device")
    np.testing.assert_allclose(heard()[:head], offline[:head], rtol=0, atol=1e-5)
    # The rest: exact too, unless ALSA dropped a period in an xrun of its own (the machine
    # was too loaded to feed the sound server in time; the daemon's stderr says so). Then
    # every sample that arrived must still be the offline one, with whole periods skipped.
    wait_until(lambda: len(heard()) >= len(offline) - 4 * PERIOD, 10, "the rest at the device")
    time.sleep(0.3)
    if alsa_xruns(d) == xruns_before:
        got = heard()
        assert len(got) >= len(offline), f"{len(offline) - len(got)} samples missing"
        np.testing.assert_allclose(got[: len(offline)], offline, rtol=0, atol=1e-5)
    else:
        assert_matches_with_dropped_periods(heard(), offline)
    wait_until(lambda: audio_status(d)["output"] == "idle", 10, "the output to go idle again")
    final = audio_status(d)
    assert final["idle_stops"] == before["idle_stops"] + 1
