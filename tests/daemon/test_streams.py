"""Streams on the native socket (`speak` with `stream`, `append`, `end`): the real daemon on the
virtual device, driven by raw sockets, the Python clients and `autovoice say --stream -`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from autovoice.bench.sentences import random_deltas
from autovoice.daemon.client import AsyncClient, Client
from autovoice.daemon.testing import RawConnection
from autovoice.errors import ProtocolError
from tests.audio_fixtures import REPO_ROOT, AudioEnv
from tests.daemon.conftest import (
    LOUD,
    DeviceDaemon,
    running_device_daemon,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

IDLE_S = 4.0
"""The test daemon's `daemon.stream_idle_s`."""
MAX_TEXT = 4096
ANSWER = (
    "Sure. The weather in Paris today is sunny, with a high of 21 degrees and a light breeze "
    "from the west. Dr. Smith says it stays dry until Thursday, e.g. no umbrella needed, and "
    "the pollen count is 123.45 grains per cubic metre."
)


@pytest.fixture(scope="module")
def stream_daemon(module_audio: AudioEnv, tmp_path_factory) -> DeviceDaemon:
    """One daemon for this module, with a short stream idle time and a 4 KiB text limit."""
    d = tmp_path_factory.mktemp("stream_daemon")
    limits = {"max_text_bytes": MAX_TEXT, "stream_idle_s": IDLE_S}
    with running_device_daemon(module_audio, d, daemon=limits) as daemon:
        yield daemon


def open_stream(conn: RawConnection, rid: str, **fields) -> int:
    conn.send({"cmd": "speak", "stream": True, "id": rid, **fields})
    queued = conn.next(lambda e: e.get("id") == rid and e["event"] in ("queued", "error"))
    assert queued["event"] == "queued", queued
    return queued["utterance"]


def loud_s(daemon: DeviceDaemon, since_frame: int) -> float:
    played = daemon.capture()[since_frame:]
    return np.count_nonzero(np.abs(played) > LOUD) / daemon.rate_hz


def speaking_now(daemon: DeviceDaemon, window_s: float = 0.05) -> bool:
    x = daemon.capture()
    return bool(np.any(np.abs(x[-int(window_s * daemon.rate_hz) :]) > 10 * LOUD))


def test_random_deltas_start_speaking_before_the_text_ends(stream_daemon: DeviceDaemon):
    with stream_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": ANSWER, "id": "whole"})
        whole = conn.until_final("whole", 60)[-1]
        assert whole["event"] == "done"
        before = stream_daemon.captured_frames()
        uid = open_stream(conn, "s")
        pieces = random_deltas(ANSWER, seed=13)
        for piece in pieces:  # about 200 characters a second
            conn.send({"cmd": "append", "utterance": uid, "text": piece})
            time.sleep(len(piece) / 200)
        last_sent_s = time.monotonic()
        conn.send({"cmd": "end", "utterance": uid, "id": "e"})
        events = conn.expect_types("s", ["queued", "started", "first_audio", "done"], 60)
        ok = next(e for e in conn.received if e.get("id") == "e")
    assert ok["event"] == "ok" and ok["utterances"] == [uid]
    first, done = events[2], events[3]
    # Speech began while the text was still arriving, not after the whole answer came.
    assert first["at_s"] < last_sent_s, (first, last_sent_s)
    assert 0 < first["latency_ms"] < 1500
    # All of it was spoken: as long as the whole text spoken at once (pieces pause a little).
    assert 0.8 * whole["audio_s"] < done["audio_s"] < 1.35 * whole["audio_s"]
    wait_until(
        lambda: loud_s(stream_daemon, before) > 0.4 * done["audio_s"], 5, "the stream's speech"
    )


def test_slow_stream_waits_without_underruns_and_others_are_answered(
    stream_daemon: DeviceDaemon,
):
    with stream_daemon.connect() as conn, stream_daemon.connect() as other:
        uid = open_stream(conn, "slow")
        conn.send({"cmd": "append", "utterance": uid, "text": "First part of the answer. "})
        conn.next(lambda e: e.get("id") == "slow" and e["event"] == "first_audio", 30)
        other.send({"cmd": "speak", "text": "Behind the stream.", "id": "behind"})
        queued = other.next(lambda e: e.get("id") == "behind")
        assert queued["event"] == "queued" and queued["position"] == 0
        time.sleep(2.0)  # the first part has played; the stream waits for text
        assert not speaking_now(stream_daemon)
        started = time.monotonic()
        status = other.request({"cmd": "status", "id": "st"})["status"]
        assert time.monotonic() - started < 1.0
        assert status["state"] == "speaking" and status["current"] == uid
        time.sleep(1.0)
        later = other.request({"cmd": "status", "id": "st2"})["status"]
        # The output segment ended while the stream waits: a dry ring is no underrun.
        assert later["audio"]["underruns"] == status["audio"]["underruns"]
        assert not [e for e in conn.received if e["event"] in ("done", "cancelled", "error")]
        conn.send({"cmd": "end", "utterance": uid, "text": "And the second part, later."})
        events = conn.expect_types("slow", ["queued", "started", "first_audio", "done"], 30)
        behind = other.expect_types("behind", ["queued", "started", "first_audio", "done"], 30)
    assert events[-1]["audio_s"] > 2.5  # both parts
    assert behind[1]["wait_ms"] > 3000  # it waited for the stream to end (docs/PROTOCOL.md)


