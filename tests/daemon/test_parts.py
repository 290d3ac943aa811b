"""The daemon's small parts: phrase cache, metrics, the null output, socket paths and locks."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time

import numpy as np
import pytest

from autovoice.audio_io import FirstAudio, UtterancePlayed
from autovoice.daemon.cache import PhraseCache
from autovoice.daemon.metrics import Metrics, percentiles
from autovoice.daemon.nullout import NullOutput
from autovoice.daemon.paths import (
    SocketInUse,
    SocketLock,
    default_socket_path,
    prepare_socket_path,
)
from autovoice.daemon.playback import Anchor, Job, MarkSamples, Playing, first_loud
from autovoice.engines import AudioChunk, SpeakOptions


def test_cache_is_lru_and_bounded_in_bytes():
    cache = PhraseCache(capacity_bytes=4000, max_chars=5)
    audio = np.ones(400, dtype=np.float32)  # 1600 bytes
    assert cache.put("a", audio) and cache.put("b", audio)
    assert cache.get("a") is not None  # a is now most recent
    assert cache.put("c", audio)  # evicts b
    assert cache.get("b") is None and cache.get("c") is not None
    stats = cache.stats()
    assert stats["bytes"] <= 4000 and stats["entries"] == 2
    assert (stats["hits"], stats["misses"]) == (2, 1)
    assert cache.cacheable("menu") and not cache.cacheable("too long") and not cache.cacheable("")
    assert not PhraseCache(0, 10).cacheable("x")
    with pytest.raises(ValueError):
        cache.get("a")[0] = 2.0  # cached audio is read-only


def test_metrics_percentiles_and_rtf():
    m = Metrics(window=100)
    for v in range(1, 201):
        m.first_audio(float(v), float(v) + 10)
    m.synthesis(audio_s=10.0, compute_s=1.0)
    m.count("done")
    snap = m.snapshot()
    assert snap["first_audio_ms"]["count"] == 100  # the window keeps the latest
    assert snap["first_audio_ms"]["p50"] == pytest.approx(150.5)
    assert snap["rtf"] == 0.1 and snap["utterances"]["done"] == 1
    assert snap["rss_bytes"] > 0 and snap["peak_rss_bytes"] > 0
    assert percentiles([])["p99"] is None


def test_null_output_paces_reports_and_aborts():
    events: list = []
    out = NullOutput(8000, buffer_s=0.5, on_event=events.append)
    out.start()
    try:
        tone = np.full(2400, 0.5, dtype=np.float32)  # 0.3 s
        started = time.monotonic()
        out.begin_utterance(1)
        out.write(np.zeros(80, dtype=np.float32))
        out.write(tone)
        out.end_utterance(1)
        deadline = time.monotonic() + 3
        while not any(isinstance(e, UtterancePlayed) for e in events):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        took = time.monotonic() - started
        assert 0.25 < took < 1.0  # real time, not instant
        assert isinstance(events[0], FirstAudio) and events[0].utterance_id == 1
        assert events[1] == UtterancePlayed(1, events[1].monotonic_s, False)
        # A writer blocked on a full buffer returns at once on abort.
        out.begin_utterance(2)
        writer = threading.Thread(target=out.write, args=(np.ones(80000, np.float32),))
        writer.start()
        time.sleep(0.1)
        out.abort()
        writer.join(1)
        assert not writer.is_alive()
        assert events[-1].utterance_id == 2 and events[-1].aborted
    finally:
        out.close()


def _switches(native_id: int) -> int:
    status = open(f"/proc/self/task/{native_id}/status").read()  # noqa: SIM115
    return sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)


def test_null_output_sleeps_while_nothing_is_queued():
    events: list = []
    out = NullOutput(8000, buffer_s=0.5, on_event=events.append)
    out.start()
    try:
        (consumer,) = [t for t in threading.enumerate() if t.name == "autovoice-null-output"]
        for uid in (1, 2):  # idle after start, and again after an utterance
            deadline = time.monotonic() + 3
            while out.stats().state != "idle":
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.05)  # it says idle just before it blocks
            before = _switches(consumer.native_id)
            time.sleep(0.3)
            assert _switches(consumer.native_id) == before, "the idle consumer woke up"
            out.begin_utterance(uid)
            out.write(np.full(400, 0.5, dtype=np.float32))
            out.end_utterance(uid)
            deadline = time.monotonic() + 3
            while not any(isinstance(e, UtterancePlayed) and e.utterance_id == uid for e in events):
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        out.close()


def test_a_job_taken_off_keeps_the_clause_that_was_playing():
    # Clauses 0: a b, 1: c d, 2: e; each piece is 10 output frames.
    spec = [("a", 0, False), ("b", 0, True), ("c", 1, False), ("d", 1, True), ("e", 2, True)]
    chunks = iter(
        AudioChunk(np.full(10, i, np.float32), 1000, 10 * i, clause, last, 0.001, 0.0)
        for i, (_, clause, last) in enumerate(spec)
    )
    names = {i: name for i, (name, _, _) in enumerate(spec)}
    job = Job(synth=None, options=SpeakOptions(), pitch=1.0, key=(), chunks=chunks)  # type: ignore[arg-type]

    def write(count: int, start: int) -> None:
        for k in range(count):
            piece = job.next_piece()
            piece.pos = start + 10 * k
            job.written.append(piece)

    write(4, 0)  # a b c d written; playback is in c
    job.prune(25)
    assert [names[int(p.samples[0])] for p in job.written] == ["c", "d"]  # clause 0 played
    job.take_off(25)
    assert job.written == [] and [names[int(p.samples[0])] for p in job.replay] == ["c", "d"]
    # Written again (a new segment), taken off where d starts: c is done, d is not.
    write(2, 100)
    job.take_off(110)
    assert [names[int(p.samples[0])] for p in job.replay] == ["c", "d"]  # the clause is c d
    write(3, 200)  # c d, then e from the generator
    job.take_off(220)
    assert [names[int(p.samples[0])] for p in job.replay] == ["e"]
    assert job.next_piece().key == 2 and job.next_piece() is None and job.chunks is None
    assert job.audio_s == pytest.approx(0.05) and job.compute_s == pytest.approx(0.005)


def test_default_socket_path():
    assert str(default_socket_path({"AUTOVOICE_SOCKET": "/x/s"})) == "/x/s"
    assert str(default_socket_path({"XDG_RUNTIME_DIR": "/r"})) == "/r/autovoice/autovoice.sock"
    assert str(default_socket_path({})).endswith(f"autovoice-{os.getuid()}/autovoice.sock")


def test_prepare_makes_a_private_dir_and_removes_a_stale_socket(tmp_path):
    path = tmp_path / "run" / "autovoice" / "autovoice.sock"
    prepare_socket_path(path, private_dir=True)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays: a crashed daemon's socket
    assert path.exists()
    prepare_socket_path(path, private_dir=True)
    assert not path.exists()


def test_prepare_refuses_a_live_socket_and_a_regular_file(tmp_path):
    path = tmp_path / "s.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(SocketInUse, match="already listening"):
            prepare_socket_path(path, private_dir=False)
    finally:
        live.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(SocketInUse, match="not a socket"):
        prepare_socket_path(path, private_dir=False)


def test_socket_lock_is_exclusive(tmp_path):
    first = SocketLock(tmp_path / "s.sock")
    first.acquire()
    try:
        with pytest.raises(SocketInUse, match=f"pid {os.getpid()}"):
            SocketLock(tmp_path / "s.sock").acquire()
    finally:
        first.release()
    again = SocketLock(tmp_path / "s.sock")
    again.acquire()
    again.release()


def test_a_job_reports_mark_samples_as_their_words_are_made():
    # Two units: words at 5, 15 (unit 0) and 30 (unit 1); marks before words 0, 1, 2 and 3.
    chunks = iter(
        [
            AudioChunk(np.zeros(10, np.float32), 1000, 0, 0, False, 0.0, 0.0, (5, 15)),
            AudioChunk(np.zeros(10, np.float32), 1000, 10, 0, True, 0.0, 0.0),
            AudioChunk(np.full(10, 0.5, np.float32), 1000, 20, 1, True, 0.0, 0.0, (30,)),
        ]
    )
    job = Job(synth=None, options=SpeakOptions(), pitch=1.0, key=(), chunks=chunks)  # type: ignore[arg-type]
    job.mark_words = (0, 1, 2, 3)
    assert job.new_marks(7) is None
    first = job.next_piece()
    assert first is not None and first.start == 0 and first_loud(first) is None
    assert job.new_marks(7) == MarkSamples(7, 0, (5, 15))
    assert job.new_marks(7) is None
    job.next_piece()
    third = job.next_piece()
    assert third is not None and first_loud(third) == 20
    assert job.new_marks(7) == MarkSamples(7, 2, (30,))  # word 3 is never made: no sample
    assert job.next_piece() is None and job.new_marks(7) is None


def test_a_segment_anchor_needs_its_sound_and_its_time():
    playing = Playing(None, 1, threading.Event(), rate_hz=22050.0)  # type: ignore[arg-type]
    playing.utt = type("U", (), {"uid": 4})()  # type: ignore[assignment]
    assert playing.anchor() is None
    playing.loud_sample, playing.words = 12, True
    assert playing.anchor() is None
    playing.heard_s = 3.5
    assert playing.anchor() == Anchor(4, 3.5, 12, 22050.0, True)
    assert playing.anchor() is None  # once
