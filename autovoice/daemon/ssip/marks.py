"""When an SSIP message's index marks are sent (`700`): at their word, or at an estimate.

With an engine that knows its phoneme durations (onnx), the player reports the utterance sample
where each mark's word starts (`playback.MarkSamples`) and, per output segment, which sample
reached the device when (`playback.Anchor`): a mark is due at the anchor's time plus the audio
between the two samples. Otherwise (other engines, the phrase cache) its time is estimated from
its character offset and the measured speaking speed (seconds per character, learned from
finished messages), counted from its first audio. Either way marks go out in order, each once,
held while the message is paused (docs/SSIP.md, "Index marks").

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from autovoice.daemon.playback import Anchor, MarkSamples
from autovoice.daemon.ssip.session import Session

__all__ = ["CALIBRATION_MIN_CHARS", "SECONDS_PER_CHAR", "MarkTimer", "Track"]

SECONDS_PER_CHAR = 0.06
"""Initial estimate of speech duration per character at rate 1 (refined as messages finish)."""
CALIBRATION_MIN_CHARS = 20
"""Messages shorter than this do not refine the estimate."""


@dataclass
class Track:
    """Event state of one SSIP message."""

    session: Session
    marks: list[tuple[int, str]]
    length: int
    rate: float
    begun: bool = False
    paused_sent: bool = False
    next_mark: int = 0
    due_s: float | None = None
    remaining_s: float | None = None
    handle: asyncio.TimerHandle | None = None
    anchor: Anchor | None = None
    anchor_received_s: float = 0.0
    paused_at_s: float = 0.0
    samples: dict[int, int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """Its marks are timed by where their words are heard (not estimated)."""
        return self.anchor is not None and self.anchor.words


class MarkTimer:
    """Schedules the marks of the messages being spoken on the event loop.

    Args:
        lookup: `lookup(uid)`: the message's `Track`, None once it ended.
        send: `send(uid, track, name)`: send mark `name` (the `700` event).

    Attributes:
        loop: The event loop (set before the first message begins).
        seconds_per_char: The estimate's speaking speed at rate 1.
    """

    def __init__(
        self,
        lookup: Callable[[int], Track | None],
        send: Callable[[int, Track, str], None],
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seconds_per_char = SECONDS_PER_CHAR
        self._lookup = lookup
        self._send = send

    def begin(self, uid: int, track: Track) -> None:
        """Its first audio reached the device: schedule its marks."""
        if track.exact:
            self._schedule_exact(uid, track)
        else:
            self._schedule_estimate(uid, track, time.monotonic())

    def anchor(self, uid: int, track: Track, event: Anchor) -> None:
        """A segment's first sound reached the device (`Anchor`)."""
        track.anchor, track.anchor_received_s = event, time.monotonic()
        if track.begun and not track.paused_sent and track.exact:
            self.stop(track)
            self._schedule_exact(uid, track)

    def samples(self, uid: int, track: Track, event: MarkSamples) -> None:
        """The samples of more marks' words are known (`MarkSamples`)."""
        for number, sample in enumerate(event.samples, event.first):
            track.samples[number] = sample
        if track.begun and not track.paused_sent and track.exact and track.handle is None:
            self._schedule_exact(uid, track)

    def pause(self, track: Track) -> None:
        """Its audio stopped (704): hold its marks."""
        track.paused_at_s = time.monotonic()
        if track.handle is not None and track.due_s is not None:
            track.remaining_s = max(0.0, track.due_s - time.monotonic())
            self.stop(track)

    def resume(self, uid: int, track: Track) -> None:
        """Its audio goes on (705): the marks not yet sent are due again."""
        if track.exact and track.anchor is not None:
            # The audio was held where it was: its anchor moves by the time paused. (A pause of
            # its client took it off the output: the new segment brought a new anchor.)
            if track.anchor_received_s <= track.paused_at_s:
                paused_s = time.monotonic() - track.paused_at_s
                track.anchor = dataclasses.replace(track.anchor, at_s=track.anchor.at_s + paused_s)
            track.remaining_s = None
            self.stop(track)
            self._schedule_exact(uid, track)
        elif track.remaining_s is not None and track.next_mark < len(track.marks):
            # Shift the whole schedule by the time spent paused.
            offset, _ = track.marks[track.next_mark]
            started = time.monotonic() + track.remaining_s - self._estimate_s(track, offset)
            track.remaining_s = None
            self._schedule_estimate(uid, track, started)

    def finish(self, uid: int, track: Track, audio_s: float | None) -> None:
        """It played to its end: send the marks left; `audio_s` refines the estimate."""
        self.stop(track)
        while track.next_mark < len(track.marks):
            self._send_next(uid, track)
        if track.length >= CALIBRATION_MIN_CHARS and audio_s:
            measured = audio_s * track.rate / track.length
            self.seconds_per_char = 0.7 * self.seconds_per_char + 0.3 * measured

    def stop(self, track: Track) -> None:
        """Cancel its pending timer."""
        if track.handle is not None:
            track.handle.cancel()
            track.handle = None

    def _estimate_s(self, track: Track, offset: int) -> float:
        return offset * self.seconds_per_char / max(track.rate, 0.1)

    def _schedule_estimate(self, uid: int, track: Track, started_s: float) -> None:
        # Marks at the very start are due at once; later ones at their estimated time.
        while track.next_mark < len(track.marks):
            offset, _ = track.marks[track.next_mark]
            if offset >= track.length:
                return  # a mark at the end comes with the end
            due = started_s + self._estimate_s(track, offset)
            if not self._wait(uid, track, due, started_s):
                return

    def _schedule_exact(self, uid: int, track: Track) -> None:
        # Each mark when the start of its word reaches the device. A mark whose word is not
        # made yet waits for its `MarkSamples` (or for the end).
        anchor = track.anchor
        assert anchor is not None
        while track.next_mark < len(track.marks):
            offset, _ = track.marks[track.next_mark]
            sample = track.samples.get(track.next_mark)
            if offset >= track.length or sample is None:
                return
            due = anchor.at_s + (sample - anchor.sample) / anchor.rate_hz
            if not self._wait(uid, track, due, None):
                return

    def _wait(self, uid: int, track: Track, due: float, started_s: float | None) -> bool:
        """Send the next mark now if it is due (True), else set its timer (False)."""
        delay = due - time.monotonic()
        if delay <= 0:
            self._send_next(uid, track)
            return True
        assert self.loop is not None
        track.due_s = due
        track.handle = self.loop.call_later(delay, self._due, uid, started_s)
        return False

    def _due(self, uid: int, started_s: float | None) -> None:
        track = self._lookup(uid)
        if track is None:
            return
        track.handle = None
        self._send_next(uid, track)
        if started_s is None:
            self._schedule_exact(uid, track)
        else:
            self._schedule_estimate(uid, track, started_s)

    def _send_next(self, uid: int, track: Track) -> None:
        _, name = track.marks[track.next_mark]
        track.next_mark += 1
        self._send(uid, track, name)
