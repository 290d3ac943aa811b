"""One Wyoming TTS request on a connection: a `synthesize`, or a stream (`synthesize-start`,
`synthesize-chunk`s, `synthesize-stop`), and the audio its synthesis job delivers.

Text that arrives before the request's turn (or while its voice loads) waits here and goes to
the job when it opens. A stream's deltas go through `TextAccumulator`, which hands out a piece
as soon as the text so far holds one worth speaking (a clause, or a few words), never a broken
word; the rest comes out at `synthesize-stop`.

Thread: event loop, except `deliver` (a synthesis worker). RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from autovoice.daemon.synthesis_pool import JobAudio, JobEnded, SynthesisJob

__all__ = ["Request", "VoiceChoice"]


@dataclass(frozen=True)
class VoiceChoice:
    """The voice a request asks for (`synthesize`'s or `synthesize-start`'s `voice`).

    Attributes:
        name: A voice name from `info` (None: by language, else the daemon's voice).
        language: A language code, used when there is no name.
        speaker: A speaker name or id of a multi-speaker voice.
    """

    name: str | None = None
    language: str | None = None
    speaker: str | None = None

    @classmethod
    def from_data(cls, data: Any) -> VoiceChoice:
        """Read the `voice` object of an event's data.

        Raises:
            ValueError: it is not an object of strings.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("`voice` must be an object")
        values = {}
        for key in ("name", "language", "speaker"):
            value = data.get(key)
            if value is not None and not isinstance(value, (str, int)):
                raise ValueError(f"`voice.{key}` must be a string")
            values[key] = None if value is None or value == "" else str(value)
        return cls(**values)


@dataclass(eq=False)
class Request:
    """A request's text, its job once it has one, and the audio waiting to be sent.

    Attributes:
        voice: The voice asked for.
        streaming: True for a `synthesize-start` stream (it ends with `synthesize-stopped`).
        received_s: `time.monotonic()` when it arrived.
        items: The job's audio and end, in order (filled from the worker thread).
    """

    voice: VoiceChoice
    streaming: bool
    received_s: float = field(default_factory=time.monotonic)
    items: asyncio.Queue = field(default_factory=asyncio.Queue)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    _pending: list[str] = field(default_factory=list)
    _finished: bool = False
    _cancelled: bool = False
    _job: SynthesisJob | None = None
    _accumulator: Any = None
    _text_bytes: int = 0
    _compat_text: str | None = None

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called."""
        return self._cancelled

    @property
    def text_bytes(self) -> int:
        """UTF-8 bytes of text received so far (stream deltas, or the whole text)."""
        return self._text_bytes

    # -- text in ---------------------------------------------------------------------------

    def whole(self, text: str) -> None:
        """A `synthesize`'s text: all of it, at once."""
        self._text_bytes = len(text.encode("utf-8"))
        self._add(text)
        self.finish()

    def delta(self, text: str) -> None:
        """A `synthesize-chunk`'s text: speak what is ready of the stream so far."""
        if self._accumulator is None:
            from autovoice.engines.text_stream import TextAccumulator

            self._accumulator = TextAccumulator()
        self._text_bytes += len(text.encode("utf-8"))
        for piece in self._accumulator.feed(text):
            self._add(piece)

    def compat_text(self, text: str) -> None:
        """The full text that Home Assistant repeats in a `synthesize` inside a stream (for
        servers without streaming). It is not spoken again; it is used only when the stream
        had no deltas at all."""
        self._compat_text = text

    def finish(self) -> None:
        """No more text (`synthesize-stop`, or a whole text)."""
        if self._finished:
            return
        if self._accumulator is not None:
            for piece in self._accumulator.finish():
                self._add(piece)
        elif self.streaming and self._compat_text:
            self._add(self._compat_text)
        self._finished = True
        if self._job is not None:
            self._job.finish()

    # -- the job ---------------------------------------------------------------------------

    def attach(self, job: SynthesisJob) -> None:
        """Its job opened: hand it the text that waited, and the end if it came."""
        self._job = job
        for piece in self._pending:
            job.feed(piece)
        self._pending.clear()
        if self._finished:
            job.finish()
        if self._cancelled:
            job.cancel()

    def deliver(self, item: JobAudio | JobEnded) -> None:
        """The job's `deliver` (worker thread): queue the item for the connection."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self._loop.call_soon_threadsafe(self.items.put_nowait, item)

    def consumed(self, samples: int) -> None:
        """The audio was written to the client."""
        if self._job is not None:
            self._job.consumed(samples)

    def cancel(self) -> None:
        """Stop its synthesis now (the client went away or the daemon stops)."""
        self._cancelled = True
        if self._job is not None:
            self._job.cancel()

    def _add(self, piece: str) -> None:
        if self._job is not None:
            self._job.feed(piece)
        else:
            self._pending.append(piece)
