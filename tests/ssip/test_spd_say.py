"""Debian's real `spd-say` against the real daemon (`serve --ssip`) on the virtual audio device.

Each test drives `spd-say` with SPEECHD_ADDRESS pointing at the test socket, follows the
utterance through a native subscriber, and checks what reached the device.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.ssip.conftest import LOUD, SsipDaemon, final_of, loud_s, next_queued

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LONG = (
    "This is a long text for the interruption tests. It keeps going for several seconds, "
    "clause after clause, so that there is plenty of time to cancel it or to interrupt it "
    "with something more important, long before it could come to its natural end."
)
FOX = "The quick brown fox jumps over the lazy dog."


def _rms(x: np.ndarray) -> float:
    loud = x[np.abs(x) > LOUD]
    return float(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) if len(loud) else 0.0


def _say_and_capture(d: SsipDaemon, sub, *args: str) -> tuple[dict, np.ndarray]:
    """Run `spd-say ARGS`, wait for its utterance's end; return (final event, device audio)."""
    before = d.captured_frames()
    proc = d.spd_say(*args)
    assert proc.returncode == 0, proc.stderr
    queued = next_queued(sub)
    final = final_of(sub, queued["utterance"])
    time.sleep(0.25)
    return final, d.capture(before)


def test_spd_say_speaks_and_returns_at_once(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        before = d.captured_frames()
        started = time.monotonic()
        proc = d.spd_say("Hello from spd say.")
        took_s = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        queued = next_queued(sub)
        assert queued["priority"] == "text"  # spd-say's default priority
        done = final_of(sub, queued["utterance"])
    assert done["event"] == "done", done
    assert took_s < done["audio_s"], "spd-say without -w must not wait for the speech"
    time.sleep(0.25)
    assert loud_s(d.capture(before), d.rate_hz) > 0.4 * done["audio_s"]


def test_wait_returns_after_the_end_event(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        before = d.captured_frames()
        started = time.monotonic()
        proc = d.spd_say("-w", "Waiting for the end of this sentence.")
        took_s = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        queued = next_queued(sub)
        done = final_of(sub, queued["utterance"], timeout_s=0.5)  # already there at exit
    assert done["event"] == "done"
    assert took_s >= 0.9 * done["audio_s"], (took_s, done)
    assert loud_s(d.capture(before), d.rate_hz) > 0.4 * done["audio_s"]


def test_cancel_silences_the_device(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        assert d.spd_say(LONG).returncode == 0
        uid = next_queued(sub)["utterance"]
        sub.next(lambda e: e["event"] == "first_audio" and e["utterance"] == uid, 30)
        time.sleep(0.5)
        proc = d.spd_say("-C")
        at_cancel = d.captured_frames()
        assert proc.returncode == 0, proc.stderr
        final = final_of(sub, uid, timeout_s=5)
    assert final["event"] == "cancelled" and final["reason"] == "cancel", final
    time.sleep(0.5)
    after = d.capture(at_cancel)
    quiet_from = int(0.2 * d.rate_hz)
    assert np.max(np.abs(after[quiet_from:]), initial=0) <= LOUD, "speech went on after -C"


def test_stop_ends_the_current_message(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        assert d.spd_say(LONG).returncode == 0
        uid = next_queued(sub)["utterance"]
        sub.next(lambda e: e["event"] == "first_audio" and e["utterance"] == uid, 30)
        assert d.spd_say("-S").returncode == 0
        final = final_of(sub, uid, timeout_s=5)
    assert final["event"] == "cancelled" and final["reason"] == "stop", final


def test_rate_and_volume_change_the_speech(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        normal, normal_audio = _say_and_capture(d, sub, "-w", FOX)
        fast, _ = _say_and_capture(d, sub, "-w", "-r", "100", FOX)
        slow, _ = _say_and_capture(d, sub, "-w", "-r", "-50", FOX)
        quiet, quiet_audio = _say_and_capture(d, sub, "-w", "-i", "-50", FOX)
    assert {e["event"] for e in (normal, fast, slow, quiet)} == {"done"}
    # SSIP rate +100 asks for 3x as fast, -50 for 1/sqrt(3) (docs/SSIP.md); the voice's
    # phoneme durations have a floor, so +100 measures about 2x.
    assert 0.3 < fast["audio_s"] / normal["audio_s"] < 0.65, (fast, normal)
    assert 1.35 < slow["audio_s"] / normal["audio_s"] < 2.1, (slow, normal)
    # Volume -50 halves the amplitude.
    ratio = _rms(quiet_audio) / _rms(normal_audio)
    assert 0.35 < ratio < 0.65, ratio


def test_important_interrupts_a_long_text(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.subscribe() as sub:
        waiter = d.spd_say_bg("-w", LONG)
        try:
            long_uid = next_queued(sub)["utterance"]
            sub.next(lambda e: e["event"] == "first_audio" and e["utterance"] == long_uid, 30)
            before = d.captured_frames()
            proc = d.spd_say("-P", "important", "Important news.")
            assert proc.returncode == 0, proc.stderr
            important = next_queued(sub)
            assert important["priority"] == "important"
            interrupted = final_of(sub, long_uid, timeout_s=5)
            assert interrupted["event"] == "cancelled" and interrupted["reason"] == "priority"
            # spd-say -w on the interrupted text ends on its 703 CANCELED event.
            assert waiter.wait(5) == 0, waiter.stderr.read() if waiter.stderr else ""
            done = final_of(sub, important["utterance"])
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
    assert done["event"] == "done"
    time.sleep(0.25)
    assert loud_s(d.capture(before), d.rate_hz) > 0.3 * done["audio_s"]


def test_list_voices_and_modules(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    proc = d.spd_say("-L")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert rows[0] == ["NAME", "LANGUAGE", "VARIANT"]
    assert ["en_US-joe-medium", "en-US", "none"] in rows[1:]
    proc = d.spd_say("-O")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["OUTPUT", "MODULES", "autovoice"]


def test_ssml_marks_are_reported_and_tags_never_read(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    words = "Good morning. The weather is fine today."
    ssml = (
        '<speak>Good morning. <mark name="m1"/>The weather is '
        '<prosody rate="medium">fine</prosody> <mark name="m2"/>today.</speak>'
    )
    with d.subscribe() as sub:
        plain, _ = _say_and_capture(d, sub, "-w", words)
        before = d.captured_frames()
        proc = d.spd_say("-w", "-x", ssml)
        assert proc.returncode == 0, proc.stderr
        marked = final_of(sub, next_queued(sub)["utterance"])
    # spd-say -w prints the marks it receives on stderr.
    assert proc.stderr.splitlines() == ["reached mark 'm1'", "reached mark 'm2'"]
    assert marked["event"] == "done"
    # Reading the tags aloud would make it far longer than the same words without them.
    assert marked["audio_s"] < 1.25 * plain["audio_s"], (marked, plain)
    time.sleep(0.25)
    assert loud_s(d.capture(before), d.rate_hz) > 0.4 * marked["audio_s"]


@pytest.mark.parametrize(
    "args",
    [
        ("-c", "a"),
        ("-k", "shift_a"),
        ("-I", "bell"),
        ("-s", "ok"),
        ("-m", "all", "Hi, you."),
        ("-p", "40", "-R", "20", "Pitch."),
        ("-o", "autovoice", "-y", "en_US-joe-medium", "-t", "female1", "-l", "en", "Voice."),
        ("-P", "message", "-N", "tests", "-n", "conn", "Named."),
    ],
    ids=["char", "key", "icon", "spell", "punct", "pitch", "voice", "name"],
)
def test_other_options_speak(ssip_daemon: SsipDaemon, args: tuple[str, ...]):
    d = ssip_daemon
    with d.subscribe() as sub:
        final, audio = _say_and_capture(d, sub, "-w", *args)
    assert final["event"] == "done", final
    assert loud_s(audio, d.rate_hz) > 0.1


def _centroid_hz(x: np.ndarray, rate_hz: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate_hz)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_pitch_moves_the_spectrum_and_keeps_the_duration(ssip_daemon: SsipDaemon):
    """Pitch is applied by resampling (docs/SSIP.md): +100 is half an octave up, -100 down."""
    d = ssip_daemon
    with d.subscribe() as sub:
        normal, normal_audio = _say_and_capture(d, sub, "-w", FOX)
        high, high_audio = _say_and_capture(d, sub, "-w", "-p", "100", FOX)
        low, low_audio = _say_and_capture(d, sub, "-w", "-p", "-100", FOX)
    assert {e["event"] for e in (normal, high, low)} == {"done"}
    base = _centroid_hz(normal_audio)
    assert 1.2 < _centroid_hz(high_audio) / base < 1.7
    assert 0.55 < _centroid_hz(low_audio) / base < 0.85
    for audio in (high_audio, low_audio):
        assert 0.8 < loud_s(audio, 48000) / loud_s(normal_audio, 48000) < 1.25
