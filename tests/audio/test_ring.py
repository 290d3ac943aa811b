"""RingBuffer: real threads hammering it, and property tests of the index arithmetic."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autovoice.audio_io import RingBuffer
from autovoice.audio_io.ring import ring_indices


def test_rejects_bad_capacity() -> None:
    with pytest.raises(ValueError):
        RingBuffer(0)
    with pytest.raises(TypeError):
        RingBuffer(2.5)  # type: ignore[arg-type]


def test_write_read_wrap_and_counters() -> None:
    ring = RingBuffer(5)
    out = np.empty(4, dtype=np.float32)
    assert ring.write(np.arange(3)) == 3
    assert ring.read_into(out[:2]) == 2
    assert out[:2].tolist() == [0, 1]
    assert ring.write(np.arange(3, 10)) == 4  # wraps; only 4 fit
    assert ring.available_frames == 5 and ring.free_frames == 0
    assert ring.read_into(out) == 4
    assert out.tolist() == [2, 3, 4, 5]
    assert ring.read_into(out) == 1
    assert out.tolist() == [6, 0, 0, 0]
    assert ring.frames_written == 7 and ring.frames_read == 7
    assert ring.underrun_reads == 1 and ring.silence_frames == 3
    assert ring.high_water_frames == 5


def test_clear_is_done_by_reader_and_keeps_later_writes() -> None:
    ring = RingBuffer(8)
    ring.write(np.arange(1, 6))
    ring.clear()
    assert ring.clear_pending and ring.available_frames == 5  # nothing dropped yet
    ring.write(np.array([100, 101]))
    out = np.empty(4, dtype=np.float32)
    assert ring.read_into(out) == 2
    assert out.tolist() == [100, 101, 0, 0]
    assert not ring.clear_pending and ring.frames_discarded == 5


def test_clear_fades_out_head_of_dropped_audio() -> None:
    ring = RingBuffer(64)
    ring.write(np.ones(40, dtype=np.float32))
    out = np.empty(16, dtype=np.float32)
    ring.read_into(out)
    ring.clear()
    fade = np.linspace(1, 0, 5, dtype=np.float32)[1:]
    assert ring.read_into(out, fade) == 4
    assert out.tolist() == fade.tolist() + [0.0] * 12
    assert ring.frames_discarded == 20 and ring.last_faded == 4


def test_peek_and_skip() -> None:
    ring = RingBuffer(4)
    ring.write(np.array([1, 2, 3]))
    out = np.empty(4, dtype=np.float32)
    assert ring.peek_into(out) == 3 and out.tolist() == [1, 2, 3, 0]
    assert ring.available_frames == 3
    assert ring.skip(2) == 2 and ring.available_frames == 1


@pytest.mark.parametrize("capacity", [997, 4096])
def test_threads_hammering_with_random_clears(capacity: int) -> None:
    """A writer and a reader thread pass 4 M frames with random chunks and clears.

    Frame k carries the value k (exact in float32 below 2**24), so the reader can check that it
    got a strictly increasing run where every gap ends at a position a clear() targeted.
    """
    total = 4_000_000
    ring = RingBuffer(capacity)
    targets: list[int] = []
    done = threading.Event()
    wake = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        rng = np.random.default_rng(1)
        pos = 0
        try:
            while pos < total:
                n = int(rng.integers(1, 2 * capacity))
                chunk = np.arange(pos, min(total, pos + n), dtype=np.float32)
                off = 0
                while off < len(chunk):
                    got = ring.write(chunk[off:])
                    off += got
                    if got == 0:
                        wake.wait(0.001)
                        wake.clear()
                pos += len(chunk)
                if rng.random() < 0.03:
                    targets.append(ring.write_pos)
                    ring.clear()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    pieces: list[np.ndarray] = []

    def reader() -> None:
        rng = np.random.default_rng(2)
        bufs = [np.empty(n, dtype=np.float32) for n in (1, 7, 64, 256, 1000, 3000)]
        while True:
            finished = done.is_set()
            out = bufs[int(rng.integers(len(bufs)))]
            got = ring.read_into(out)
            if got:
                pieces.append(out[:got].copy())
                wake.set()
            elif not finished:
                time.sleep(0.00005)
            elif finished and not ring.clear_pending and ring.available_frames == 0:
                return

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # interleave the two threads finely
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors
    got = np.concatenate(pieces).astype(np.int64)
    steps = np.diff(got)
    assert (steps >= 1).all(), "out of order or duplicated frames"
    gap_ends = got[1:][steps > 1]
    assert set(gap_ends.tolist()) <= set(targets), "a gap that no clear explains"
    if got[0] != 0:
        assert got[0] in targets
    assert len(got) + ring.frames_discarded == total
    assert ring.frames_written == total
    assert ring.frames_read == len(got)
    assert len(targets) > 5


@given(
    pos=st.integers(min_value=0, max_value=2**70),
    capacity=st.integers(min_value=1, max_value=5000),
    data=st.data(),
)
def test_ring_indices_cover_exactly_the_span(pos: int, capacity: int, data) -> None:
    count = data.draw(st.integers(min_value=0, max_value=capacity))
    start, first, second = ring_indices(pos, count, capacity)
    assert 0 <= start < capacity
    assert first + second == count
    assert start + first <= capacity
    assert second <= start or count == capacity and start == 0 and second == 0
    covered = list(range(start, start + first)) + list(range(second))
    assert covered == [(pos + k) % capacity for k in range(count)]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("w"), st.integers(0, 40)),
        st.tuples(st.just("r"), st.integers(0, 40)),
        st.tuples(st.just("c"), st.just(0)),
        st.tuples(st.just("p"), st.integers(0, 40)),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(
    capacity=st.integers(1, 33),
    offset=st.integers(0, 2**64),
    ops=OPS,
)
def test_ring_matches_a_queue_model(capacity: int, offset: int, ops) -> None:
    """Any sequence of writes/reads/clears/peeks, from any absolute position, acts like a queue."""
    ring = RingBuffer(capacity)
    # Start far along (positions are unbounded integers): exercises wrap at huge positions.
    ring._write_pos = ring._read_pos = ring._clear_target = offset
    model: deque[float] = deque()
    pending_clear: int | None = None
    counter = 0
    for op, n in ops:
        if op == "w":
            vals = np.arange(counter, counter + n, dtype=np.float32)
            counter += n
            got = ring.write(vals)
            assert got == min(n, capacity - len(model))
            model.extend(vals[:got].tolist())
        elif op == "c":
            ring.clear()
            pending_clear = len(model)  # everything stored now is to be dropped
        else:
            if pending_clear is not None:
                for _ in range(pending_clear):
                    model.popleft()
                pending_clear = None
            out = np.full(n, -1.0, dtype=np.float32)
            if op == "r":
                got = ring.read_into(out)
                expect = [model.popleft() for _ in range(min(n, len(model)))]
            else:
                got = ring.peek_into(out)
                expect = list(model)[:n]
            assert got == len(expect)
            assert out.tolist() == expect + [0.0] * (n - got)
        assert ring.available_frames == len(model)
        assert ring.free_frames == capacity - len(model)
