"""AudioOutput on real PortAudio with virtual devices (never a mocked stream).

Each test runs the stream in a child process (tests/audio/play_helper.py) whose environment
points ALSA at a temporary config (see tests/audio_fixtures.py), then reads back what reached
the device.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from tests.audio.play_helper import CHILD
from tests.audio_fixtures import (
    REPO_ROOT,
    AudioEnv,
    enable_suspend_on_idle,
    make_alsa_env,
    start_pulse_server,
)

RATE = 22050
FADE_S = 0.004  # autovoice.audio_io.output.DEFAULT_FADE_S


def _signal(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Band-limited-ish test signal: two sines plus a little noise, first sample nonzero."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t + 0.5) + 0.2 * np.sin(2 * np.pi * 1234 * t + 0.1)
    x += 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def _save(tmp_path: Path, x: np.ndarray, name: str = "in.npy") -> str:
    p = tmp_path / name
    np.save(p, x)
    return str(p)


def _played(env: AudioEnv, channels: int = 2) -> np.ndarray:
    """The captured channel 0 from the first nonzero frame; checks all channels are equal."""
    cap = env.read_capture(channels)
    for c in range(1, channels):
        np.testing.assert_array_equal(cap[:, c], cap[:, 0])
    mono = cap[:, 0]
    nz = np.flatnonzero(mono)
    assert len(nz), "nothing reached the device"
    return mono[nz[0] :]


def _soxr_reference(x: np.ndarray, chunk: int, in_rate: int, out_rate: int) -> np.ndarray:
    rs = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
    parts = [rs.resample_chunk(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(parts).astype(np.float32)


def _events(result: dict, kind: str) -> list[dict]:
    return [e for e in result["events"] if e["type"] == kind]


def test_samples_reach_device_exactly(alsa_null_audio: AudioEnv, tmp_path: Path) -> None:
    """Same rate: the device gets the written samples bit for bit, on every channel."""
    x = _signal(1.0)
    args = {"input": _save(tmp_path, x), "chunk": 777, "idle_before_s": 0.0, "tail_s": 0.0}
    args["prefill"] = True
    res = alsa_null_audio.run_json(CHILD, "play", json.dumps(args))
    assert res["played"] and res["written"] == len(x)
    st = res["stats"]
    assert st["device_rate_hz"] == RATE and st["channels"] == 2
    assert st["frames_written"] == len(x) == st["frames_read"]
    got = _played(alsa_null_audio)
    assert len(got) >= len(x)
    np.testing.assert_array_equal(got[: len(x)], x)
    assert not got[len(x) :].any(), "only silence after the utterance"


def test_resampled_samples_equal_soxr(alsa_null_audio: AudioEnv, tmp_path: Path) -> None:
    """22050 Hz input on a 48000 Hz stream: the device gets soxr's streaming output exactly."""
    x = _signal(1.0, seed=1)
    chunk = 1000
    args = {
        "input": _save(tmp_path, x),
        "chunk": chunk,
        "device_rate_hz": 48000,
        "idle_before_s": 0.0,
        "tail_s": 0.0,
        "prefill": True,
    }
    res = alsa_null_audio.run_json(CHILD, "play", json.dumps(args))
    assert res["stats"]["device_rate_hz"] == 48000
    ref = _soxr_reference(x, chunk, RATE, 48000)
    ref = ref[np.flatnonzero(ref)[0] :]
    got = _played(alsa_null_audio)
    np.testing.assert_array_equal(got[: len(ref)], ref)
    assert abs(len(ref) - len(x) * 48000 / RATE) < 5