def test_stop_and_cancel_mid_stream(stream_daemon: DeviceDaemon):
    with stream_daemon.connect() as conn, stream_daemon.connect() as ctl:
        uid = open_stream(conn, "st")
        for piece in random_deltas(ANSWER, seed=1)[:40]:
            conn.send({"cmd": "append", "utterance": uid, "text": piece})
        conn.next(lambda e: e.get("id") == "st" and e["event"] == "first_audio", 30)
        wait_until(lambda: speaking_now(stream_daemon), 10, "loud speech at the device")
        assert ctl.request({"cmd": "stop", "id": "x"})["utterances"] == [uid]
        final = conn.until_final("st", 5)[-1]
        assert final["event"] == "cancelled" and final["reason"] == "stop"
        at_stop = stream_daemon.captured_frames()
        conn.send({"cmd": "append", "utterance": uid, "text": "more", "id": "late"})
        late = conn.next(lambda e: e.get("id") == "late")
        assert late["event"] == "error" and late["code"] == "not_found"
        time.sleep(0.4)
        after = stream_daemon.capture()[at_stop + int(0.2 * stream_daemon.rate_hz) :]
        assert np.max(np.abs(after), initial=0) <= LOUD, "speech went on after stop"

        # Cancel of a stream queued behind another, before it has any text.
        busy = open_stream(conn, "busy")
        conn.send({"cmd": "append", "utterance": busy, "text": ANSWER})
        queued = open_stream(conn, "q")
        cancelled = ctl.request({"cmd": "cancel", "utterance": queued, "id": "c"})
        assert cancelled["utterances"] == [queued]
        assert conn.until_final("q", 5)[-1]["reason"] == "cancel"
        conn.send({"cmd": "end", "utterance": queued, "id": "e2"})
        assert conn.next(lambda e: e.get("id") == "e2")["code"] == "not_found"
        conn.send({"cmd": "end", "utterance": busy})
        conn.expect_types("busy", ["queued", "started", "first_audio", "done"], 60)


MALFORMED = [
    ({"cmd": "append", "text": "x"}, "missing_field"),
    ({"cmd": "append", "utterance": "one", "text": "x"}, "bad_type"),
    ({"cmd": "append", "utterance": 1}, "missing_field"),
    ({"cmd": "append", "utterance": 0, "text": "x"}, "bad_value"),
    ({"cmd": "append", "utterance": 5, "text": 7}, "bad_type"),
    ({"cmd": "append", "utterance": 5, "text": "x", "colour": "red"}, "unknown_field"),
    ({"cmd": "end"}, "missing_field"),
    ({"cmd": "end", "utterance": 987654}, "not_found"),
    ({"cmd": "append", "utterance": 987654, "text": "x"}, "not_found"),
    ({"cmd": "speak", "stream": "yes"}, "bad_type"),
    ({"cmd": "speak", "text": "x", "stream": False, "rate": 99}, "bad_value"),
]


def test_malformed_append_and_end_get_errors_while_speech_goes_on(stream_daemon: DeviceDaemon):
    with stream_daemon.connect() as conn, stream_daemon.connect() as intruder:
        uid = open_stream(conn, "m")
        conn.send({"cmd": "append", "utterance": uid, "text": ANSWER[:120]})
        conn.next(lambda e: e.get("id") == "m" and e["event"] == "first_audio", 30)
        for i, (message, code) in enumerate(MALFORMED):
            intruder.send({**message, "id": f"bad{i}"})
            reply = intruder.next(lambda e, i=i: e.get("id") == f"bad{i}", 5)
            assert reply["event"] == "error" and reply["code"] == code, (message, reply)
        # Another connection cannot add to or end this connection's stream.
        intruder.send({"cmd": "append", "utterance": uid, "text": "hijack", "id": "h"})
        assert intruder.next(lambda e: e.get("id") == "h")["code"] == "not_found"
        intruder.send({"cmd": "end", "utterance": uid, "id": "h2"})
        assert intruder.next(lambda e: e.get("id") == "h2")["code"] == "not_found"
        # Too much text: refused, the stream stays open with what it had.
        conn.send({"cmd": "append", "utterance": uid, "text": "x " * MAX_TEXT, "id": "big"})
        assert conn.next(lambda e: e.get("id") == "big")["code"] == "text_too_long"
        assert not [
            e
            for e in conn.received
            if e.get("utterance") == uid and e["event"] in ("done", "cancelled", "error")
        ]
        conn.send({"cmd": "end", "utterance": uid, "text": " The end.", "id": "fin"})
        assert conn.next(lambda e: e.get("id") == "fin")["event"] == "ok"
        conn.send({"cmd": "end", "utterance": uid, "id": "twice"})
        assert conn.next(lambda e: e.get("id") == "twice")["code"] == "not_found"
        events = conn.expect_types("m", ["queued", "started", "first_audio", "done"], 60)
    assert events[-1]["audio_s"] > 5


