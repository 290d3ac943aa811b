"""TextFeed (loop -> player hand-over) and a stream's Job on the real voice, without a device."""

from __future__ import annotations

import threading
import time

import numpy as np

from autovoice.daemon.playback import Job
from autovoice.daemon.text_feed import TextFeed
from autovoice.engines import Synthesizer
from tests.conftest import EXACT


def test_feed_hands_over_ready_pieces_and_wakes_the_waiter():
    feed = TextFeed()
    assert feed.take() is None and not feed.wait(0.01)
    feed.add("Hello the")
    assert feed.take() is None  # "the" may still grow
    woke: list[float] = []

    def waiter() -> None:
        feed.wait(5.0)
        woke.append(time.monotonic())

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)
    sent = time.monotonic()
    feed.add("re. How")
    thread.join(5)
    assert woke and woke[0] - sent < 0.5
    assert feed.take() == "Hello there."
    feed.add(" are you, friend")
    assert feed.take() == "How are you,"
    assert not feed.exhausted
    feed.end()
    assert feed.wait(0.01) and feed.take() == "friend" and feed.exhausted
    feed.add("ignored after the end")
    assert feed.take() is None and feed.text_bytes == len("Hello there. How are you, friend")


def test_first_text_time_is_the_first_non_blank_delta():
    feed = TextFeed()
    feed.add("  ", received_s=1.0)
    assert feed.first_text_s is None
    feed.add("Hi", received_s=2.0)
    feed.add(" there", received_s=3.0)
    assert feed.first_text_s == 2.0


def test_stream_job_numbers_on_and_equals_the_joined_text(onnx_synth: Synthesizer):
    feed = TextFeed()
    job = Job(onnx_synth, EXACT, 1.0, (), feed=feed)
    assert job.next_piece() is None and job.waiting
    pieces = []
    feed.add("One sentence here. ")
    while (piece := job.next_piece()) is not None:
        pieces.append(piece)
    assert pieces and job.waiting
    feed.add("And a second one, with a clause.")
    feed.end()
    while (piece := job.next_piece()) is not None:
        pieces.append(piece)
    assert not job.waiting
    starts = [p.start for p in pieces]
    assert starts == [0, *np.cumsum([len(p.samples) for p in pieces])[:-1].tolist()]
    keys = [p.key for p in pieces]
    assert keys == sorted(keys) and len(set(keys)) >= 3
    streamed = np.concatenate([p.samples for p in pieces])
    # the stream's first text drops its quiet lead-in, as any utterance's start does
    first = list(onnx_synth.speak("One sentence here.", EXACT, trim_lead_in=True))
    rest = list(onnx_synth.speak("And a second one, with a clause.", EXACT))
    expected = np.concatenate([c.samples for c in first + rest])
    np.testing.assert_array_equal(streamed, expected)