def test_first_audio_timestamps(pulse_audio: AudioEnv, tmp_path: Path) -> None:
    """0.3 s of silence then 0.2 s of sound: FirstAudio marks the first sound, on time."""
    lead_s, sound_s = 0.3, 0.2
    x = np.concatenate([np.zeros(int(lead_s * RATE), np.float32), _signal(sound_s)])
    args = {"input": _save(tmp_path, x), "chunk": 4410, "tail_s": 0.2}
    res = pulse_audio.run_json(CHILD, "play", json.dumps(args))
    st = res["stats"]
    assert st["state"] == "ok" and st["underruns"] == 0
    (first,) = _events(res, "FirstAudio")
    (played,) = _events(res, "UtterancePlayed")
    assert first["utterance_id"] == 7 and not played["aborted"]
    assert first["thread"] == played["thread"] == "autovoice-audio-events"
    block_s = st["blocksize_frames"] / st["device_rate_hz"]
    # The ring was empty when writing began: the first sound leaves it lead_s later.
    assert abs(first["monotonic_s"] - (res["t_write"] + lead_s)) < 2 * block_s + 0.03
    assert abs(played["monotonic_s"] - first["monotonic_s"] - sound_s) < 2 * block_s + 0.03
    assert 0 < first["output_latency_s"] < 0.25
    assert first["dac_monotonic_s"] == pytest.approx(
        first["monotonic_s"] + first["output_latency_s"]
    )
    assert first["dac_time_s"] > 0
    print(
        f"first audio: {(first['monotonic_s'] - res['t_write'] - lead_s) * 1e3:+.1f} ms vs ideal, "
        f"output latency {first['output_latency_s'] * 1e3:.1f} ms"
    )
    assert res["t_played"] >= played["monotonic_s"]
    # What reached the device: silence, then exactly the sound.
    got = _played(pulse_audio)
    sound = x[int(lead_s * RATE) :]
    np.testing.assert_array_equal(got[: len(sound)], sound)


def test_abort_fades_to_silence_within_one_block(pulse_audio: AudioEnv) -> None:
    rate = 48000
    args = {"input_rate_hz": rate, "tone_s": 3.0, "abort_after_s": 0.5}
    res = pulse_audio.run_json(CHILD, "abort", json.dumps(args))
    st = res["stats"]
    assert res["writer_returned"] and res["finished"]
    (played,) = _events(res, "UtterancePlayed")
    assert played["aborted"]
    got = _played(pulse_audio)
    nz = np.flatnonzero(got)
    tone_frames = nz[-1] + 1
    fade_frames = round(rate * FADE_S)
    after_abort = tone_frames - res["read_before_abort"]
    assert 0 < after_abort <= st["blocksize_frames"] + fade_frames
    assert not got[tone_frames:].any(), "silence after the fade"
    assert len(got) - tone_frames > 0.1 * rate
    # No click: no step larger than the 440 Hz tone's own steepest step (0.5 * 2*pi*440/rate).
    assert np.abs(np.diff(got[: tone_frames + 10])).max() < 0.5 * 2 * np.pi * 440 / rate * 1.05
    assert res["abort_to_jump_s"] < 3 * st["blocksize_frames"] / rate + 0.02
    print(
        f"abort: {after_abort} frames ({after_abort / rate * 1e3:.1f} ms) played after abort(), "
        f"reader jumped {res['abort_to_jump_s'] * 1e3:.1f} ms after it, "
        f"block {st['blocksize_frames']} frames"
    )


def test_pause_holds_and_resume_continues(pulse_audio: AudioEnv, tmp_path: Path) -> None:
    x = (0.4 * np.sin(2 * np.pi * 330 * np.arange(int(1.0 * RATE)) / RATE + 0.3)).astype(np.float32)
    args = {"input": _save(tmp_path, x), "pause_after_s": 0.3, "pause_s": 0.3}
    res = pulse_audio.run_json(CHILD, "pause", json.dumps(args))
    assert res["played"] and res["read_while_paused"] == 0
    assert res["stats"]["underruns"] == 0
    got = _played(pulse_audio)
    nz = np.flatnonzero(got)
    gaps = np.flatnonzero(np.diff(nz) > int(0.2 * RATE))
    assert len(gaps) == 1, "exactly one pause gap"
    nf = round(RATE * FADE_S)
    ramp = np.linspace(1.0, 0.0, nf + 1, dtype=np.float32)[1:]  # ends at 0: trimmed as silence
    a = got[: nz[gaps[0]] + 1]
    b_start = nz[gaps[0] + 1] - 1  # the fade-in starts with its 0 gain frame
    b = got[b_start : nz[-1] + 1]
    p = len(a) - (nf - 1)  # frames fully played before the pause
    np.testing.assert_array_equal(a[:p], x[:p])
    np.testing.assert_allclose(a[p:], (x[p : p + nf] * ramp)[:-1], atol=1e-7)
    np.testing.assert_allclose(b[:nf], x[p : p + nf] * ramp[::-1], atol=1e-7)
    np.testing.assert_array_equal(b[nf:], x[p + nf :])
    assert np.abs(np.diff(got[: b_start + len(b)])).max() < 0.4 * 2 * np.pi * 330 / RATE * 1.05


