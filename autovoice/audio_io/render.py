"""The real-time half of `AudioOutput`: the PortAudio callback and the utterance slots it marks.

`Renderer.callback` copies the next block from the ring into the device buffer, zero-fills a
shortfall, fades on abort/pause/resume, and records first-audio / played moments of each
utterance into preallocated slot arrays. It never allocates, locks, logs or raises; the only
system call it makes is a non-blocking one-byte pipe write (`WakePipe`) to wake the writer or
the event thread.

Slots are indexed by an utterance's sequence number modulo `MAX_UTTERANCES`. The writer fills a
slot (`open_slot`, `mark_first`, `mark_end`, under its own lock) and publishes it by advancing
`slot_tail`; the callback owns `slot_head` and sets the first/played marks; the event thread
reads those marks (`first_moment`, `played_at`, `was_aborted`) to build events.
"""

from __future__ import annotations

import time

import numpy as np

from autovoice.audio_io.events import WakePipe
from autovoice.audio_io.ring import RingBuffer

__all__ = ["MAX_UTTERANCES", "SCRATCH_FRAMES", "SILENCE_THRESHOLD", "Renderer"]

SILENCE_THRESHOLD = 1e-3
"""A frame whose magnitude exceeds this (-60 dBFS) is audible: `first_audio` marks the first
such frame, as a listener (and `autovoice bench`, at the device) would notice it."""
MAX_UTTERANCES = 256
"""Utterances that may be outstanding (begun and not yet reported finished) at once."""
SCRATCH_FRAMES = 16384
"""Largest block the callback renders; a larger one is played as silence."""


