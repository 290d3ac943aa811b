"""Non-RT bookkeeping of `AudioOutput`'s outstanding utterances, and the events made from them.

The writer registers each utterance (`add`) under the sequence number of its render slot; the
event thread turns the moments the callback recorded in those slots into `FirstAudio` /
`UtterancePlayed` events (`collect`), retiring finished utterances in order; `wait_played`
waiters are released as utterances finish. All of it runs under one condition lock, never on
the audio callback.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from autovoice.audio_io.events import FirstAudio, PlaybackEvent, UtterancePlayed
from autovoice.audio_io.render import MAX_UTTERANCES, Renderer

__all__ = ["FINISHED_IDS_KEPT", "Utterance", "UtteranceBook", "first_audio_event"]

FINISHED_IDS_KEPT = 1024
"""Finished utterance ids remembered for `wait_played` after they are retired."""


@dataclass
class Utterance:
    """Non-RT bookkeeping of one utterance.

    Attributes:
        utterance_id: The id given to `AudioOutput.begin_utterance`.
        seq: Its render slot's sequence number.
        abort_gen: The output's abort generation when it began; a later `abort()` makes it stale.
        done: Set once it is finished (played or dropped).
        first_sent: True once its `FirstAudio` event was made.
        finished: True once its `UtterancePlayed` event was made.

    Thread: writer creates it; fields change under the book's lock. RT-safe: no.
    """

    utterance_id: int
    seq: int
    abort_gen: int
    done: threading.Event = field(default_factory=threading.Event)
    first_sent: bool = False
    finished: bool = False


def first_audio_event(uid: int, t: np.ndarray, rate_hz: int, latency_s: float) -> FirstAudio:
    """The `FirstAudio` event for a slot's first-frame moment.

    Args:
        uid: The utterance id.
        t: [monotonic, currentTime, outputBufferDacTime, offset_frames] as the callback recorded
            them (the PortAudio times are NaN when the frame was discarded while no stream ran).
        rate_hz: The stream rate (0: unknown, taken as 1).
        latency_s: PortAudio's reported output latency, used when the stream times are missing.

    Thread: event thread. RT-safe: no.
    """
    mono, pa_now, pa_dac, offset = (float(v) for v in t)
    rate = rate_hz or 1
    dac = pa_dac + offset / rate
    latency = dac - pa_now if pa_now > 0 and pa_dac > 0 else latency_s + offset / rate
    return FirstAudio(uid, mono, dac, latency, mono + latency)


class UtteranceBook:
    """Outstanding utterances by slot sequence number, plus recently finished ids.

    Thread: `add`/`wait_for_room` the writer; `collect` the event thread; `wait_played` and
    `finish_all` any non-RT thread. RT-safe: no.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._utts: dict[int, Utterance] = {}  # seq -> utt, outstanding
        self._finished_ids: OrderedDict[int, bool] = OrderedDict()
        self._head = 0  # first seq not yet finished (event thread)

    @property
    def head_seq(self) -> int:
        """The first slot sequence number not yet retired. Thread: any. RT-safe: no."""
        return self._head

    def wait_for_room(self, renderer: Renderer, timeout_s: float) -> bool:
        """Wait until fewer than `MAX_UTTERANCES` slots up to `renderer.slot_tail` are outstanding.

        Returns:
            True when there is room, False on timeout.

        Thread: writer. RT-safe: no.
        """
        with self._lock:
            return self._lock.wait_for(
                lambda: renderer.slot_tail - self._head < MAX_UTTERANCES, timeout=timeout_s
            )

    def add(self, utt: Utterance) -> None:
        """Register an utterance before its slot is published. Thread: writer. RT-safe: no."""
        with self._lock:
            self._utts[utt.seq] = utt

    def wait_played(self, utterance_id: int, timeout_s: float) -> bool:
        """Wait until the utterance is finished.

        Returns:
            True once it is finished, False on timeout or for an unknown id.

        Thread: any non-RT. RT-safe: no.
        """
        uid = int(utterance_id)
        with self._lock:
            if uid in self._finished_ids:
                return True
            utt = next((u for u in self._utts.values() if u.utterance_id == uid), None)
        if utt is None:
            return False
        return utt.done.wait(timeout_s)

    def collect(self, renderer: Renderer, rate_hz: int, latency_s: float) -> list[PlaybackEvent]:
        """Turn the moments recorded in the render slots into events; retire finished utterances.

        Args:
            renderer: Whose slots to read.
            rate_hz: The stream rate (for `first_audio_event`).
            latency_s: PortAudio's reported output latency (for `first_audio_event`).

        Returns:
            The new events, in slot order.

        Thread: event thread. RT-safe: no.
        """
        events: list[PlaybackEvent] = []
        with self._lock:
            for seq in range(self._head, renderer.slot_tail):
                utt = self._utts.get(seq)
                if utt is None or utt.finished:
                    continue
                t = renderer.first_moment(seq)
                if t is not None and not utt.first_sent:
                    utt.first_sent = True
                    events.append(first_audio_event(utt.utterance_id, t, rate_hz, latency_s))
                played = renderer.played_at(seq)
                if played is not None:
                    events.append(self._finish(utt, played, aborted=False))
                elif renderer.was_aborted(seq):
                    events.append(self._finish(utt, time.monotonic(), aborted=True))
            while self._head < renderer.slot_tail:
                utt = self._utts.get(self._head)
                if utt is not None and not utt.finished:
                    break
                self._utts.pop(self._head, None)
                self._head += 1
            self._lock.notify_all()
        return events

    def finish_all(self) -> None:
        """Mark every outstanding utterance finished (aborted), making no events.

        Thread: control (non-RT), once the event thread has stopped. RT-safe: no.
        """
        with self._lock:
            for utt in list(self._utts.values()):
                self._finish(utt, time.monotonic(), aborted=True)

    def _finish(self, utt: Utterance, when: float, aborted: bool) -> UtterancePlayed:
        """Mark an utterance finished (lock held)."""
        utt.finished = True
        utt.done.set()
        self._finished_ids[utt.utterance_id] = True
        while len(self._finished_ids) > FINISHED_IDS_KEPT:
            self._finished_ids.popitem(last=False)
        return UtterancePlayed(utt.utterance_id, when, aborted)