@pytest.mark.slow
def test_no_underrun_during_30_s_utterance(pulse_audio: AudioEnv, tmp_path: Path) -> None:
    """30 s of 22050 Hz audio, resampled to a 48000 Hz stream on a paced device."""
    x = _signal(30.0, seed=3)
    chunk = 2048
    args = {
        "input": _save(tmp_path, x),
        "chunk": chunk,
        "device_rate_hz": 48000,
        "latency": "low",
        "timeout_s": 20.0,
    }
    res = pulse_audio.run_json(CHILD, "play", json.dumps(args), timeout_s=90)
    st = res["stats"]
    assert res["played"]
    assert st["underruns"] == 0
    assert st["state"] == "ok"
    # Played in real time (paced), and ended within a few blocks of 30 s after the first audio.
    (first,) = _events(res, "FirstAudio")
    (played,) = _events(res, "UtterancePlayed")
    assert played["monotonic_s"] - first["monotonic_s"] == pytest.approx(30.0, abs=0.25)
    ref = _soxr_reference(x, chunk, RATE, 48000)
    ref = ref[np.flatnonzero(ref)[0] :]
    got = _played(pulse_audio)
    np.testing.assert_array_equal(got[: len(ref)], ref)
    print(
        f"30 s: underruns={st['underruns']} pa_underflows={st['portaudio_underflows']} "
        f"high_water={st['high_water_frames']} latency={st['output_latency_s'] * 1e3:.1f} ms"
    )


def test_list_and_select_devices(pulse_audio: AudioEnv) -> None:
    args = {"open": ["tee", 1, "AUTOVOICE_TEE", "no-such-device", 99]}
    res = pulse_audio.run_json(CHILD, "devices", json.dumps(args))
    names = {d["name"]: d for d in res["devices"]}
    assert names["default"]["is_default"] and names["default"]["host_api"] == "ALSA"
    tee_index = names["autovoice_tee"]["index"]
    assert sum(d["is_default"] for d in res["devices"]) == 1
    opened = res["opened"]
    assert opened["tee"]["device_name"] == "autovoice_tee"
    assert opened["AUTOVOICE_TEE"]["device_name"] == "autovoice_tee"
    assert (
        "error" in opened["no-such-device"]
        and "no-such-device" in opened["no-such-device"]["error"]
    )
    assert "error" in opened["99"]
    if tee_index == 1:
        assert opened["1"]["device_name"] == "autovoice_tee"


def test_22050_voice_on_48000_only_device(jack_audio: AudioEnv, tmp_path: Path) -> None:
    """JACK at 48 kHz refuses 22050 Hz: the output opens at 48000 and resamples (soxr)."""
    if shutil.which("jack_rec") is None:
        pytest.skip("jack_rec (jackd2) missing")
    x = _signal(0.5, seed=4)
    rec = tmp_path / "rec.wav"
    args = {
        "input": _save(tmp_path, x),
        "chunk": 1000,
        "device": "system",
        "jack_rec": str(rec),
        "jack_rec_s": 1.5,
    }
    res = jack_audio.run_json(CHILD, "play", json.dumps(args))
    st = res["stats"]
    assert st["device_rate_hz"] == 48000 and st["input_rate_hz"] == RATE
    assert st["device_name"] == "system" and st["underruns"] == 0 and res["played"]
    with wave.open(str(rec), "rb") as w:
        assert w.getframerate() == 48000
        got = np.frombuffer(w.readframes(w.getnframes()), "<i4").astype(np.float64) / 2**31
    ref = _soxr_reference(x, 1000, RATE, 48000)
    ref = ref[np.flatnonzero(np.abs(ref) > 1e-6)[0] :]
    start = np.flatnonzero(np.abs(got) > 1e-6)[0]
    assert np.abs(got[start : start + len(ref)] - ref).max() < 1e-6