def test_disconnect_and_idle_end_a_stream_and_its_text_is_spoken(stream_daemon: DeviceDaemon):
    with stream_daemon.connect() as watcher:
        watcher.request({"cmd": "subscribe", "id": "sub"})
        conn = stream_daemon.connect()
        uid = open_stream(conn, "gone", text="Spoken although my client left")
        conn.close()
        done = watcher.next(lambda e: e.get("utterance") == uid and e["event"] == "done", 30)
        assert done["audio_s"] > 1.0
        with stream_daemon.connect() as idle:
            uid = open_stream(idle, "idle", text="Nobody ends this stream")
            opened = time.monotonic()
            idle.next(lambda e: e.get("id") == "idle" and e["event"] == "done", IDLE_S + 20)
            assert time.monotonic() - opened > IDLE_S - 0.5


def test_python_clients_take_iterators(stream_daemon: DeviceDaemon):
    def slow_pieces():
        for piece in random_deltas(ANSWER[:100], seed=5):
            time.sleep(0.005)
            yield piece

    seen: list[str] = []
    with Client(stream_daemon.socket) as tts:
        result = tts.speak(
            slow_pieces(), wait=True, timeout_s=60, on_event=lambda e: seen.append(e._type)
        )
    assert result.ok and result.first_audio_ms is not None
    assert seen == ["queued", "started", "first_audio", "done"]

    async def main() -> tuple:
        async def pieces():
            for piece in random_deltas(ANSWER[:100], seed=6):
                await asyncio.sleep(0.005)
                yield piece

        async with AsyncClient(stream_daemon.socket) as tts:
            streamed = await tts.speak(pieces(), wait=True, timeout_s=60)
            listed = await tts.speak(["Plain ", "iter", "able."], wait=True, timeout_s=60)
            return streamed, listed

    streamed, listed = asyncio.run(asyncio.wait_for(main(), 120))
    assert streamed.ok and listed.ok
    assert [e._type for e in streamed.events] == ["queued", "started", "first_audio", "done"]

    class Broken(Exception):
        pass

    def failing():
        yield "This stream fails half way "
        raise Broken

    with stream_daemon.connect() as watcher:
        watcher.request({"cmd": "subscribe", "id": "sub"})
        with Client(stream_daemon.socket) as tts, pytest.raises(Broken):
            tts.speak(failing())
        # The producer failed: its utterance is cancelled, not left open or spoken half.
        final = watcher.next(lambda e: e["event"] in ("done", "cancelled", "error"), 10)
        assert final["event"] == "cancelled" and final["reason"] == "cancel"
        # A piece the daemon refuses raises its error, also when it is the last one.
        with Client(stream_daemon.socket) as tts, pytest.raises(ProtocolError) as refused:
            tts.speak(["Fine so far. ", "x " * MAX_TEXT])
        assert refused.value.code == "text_too_long"
        watcher.next(lambda e: e["event"] in ("done", "cancelled", "error"), 30)


def test_say_stream_from_a_pipe(stream_daemon: DeviceDaemon):
    cmd = [sys.executable, "-m", "autovoice", "say", "--stream", "-", "--wait", "--json"]
    proc = subprocess.Popen(
        [*cmd, "--socket", str(stream_daemon.socket)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=stream_daemon.audio.env,
        cwd=REPO_ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    text = "Piped text, spoken while it arrives: caf\u00e9 and na\u00efve words. The end."
    data = text.encode()
    queued = json.loads(proc.stdout.readline())  # printed before stdin is read
    assert queued["event"] == "queued"
    for i in range(0, len(data), 3):  # splits the UTF-8 of é and ï too
        proc.stdin.write(data[i : i + 3])
        proc.stdin.flush()
        time.sleep(0.02)
    closed_s = time.monotonic()
    out, err = proc.communicate(timeout=60)  # closes stdin
    assert proc.returncode == 0, err
    events = [queued] + [json.loads(line) for line in out.decode().splitlines()]
    assert [e["event"] for e in events] == ["queued", "started", "first_audio", "done"]
    assert events[2]["at_s"] < closed_s  # spoken before stdin closed
    usage = stream_daemon.cli("say", "--stream", "not-a-dash")
    assert usage.returncode == 2 and "--stream reads stdin" in usage.stderr
