"""The text of an open stream (a `speak` with `stream`), handed from the event loop to the player.

The front-end `add`s text as it arrives and `end`s the stream; a `TextAccumulator` turns the
deltas into speakable pieces at once, on the loop. The player thread `take`s all pieces ready
so far as one text to synthesise (so a fast producer gives long, well-phrased units and a slow
one gives a clause at a time) and `wait`s, woken at once, while there are none.

Thread: `add`, `end`, `first_text_s` the event loop; `take`, `wait`, `exhausted` the player
thread. RT-safe: no.
"""

from __future__ import annotations

import threading
import time

from autovoice.engines.text_stream import TextAccumulator

__all__ = ["TextFeed"]


class TextFeed:
    """Pieces of a stream's text waiting for the player, and whether more may come.

    Args:
        accumulator: Splits the deltas into speakable pieces (default settings if None).
    """

    def __init__(self, accumulator: TextAccumulator | None = None) -> None:
        self._accumulator = accumulator or TextAccumulator()
        self._cond = threading.Condition()
        self._pieces: list[str] = []
        self._ended = False
        self.text_bytes = 0
        """UTF-8 bytes received so far (the front-end bounds it)."""
        self.first_text_s: float | None = None
        """`time.monotonic()` when the first non-blank text arrived (first-audio latency counts
        from there)."""

    @property
    def ended(self) -> bool:
        """True once `end` was called (no more text will come)."""
        return self._ended

    def add(self, text: str, received_s: float | None = None) -> None:
        """Append a delta (ignored once ended); `received_s`: when it arrived (monotonic)."""
        if self._ended or not text:
            return
        self.text_bytes += len(text.encode("utf-8", "surrogatepass"))
        if self.first_text_s is None and text.strip():
            self.first_text_s = received_s if received_s is not None else time.monotonic()
        self._push(self._accumulator.feed(text), ended=False)

    def end(self) -> None:
        """No more text: what is pending becomes the last piece."""
        if not self._ended:
            self._push(self._accumulator.finish(), ended=True)

    def take(self) -> str | None:
        """All pieces ready so far, joined; None when there are none (yet)."""
        with self._cond:
            if not self._pieces:
                return None
            text = " ".join(self._pieces)
            self._pieces.clear()
            return text

    def wait(self, timeout_s: float) -> bool:
        """Wait until a piece is ready or the stream ended (True), or `timeout_s` passed."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: self._pieces or self._ended, timeout_s))

    @property
    def exhausted(self) -> bool:
        """Ended and every piece taken: the stream's text is all synthesised."""
        with self._cond:
            return self._ended and not self._pieces

    def _push(self, pieces: list[str], ended: bool) -> None:
        with self._cond:
            self._pieces.extend(pieces)
            self._ended = self._ended or ended
            if pieces or ended:
                self._cond.notify_all()