class Renderer:
    """The reader side of the ring: renders device blocks and marks utterance moments.

    Everything the callback touches is allocated here or in `setup`, before the stream starts.

    Attributes:
        ring: The ring buffer read from (None until `setup`).
        slot_tail: Next slot sequence number; the writer advances it to publish a slot.
        slot_head: First slot the callback has not finished with (callback-owned).
        pause_req: True while playback should be held (any thread sets it).
        writer_waiting: True while the writer sleeps for ring space (writer sets it).
        underruns: Callbacks in which the ring ran dry while an utterance was playing.
        pa_underflows: Callbacks PortAudio flagged with `output_underflow`.
        callbacks: Blocks rendered.
        last_cb_mono: `time.monotonic()` of the last rendered block.
        last_clear_mono: `time.monotonic()` when the last `ring.clear()` was carried out
            (0.0: never).

    Args:
        event_wake: Raised when a first-audio or played moment was recorded.
        space_wake: Raised after each block while `writer_waiting` is set.

    Thread: `callback`/`render` the single reader (PortAudio's audio thread, or the event thread
    while no stream runs); slot writes the writer; slot reads the event thread.
    RT-safe: `callback`, `render`; nothing else.
    """

    def __init__(self, event_wake: WakePipe, space_wake: WakePipe) -> None:
        self._event_wake = event_wake
        self._space_wake = space_wake
        self.ring: RingBuffer | None = None

        # Slots shared with the callback (preallocated).
        n = MAX_UTTERANCES
        self.slot_tail = 0  # writer publishes
        self.slot_head = 0  # callback owns
        self._s_active = np.zeros(n, dtype=bool)
        self._s_start = np.zeros(n, dtype=np.int64)
        self._s_first = np.full(n, -1, dtype=np.int64)
        self._s_end = np.full(n, -1, dtype=np.int64)
        self._s_first_done = np.zeros(n, dtype=bool)
        self._s_played = np.zeros(n, dtype=bool)
        self._s_aborted = np.zeros(n, dtype=bool)
        # [monotonic, currentTime, outputBufferDacTime, offset_frames] of the first frame.
        self._s_first_t = np.zeros((n, 4), dtype=np.float64)
        self._s_played_t = np.zeros(n, dtype=np.float64)

        # Callback state.
        self._mono = np.zeros(SCRATCH_FRAMES, dtype=np.float32)
        self._fade_out = np.zeros(0, dtype=np.float32)
        self._fade_in = np.zeros(0, dtype=np.float32)
        self.pause_req = False
        self._paused_out = False
        self._fade_in_pending = False
        self.writer_waiting = False
        self.underruns = 0
        self.pa_underflows = 0
        self.callbacks = 0
        self.last_cb_mono = 0.0
        self.last_clear_mono = 0.0

    def setup(self, ring: RingBuffer, rate_hz: int, fade_s: float) -> None:
        """Attach the ring and build the fade ramps for `rate_hz`, before the stream starts.

        Thread: control (non-RT). RT-safe: no.
        """
        self.ring = ring
        nfade = max(1, int(round(rate_hz * fade_s)))
        ramp = np.linspace(1.0, 0.0, nfade + 1, dtype=np.float32)[1:]
        self._fade_out = ramp
        self._fade_in = ramp[::-1].copy()

    # ------------------------------------------------------------------ writer side (non-RT)
    def open_slot(self, seq: int, start_pos: int) -> None:
        """Reset slot `seq` for an utterance starting at ring position `start_pos`.

        The slot is seen by the callback once `slot_tail` passes `seq`.

        Thread: writer, under its write lock. RT-safe: no.
        """
        i = seq % MAX_UTTERANCES
        self._s_start[i] = start_pos
        self._s_first[i] = -1
        self._s_end[i] = -1
        self._s_first_done[i] = False
        self._s_played[i] = False
        self._s_aborted[i] = False
        self._s_active[i] = True

    def mark_first(self, seq: int, y: np.ndarray) -> None:
        """Record where the utterance's first audible frame will land, if `y` holds it.

        Args:
            seq: The utterance's slot sequence number.
            y: Device-rate frames about to be written at `ring.write_pos`.

        Thread: writer, under its write lock. RT-safe: no.
        """
        i = seq % MAX_UTTERANCES
        if self._s_first[i] >= 0 or not len(y):
            return
        loud = np.abs(y) > SILENCE_THRESHOLD
        k = int(np.argmax(loud))
        if loud[k]:
            self._s_first[i] = self.ring.write_pos + k

    def mark_end(self, seq: int, end_pos: int) -> None:
        """Record the ring position where the utterance ends.

        Thread: writer, under its write lock. RT-safe: no.
        """
        self._s_end[seq % MAX_UTTERANCES] = end_pos

    def drop_unplayed(self, first_seq: int) -> None:
        """Deactivate and mark aborted every published slot from `first_seq` not yet played.

        Thread: any non-RT, under the writer's write lock. RT-safe: no.
        """
        for seq in range(first_seq, self.slot_tail):
            i = seq % MAX_UTTERANCES
            if not self._s_played[i]:
                self._s_active[i] = False
                self._s_aborted[i] = True

    # ------------------------------------------------------------------ event thread side
    def first_moment(self, seq: int) -> np.ndarray | None:
        """[monotonic, currentTime, outputBufferDacTime, offset_frames] of the utterance's first
        audible frame (|x| > SILENCE_THRESHOLD) once the callback has handed it out, else None.

        Thread: event thread. RT-safe: no.
        """
        i = seq % MAX_UTTERANCES
        return self._s_first_t[i] if self._s_first_done[i] else None

    def played_at(self, seq: int) -> float | None:
        """`time.monotonic()` when the utterance's last frame was handed out, else None.

        Thread: event thread. RT-safe: no.
        """
        i = seq % MAX_UTTERANCES
        return float(self._s_played_t[i]) if self._s_played[i] else None

    def was_aborted(self, seq: int) -> bool:
        """True when `drop_unplayed` dropped the utterance. Thread: event thread. RT-safe: no."""
        return bool(self._s_aborted[seq % MAX_UTTERANCES])

    def discard_elapsed(self, rate_hz: int) -> None:
        """While no stream runs, consume the ring in real time so writers and waiters go on.

        Renders (and drops) the frames due since the last block, at most `SCRATCH_FRAMES`.

        Thread: the event thread, as the single reader while no stream runs. RT-safe: no.
        """
        now = time.monotonic()
        frames = int((now - self.last_cb_mono) * rate_hz)
        frames = max(0, min(frames, SCRATCH_FRAMES))
        if frames and self.ring is not None:
            self.render(self._mono[:frames], now, float("nan"), float("nan"))
            self.last_cb_mono = now

    # ------------------------------------------------------------------ callback (RT)
    def callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio callback: `callback(outdata, frames, time, status)`.

        Thread: PortAudio's audio thread. RT-safe: yes.
        """
        if status.output_underflow:
            self.pa_underflows += 1
        if frames > SCRATCH_FRAMES:
            outdata.fill(0.0)
            return
        mono = self._mono[:frames]
        self.render(mono, time.monotonic(), time_info.currentTime, time_info.outputBufferDacTime)
        if outdata.shape[1] == 1:
            outdata[:, 0] = mono
        else:
            outdata[:] = mono[:, None]

    def render(self, mono: np.ndarray, now: float, pa_now: float, pa_dac: float) -> None:
        """Fill `mono` from the ring and record utterance moments.

        Thread: the single reader (the callback, or the event thread while no stream runs).
        RT-safe: yes.
        """
        self.callbacks += 1
        self.last_cb_mono = now
        ring = self.ring
        n = len(mono)
        if self.pause_req:
            if not self._paused_out:
                got = ring.peek_into(mono)  # fade out what would play next, keep it queued
                nf = min(len(self._fade_out), n)
                mono[:nf] *= self._fade_out[:nf]
                mono[nf:] = 0.0
                self._paused_out = True
                self._fade_in_pending = got > 0  # fade back in only what was faded out
            else:
                mono.fill(0.0)
            return
        self._paused_out = False
        clearing = ring.clear_pending
        if clearing:
            self.last_clear_mono = now
        got = ring.read_into(mono, self._fade_out)
        r1 = ring.read_pos
        lead = ring.last_faded  # frames faded out from before a clear's jump
        if clearing:
            self._fade_in_pending = False
        elif self._fade_in_pending:
            self._fade_in_pending = False
            nf = min(len(self._fade_in), got)
            mono[:nf] *= self._fade_in[:nf]
        r0 = r1 - (got - lead)
        head = self.slot_head
        tail = self.slot_tail
        woke = False
        while head < tail:
            i = head % MAX_UTTERANCES
            if not self._s_active[i]:
                head += 1
                continue
            fp = self._s_first[i]
            if fp >= 0 and not self._s_first_done[i] and fp < r1:
                t = self._s_first_t[i]
                t[0] = now
                t[1] = pa_now
                t[2] = pa_dac
                t[3] = lead + max(0, fp - r0)
                self._s_first_done[i] = True
                woke = True
            ep = self._s_end[i]
            if 0 <= ep <= r1:
                self._s_played_t[i] = now
                self._s_played[i] = True
                woke = True
                head += 1
                continue
            if got < n and r1 > self._s_start[i]:
                self.underruns += 1
            break
        self.slot_head = head
        if woke:
            self._event_wake.set()
        if self.writer_waiting:
            self._space_wake.set()