def test_device_loss_reconnects(tmp_path: Path) -> None:
    """PulseAudio dies and comes back: the output reports "reconnecting", then "ok" again."""
    server = start_pulse_server(tmp_path / "pulse")
    (tmp_path / "a").mkdir()
    env = make_alsa_env(tmp_path / "a", "pulse", server.vars)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "reconnect", json.dumps({"run_s": 5.0})],
        env=env.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "READY"
        time.sleep(1.0)
        server.stop()
        time.sleep(1.5)
        server = start_pulse_server(tmp_path / "pulse")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        server.stop()
    res = json.loads(out.strip().splitlines()[-1])
    states = res["states"]
    assert "reconnecting" in states, err
    assert states[-1] == "ok" and states[0] == "ok"
    assert res["stats"]["reconnects"] >= 1
    # Utterances kept finishing while the device was away (audio discarded in real time).
    assert res["utterances"] > 20
    assert "reconnecting" in err


def test_stream_sleeps_when_idle_and_plays_whole_after(tmp_path: Path):
    """After `idle_stop_s` with nothing to play the stream stops: no callbacks, the sink
    suspends, no thread of the process wakes up; an abort then is carried out without starting
    the stream; the next utterance starts it again and reaches the device whole."""
    server = start_pulse_server(tmp_path / "pulse")
    try:
        enable_suspend_on_idle(server, timeout_s=1)
        (tmp_path / "a").mkdir()
        env = make_alsa_env(tmp_path / "a", "pulse", server.vars)
        x = _signal(0.5, seed=5)
        args = {"input": _save(tmp_path, x), "idle_stop_s": 0.4, "settle_s": 1.5, "quiet_s": 1.0}
        proc = env.run_python(CHILD, "idle", json.dumps(args), check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        res = json.loads(proc.stdout.splitlines()[-1])
        assert res["state_after_1"] == "ok" and res["state_after_2"] == "ok"
        for uid in (1, 2):  # idle 0.4 s after the end was handed over, not before
            assert 0.4 <= res[f"idle_after_{uid}_s"] < 3.0 and res[f"state_idle_{uid}"] == "idle"
        assert res["idle_callbacks"] == 0
        assert res["idle_sinks"].split()[-1] == "SUSPENDED", res["idle_sinks"]
        assert res["idle_switches"] == {}, "threads woke up while idle"
        assert res["abort_silenced_s"] is not None and res["state_after_abort"] == "idle"
        st = res["stats"]
        assert st["idle_stops"] == 2 and st["underruns"] == 0 and st["reconnects"] == 0
        played = [e for e in res["events"] if e["type"] == "UtterancePlayed"]
        assert [(e["utterance_id"], e["aborted"]) for e in played] == [(1, False), (2, False)]
        # The reopened stream started a new capture file: it holds the second utterance, equal
        # to x from its first frame, and nothing after it.
        got = _played(env)
        np.testing.assert_array_equal(got[: len(x)], x)
        assert not np.any(got[len(x) :]), "one utterance in the new stream's capture"
    finally:
        server.stop()


def test_device_lost_while_idle_is_reopened_for_the_next_utterance(tmp_path: Path) -> None:
    """The sound server restarts while the stream is idle: the next utterance reopens the
    device and reaches it whole."""
    server = start_pulse_server(tmp_path / "pulse")
    (tmp_path / "a").mkdir()
    env = make_alsa_env(tmp_path / "a", "pulse", server.vars)
    x = _signal(0.5, seed=7)
    args = {"input": _save(tmp_path, x), "idle_stop_s": 0.3}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "idle_device_loss", json.dumps(args)],
        env=env.env,
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "IDLE"
        server.stop()
        server = start_pulse_server(tmp_path / "pulse")
        out, err = child.communicate("go\n", timeout=60)
    finally:
        child.kill()
        server.stop()
    assert child.returncode == 0, err[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    st = res["stats"]
    # The idle stream was closed: the next utterance opens a new one on the new server.
    assert res["played"] and st["state"] == "ok" and st["idle_stops"] == 1, err[-3000:]
    first = [e for e in res["events"] if e["type"] == "FirstAudio"]
    assert len(first) == 1 and np.isfinite(first[0]["dac_time_s"])  # heard, not discarded
    # Nothing played before the loss: the first sound in the capture is the utterance, exact.
    np.testing.assert_array_equal(_played(env)[: len(x)], x)
