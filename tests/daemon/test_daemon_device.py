"""The real daemon on the virtual audio device, driven by the real CLI and raw sockets."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from tests.daemon.conftest import LOUD, DeviceDaemon, loud_runs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

LONG = (
    "This sentence is long on purpose, so that there is time to stop it, pause it and resume "
    "it while it is being spoken. It goes on for a while, and then it goes on a little more, "
    "with commas, clauses and numbers like 1234 to make the voice work for its living."
)


def speaking_now(daemon: DeviceDaemon, window_s: float = 0.03) -> bool:
    """Whether the last `window_s` that reached the device hold speech."""
    x = daemon.capture()
    return bool(np.any(np.abs(x[-int(window_s * daemon.rate_hz) :]) > 10 * LOUD))


def test_say_wait_json_reaches_the_device(device_daemon: DeviceDaemon):
    before = device_daemon.captured_frames()
    proc = device_daemon.cli("say", "--wait", "--json", "Hello from the daemon test.")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["queued", "started", "first_audio", "done"]
    assert all(e["v"] == 1 for e in events)
    first, done = events[2], events[3]
    assert 0 < first["latency_ms"] < 10000
    assert first["heard_ms"] == pytest.approx(
        first["latency_ms"] + first["output_latency_ms"], abs=0.02
    )  # each field is rounded to 0.01 ms on its own
    assert done["audio_s"] > 0.8

    def loud_s() -> float:
        played = device_daemon.capture()[before:]
        return np.count_nonzero(np.abs(played) > LOUD) / device_daemon.rate_hz

    wait_until(lambda: loud_s() > 0.4 * done["audio_s"], 3, "the speech in the capture")


def test_event_order_on_a_raw_socket(device_daemon: DeviceDaemon):
    with device_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": "Raw socket.", "id": "r1", "rate": 1.5})
        events = conn.expect_types("r1", ["queued", "started", "first_audio", "done"])
    assert len({e["utterance"] for e in events}) == 1
    assert events[1]["wait_ms"] >= 0 and events[2]["latency_ms"] > 0
    with device_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": "Who?", "id": "v", "voice": "no-such-voice"})
        events = conn.expect_types("v", ["queued", "error"])
        assert events[-1]["code"] == "unknown_voice" and events[-1]["utterance"] > 0
        conn.send({"cmd": "speak", "text": "   ", "id": "blank"})
        conn.expect_types("blank", ["queued", "started", "done"])


def test_repeated_short_phrase_comes_from_the_cache(device_daemon: DeviceDaemon):
    with device_daemon.connect() as conn:
        for rid in ("c1", "c2"):
            conn.send({"cmd": "speak", "text": "Button.", "id": rid})
            conn.expect_types(rid, ["queued", "started", "first_audio", "done"])
        started = [e for e in conn.received if e["event"] == "started"]
        assert [e["cached"] for e in started] == [False, True]
        cache = conn.request({"cmd": "status", "id": "s"})["status"]["cache"]
    assert cache["hits"] >= 1 and cache["entries"] >= 1


def test_stop_silences_the_device_within_one_block(device_daemon: DeviceDaemon):
    with device_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": LONG, "id": "long"})
        conn.next(lambda e: e["event"] == "first_audio" and e["id"] == "long", 30)
        wait_until(lambda: speaking_now(device_daemon), 10, "loud speech at the device")
        at_stop = device_daemon.captured_frames()
        conn.send({"cmd": "stop", "id": "stop"})
        reply = conn.next(lambda e: e.get("id") == "stop", 5)
        assert reply["event"] == "ok" and len(reply["utterances"]) == 1
        final = conn.until_final("long", 5)[-1]
        assert final["event"] == "cancelled" and final["reason"] == "stop"
    time.sleep(0.4)
    after = device_daemon.capture()[at_stop:]
    run = loud_runs(after)
    late_s = 0.0 if run is None else (run[1] + 1) / device_daemon.rate_hz
    print(f"stop latency at the device: {late_s * 1e3:.1f} ms")
    assert late_s < 0.15, f"speech went on for {late_s * 1e3:.0f} ms after stop"
    assert np.max(np.abs(after[int(0.3 * device_daemon.rate_hz) :]), initial=0) <= LOUD


def test_pause_holds_and_resume_continues(device_daemon: DeviceDaemon):
    rate = device_daemon.rate_hz
    with device_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": "One, two, three, four, five, six, seven.", "id": "p"})
        conn.next(lambda e: e["event"] == "first_audio" and e["id"] == "p", 30)
        time.sleep(0.4)
        assert conn.request({"cmd": "pause", "id": "pa"})["event"] == "ok"
        at_pause = device_daemon.captured_frames()
        time.sleep(1.0)
        held = device_daemon.capture()[at_pause + int(0.1 * rate) :]
        assert len(held) > 0.5 * rate, "the device must go on running (silence) while paused"
        assert np.max(np.abs(held)) <= LOUD, "audio played while paused"
        status = conn.request({"cmd": "status", "id": "st"})["status"]
        assert status["state"] == "paused"
        at_resume = device_daemon.captured_frames()
        assert conn.request({"cmd": "resume", "id": "re"})["event"] == "ok"
        done = conn.until_final("p", 30)[-1]
        assert done["event"] == "done"
    time.sleep(0.2)
    resumed = device_daemon.capture()[at_resume:]
    assert loud_runs(resumed) is not None, "nothing played after resume"


def test_important_interrupts_and_message_waits(device_daemon: DeviceDaemon):
    with device_daemon.connect() as conn:
        conn.send({"cmd": "speak", "text": LONG, "id": "m1"})
        conn.next(lambda e: e["event"] == "first_audio" and e["id"] == "m1", 30)
        conn.send({"cmd": "speak", "text": "Queued behind.", "id": "m2"})
        q2 = conn.next(lambda e: e["event"] == "queued" and e["id"] == "m2")
        assert q2["position"] == 0
        conn.send({"cmd": "speak", "text": "Note.", "id": "n1", "priority": "notification"})
        assert conn.until_final("n1", 5)[-1]["reason"] == "priority"
        conn.send({"cmd": "speak", "text": "Alert!", "id": "i1", "priority": "important"})
        m1 = conn.until_final("m1", 10)
        assert m1[-1]["event"] == "cancelled" and m1[-1]["reason"] == "priority"
        conn.expect_types("i1", ["queued", "started", "first_audio", "done"], 30)
        conn.expect_types("m2", ["queued", "started", "first_audio", "done"], 30)
        order = [(e["id"], e["event"]) for e in conn.received if e["event"] == "started"]
    assert order == [("m1", "started"), ("i1", "started"), ("m2", "started")]


def test_cancel_all_ends_every_utterance_once(device_daemon: DeviceDaemon):
    with device_daemon.connect() as conn:
        for i in range(4):
            conn.send({"cmd": "speak", "text": LONG, "id": f"k{i}"})
        conn.next(lambda e: e["event"] == "first_audio" and e["id"] == "k0", 30)
        proc = device_daemon.cli("cancel")
        assert proc.returncode == 0, proc.stderr
        finals = [conn.until_final(f"k{i}", 10)[-1] for i in range(4)]
        assert {f["event"] for f in finals} == {"cancelled"}
        time.sleep(0.3)
        extra = [e for e in conn.received if e["event"] in ("done", "cancelled", "error")]
        assert len(extra) == 4


def test_64_concurrent_clients_with_slow_and_dead_ones(device_daemon: DeviceDaemon):
    n = 64
    slow = device_daemon.connect()
    slow.send({"cmd": "subscribe", "id": "sub"})  # then never reads
    dead = device_daemon.connect()
    dead.send({"cmd": "speak", "text": "Gone", "id": "dead"})
    dead.close()
    with device_daemon.connect() as ctl:
        assert ctl.request({"cmd": "pause", "id": "p"})["event"] == "ok"
        results: dict[int, list[dict]] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(n)

        def client(i: int) -> None:
            try:
                with device_daemon.connect(timeout_s=20) as conn:
                    barrier.wait(10)
                    conn.send({"cmd": "speak", "text": f"Client {i}.", "id": i})
                    conn.next(lambda e: e["event"] == "queued", 20)
                    results[i] = conn.until_final(i, 40)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        wait_until(
            lambda: ctl.request({"cmd": "status", "id": "q"})["status"]["queue_depth"] >= n,
            20,
            "64 queued utterances",
        )
        started = time.monotonic()
        pong = ctl.request({"cmd": "ping", "id": "ping"}, timeout_s=2)
        assert pong["event"] == "pong" and time.monotonic() - started < 1.0
        cancelled = ctl.request({"cmd": "cancel", "id": "c"})
        assert len(cancelled["utterances"]) >= n
        ctl.request({"cmd": "resume", "id": "r"})
        for t in threads:
            t.join(60)
    slow.close()
    assert not errors, errors[:3]
    assert sorted(results) == list(range(n))
    for events in results.values():
        assert [e["event"] for e in events] == ["queued", "cancelled"]
    uids = {events[0]["utterance"] for events in results.values()}
    assert len(uids) == n
    with device_daemon.connect() as conn:  # still speaking afterwards
        conn.send({"cmd": "speak", "text": "Still here.", "id": "after"})
        conn.expect_types("after", ["queued", "started", "first_audio", "done"])


BAD_INPUTS = [
    (b"{not json\n", "bad_json"),
    (b'\xff\xfe{"cmd": "ping"}\n', "invalid_utf8"),
    (b'{"cmd": "speak", "text": "\\ud800"}\n', "invalid_utf8"),
    (b"[1, 2]\n", "bad_request"),
    (b'{"cmd": "dance"}\n', "unknown_command"),
    (b'{"text": "no command"}\n', "missing_field"),
    (b'{"cmd": "speak"}\n', "missing_field"),
    (b'{"cmd": "speak", "text": "x", "colour": "red"}\n', "unknown_field"),
    (b'{"cmd": "speak", "text": 5}\n', "bad_type"),
    (b'{"cmd": "speak", "text": "x", "rate": "fast"}\n', "bad_type"),
    (b'{"cmd": "speak", "text": "x", "rate": 99}\n', "bad_value"),
    (b'{"cmd": "speak", "text": "x", "priority": "urgent"}\n', "bad_value"),
    (b'{"cmd": "ping", "v": 2}\n', "unsupported_version"),
    (b'{"cmd": "cancel", "utterance": 999999}\n', "not_found"),
    (b'{"cmd": "speak", "text": "' + b"a" * 65537 + b'"}\n', "text_too_long"),
]


def test_bad_input_gets_an_error_and_the_daemon_keeps_speaking(device_daemon: DeviceDaemon):
    with device_daemon.connect() as speaker:
        speaker.send({"cmd": "speak", "text": LONG, "id": "bg"})
        speaker.next(lambda e: e["event"] == "first_audio" and e["id"] == "bg", 30)
        for data, code in BAD_INPUTS:
            with device_daemon.connect() as conn:
                conn.send(data)
                reply = conn.read(5)
                assert reply["event"] == "error" and reply["code"] == code, (data[:60], reply)
                assert isinstance(reply["message"], str) and reply["retryable"] is False
                assert conn.request({"cmd": "ping", "id": "alive"})["event"] == "pong"
        # An endless line: one error, then the connection resynchronises at the next newline.
        with device_daemon.connect(timeout_s=20) as conn:
            chunk = b"x" * 65536
            for _ in range(8):
                conn.send(chunk)
            reply = conn.read(10)
            assert reply["code"] == "line_too_long"
            conn.send(chunk + b"\n")
            assert conn.request({"cmd": "ping", "id": "again"})["event"] == "pong"
        # A line cut off by the end of the input.
        with device_daemon.connect() as conn:
            conn.send(b'{"cmd": "spe')
            conn.sock.shutdown(socket.SHUT_WR)
            assert conn.read(5)["code"] == "truncated_line"
        # Nothing above disturbed the speech in progress.
        final = speaker.until_final("bg", 60)[-1]
        assert final["event"] == "done", final
        speaker.send({"cmd": "speak", "text": "Still speaking.", "id": "ok"})
        speaker.expect_types("ok", ["queued", "started", "first_audio", "done"])
        rejected = speaker.request({"cmd": "status", "id": "s"})["status"]["utterances"]
        assert rejected["rejected"] >= len(BAD_INPUTS)


def test_cli_client_commands(device_daemon: DeviceDaemon):
    proc = device_daemon.cli("say", "-", stdin="Read from standard input.")
    assert proc.returncode == 0, proc.stderr
    for cmd in (["pause"], ["resume"], ["stop"]):
        proc = device_daemon.cli(*cmd)
        assert proc.returncode == 0, (cmd, proc.stderr)
    proc = device_daemon.cli("status", "--json")
    status = json.loads(proc.stdout)
    for key in (
        "uptime_s",
        "engine",
        "audio",
        "queue_depth",
        "first_audio_ms",
        "rtf",
        "rss_bytes",
        "cache",
        "utterances",
    ):
        assert key in status, key
    assert status["audio"]["underruns"] >= 0
    assert {"p50", "p95", "p99"} <= set(status["first_audio_ms"])
    proc = device_daemon.cli("status")
    assert proc.returncode == 0 and "first audio" in proc.stdout
    proc = device_daemon.cli("say", "--wait", "--priority", "urgent", "x")
    assert proc.returncode == 2  # argparse rejects the priority
    proc = device_daemon.cli("say", "--wait", "--rate", "50", "x")
    assert proc.returncode == 2 and "bad_value" in proc.stderr
