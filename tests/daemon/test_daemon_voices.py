"""Voices load beside the speech: the real daemon, real copies of the default voice in a
voices_dir, native and SSIP requests. Only orderings are asserted, never speeds."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from autovoice.daemon.ssip.testing import SsipConnection
from autovoice.daemon.testing import DaemonProcess, RawConnection
from autovoice.engines.voice import default_voice_path
from tests.audio_fixtures import AudioEnv
from tests.daemon.conftest import running_ssip_daemon, wait_until, write_config
from tests.daemon.test_daemon_device import LONG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COPIES = ("second", "ssipvoice", "third", "fourth")
"""Copies of the default voice under other names (each test needs one not loaded yet)."""
BROKEN = "broken"
"""A voice whose model file is truncated."""
TIMEOUT_S = 90.0
"""Generous bound on every wait."""


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("voices")
    model = default_voice_path()
    for name in COPIES:
        shutil.copyfile(model, d / f"{name}.onnx")
        shutil.copyfile(f"{model}.json", d / f"{name}.onnx.json")
    (d / f"{BROKEN}.onnx").write_bytes(model.read_bytes()[:4096])
    shutil.copyfile(f"{model}.json", d / f"{BROKEN}.onnx.json")
    return d


@pytest.fixture(scope="module")
def daemon(module_audio: AudioEnv, voices_dir: Path, tmp_path_factory):
    d = tmp_path_factory.mktemp("voices_daemon")
    config = write_config(d / "config.yaml", voices_dir=str(voices_dir))
    with running_ssip_daemon(module_audio, d, config) as proc:
        yield proc


def status(conn: RawConnection) -> dict:
    return conn.request({"cmd": "status", "id": "st"})["status"]


def has_event(conn: RawConnection, request_id, event: str) -> bool:
    return any(e.get("id") == request_id and e["event"] == event for e in conn.received)


def speak_on_ssip(daemon: DaemonProcess, voice: str, text: str) -> SsipConnection:
    ssip = SsipConnection.connect(daemon.ssip_path)
    assert ssip.command(f"SET SELF SYNTHESIS_VOICE {voice}").ok
    assert ssip.speak(text).ok
    return ssip


def wait_for_status(conn: RawConnection, pred, what: str) -> dict:
    """Poll `status` until `pred(status)`; returns that status."""
    seen: list[dict] = []

    def check() -> bool:
        seen.append(status(conn))
        return pred(seen[-1])

    wait_until(check, TIMEOUT_S, what)
    return seen[-1]


def final_of(conn: RawConnection, utterance: int) -> dict:
    return conn.next(
        lambda e: e.get("utterance") == utterance and e["event"] in ("done", "cancelled", "error"),
        TIMEOUT_S,
    )


@pytest.mark.parametrize(("front", "voice"), [("native", "second"), ("ssip", "ssipvoice")])
def test_a_new_voice_loads_while_the_speech_ahead_plays(daemon, front, voice):
    with RawConnection.connect(daemon.socket_path) as conn:
        assert conn.request({"cmd": "subscribe", "id": "sub"})["event"] == "ok"
        long = conn.request({"cmd": "speak", "text": LONG, "id": "long"})["utterance"]
        conn.next(lambda e: e["event"] == "first_audio" and e["id"] == "long", TIMEOUT_S)
        assert voice not in status(conn)["loaded_voices"]
        if front == "native":
            conn.send({"cmd": "speak", "text": "The new voice.", "id": "v", "voice": voice})
        else:
            speak_on_ssip(daemon, voice, "The new voice.").close()
        now = wait_for_status(
            conn, lambda s: voice in s["loaded_voices"], f"{voice} in loaded_voices"
        )
        assert not has_event(conn, "long", "done"), "the voice loaded after the speech ahead"
        assert now["current"] == long and voice not in now["loading_voices"]
        assert conn.request({"cmd": "cancel", "utterance": long, "id": "c"})["event"] == "ok"
        assert final_of(conn, long)["event"] == "cancelled"
        started = conn.next(lambda e: e["event"] == "started" and e["voice"] == voice, TIMEOUT_S)
        assert final_of(conn, started["utterance"])["event"] == "done"


def test_cancel_while_waiting_for_its_voice(daemon):
    with RawConnection.connect(daemon.socket_path) as conn:
        speak = {"cmd": "speak", "text": "Waiting for my voice.", "id": "w", "voice": "third"}
        uid = conn.request(speak)["utterance"]
        now = wait_for_status(conn, lambda s: s["current"] == uid, "the player to reach it")
        assert "third" in now["loading_voices"], now
        assert conn.request({"cmd": "cancel", "utterance": uid, "id": "c"})["utterances"] == [uid]
        events = conn.expect_types("w", ["queued", "cancelled"], TIMEOUT_S)
        assert events[-1]["reason"] == "cancel"
        conn.send({"cmd": "speak", "text": "Still speaking.", "id": "after"})
        conn.expect_types("after", ["queued", "started", "first_audio", "done"], TIMEOUT_S)


def test_a_voice_that_fails_to_load_fails_only_its_requests(daemon, voices_dir):
    with RawConnection.connect(daemon.socket_path) as conn:
        conn.send({"cmd": "speak", "text": "Broken.", "id": "b1", "voice": BROKEN})
        conn.send({"cmd": "speak", "text": "Default voice.", "id": "ok"})
        conn.send({"cmd": "speak", "text": "Broken again.", "id": "b2", "voice": BROKEN})
        for rid in ("b1", "b2"):
            error = conn.expect_types(rid, ["queued", "error"], TIMEOUT_S)[-1]
            assert error["code"] == "unknown_voice" and not error["retryable"]
            assert BROKEN in error["message"] and error["utterance"] > 0
        conn.expect_types("ok", ["queued", "started", "first_audio", "done"], TIMEOUT_S)
        assert BROKEN not in status(conn)["loaded_voices"]
        shutil.copyfile(default_voice_path(), voices_dir / f"{BROKEN}.onnx")  # repaired
        conn.send({"cmd": "speak", "text": "Repaired.", "id": "b3", "voice": BROKEN})
        events = conn.expect_types("b3", ["queued", "started", "first_audio", "done"], TIMEOUT_S)
        assert events[1]["voice"] == BROKEN


def test_the_default_voice_by_its_file_name_is_not_loaded_twice(daemon):
    name = default_voice_path().name.removesuffix(".onnx")  # as LIST SYNTHESIS_VOICES shows it
    with RawConnection.connect(daemon.socket_path) as conn:
        before = status(conn)["loaded_voices"]
        conn.send({"cmd": "speak", "text": "Same voice.", "id": "same", "voice": name})
        events = conn.expect_types("same", ["queued", "started", "first_audio", "done"], TIMEOUT_S)
        assert events[1]["voice"] == name
        now = status(conn)
        # the default voice was used (it moved to the LRU end); nothing else was loaded
        assert sorted(now["loaded_voices"]) == sorted(before) and now["loading_voices"] == []
        assert name not in now["loaded_voices"]


def test_shutdown_does_not_wait_for_a_load(daemon):
    """Last in this module: it stops the daemon."""
    with RawConnection.connect(daemon.socket_path) as conn:
        speak = {"cmd": "speak", "text": "Never heard.", "id": "s", "voice": "fourth"}
        uid = conn.request(speak)["utterance"]
        now = wait_for_status(conn, lambda s: s["current"] == uid, "the player to reach it")
        assert "fourth" in now["loading_voices"], now
        daemon.signal(signal.SIGTERM)
        assert daemon.proc.wait(TIMEOUT_S) == 0, daemon.log
        final = conn.until_final("s", TIMEOUT_S)[-1]
        assert final["event"] == "cancelled" and final["reason"] == "shutdown"
