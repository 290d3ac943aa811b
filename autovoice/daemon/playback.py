"""What the player keeps of an utterance while it speaks, and while a pause of its client holds
it: the audio source, the pieces written since the start of the clause that is playing, and
where to continue.

A per-client pause takes an utterance off the output (docs/SSIP.md, "Pause"). It continues from
the start of the clause (synthesis unit) that was playing: the player records the output position
of each piece it writes, forgets the pieces of clauses that have played out, and on the pause
keeps the pieces from that clause on (`Job.take_off`). They are written again first when the
utterance continues; the synthesizer's chunk generator, suspended meanwhile, then goes on.

Thread: the player thread, except `Playing`'s events and flags (also the audio event thread).
RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from autovoice.audio_io.render import SILENCE_THRESHOLD
from autovoice.daemon.scheduler import Utterance
from autovoice.daemon.text_feed import TextFeed
from autovoice.engines import AudioChunk, SpeakOptions, Synthesizer

__all__ = [
    "CACHE_WRITE_S",
    "Anchor",
    "Continued",
    "Job",
    "MarkSamples",
    "Piece",
    "Playing",
    "clause_start",
    "first_loud",
]

CACHE_WRITE_S = 0.05
"""Cached audio is written in slices this long, so a cancel lands between them."""


@dataclass(frozen=True)
class Continued:
    """Internal event, never sent on the native socket: the audio of an utterance that a pause
    of its client took off the output reached the device again (SSIP's 705 RESUMED)."""

    utterance: int


@dataclass(frozen=True)
class Anchor:
    """Internal event, never sent on the native socket: where an utterance's audio is, to time
    its index marks (docs/SSIP.md, "Index marks"). Sent when a segment's first sound reached
    the device (just before `first_audio` or `Continued`).

    Attributes:
        utterance: The utterance.
        at_s: `time.monotonic()` when utterance sample `sample` reached the device.
        sample: The segment's first sound, as an utterance sample (voice rate, as
            `AudioChunk.start_sample`).
        rate_hz: Utterance samples played per second (the voice's rate times the pitch factor).
        words: The engine reports where words start (`MarkSamples` will come for its marks).
    """

    utterance: int
    at_s: float
    sample: int
    rate_hz: float
    words: bool


@dataclass(frozen=True)
class MarkSamples:
    """Internal event, never sent on the native socket: the utterance samples where index
    marks `first`, `first + 1`, ... are heard (the start of the word each precedes), sent as
    soon as the engine has made those words.

    Attributes:
        utterance: The utterance.
        first: Index of the first of them among the utterance's marks (`SpeakPayload.marks`).
        samples: Their samples, as `Anchor.sample`.
    """

    utterance: int
    first: int
    samples: tuple[int, ...]


def first_loud(piece: Piece) -> int | None:
    """The utterance sample of the piece's first sound, or None when it is silent.

    >>> first_loud(Piece(0, np.array([0.0, 1e-6, 0.5], dtype=np.float32), start=100))
    102
    """
    loud = np.flatnonzero(np.abs(piece.samples) > SILENCE_THRESHOLD)
    return piece.start + int(loud[0]) if len(loud) else None


@dataclass
class Piece:
    """Audio at the voice's rate, written (or to be written) in one go.

    Attributes:
        key: Its clause (`AudioChunk.clause_index`), or its slice number for cached audio.
        samples: The audio.
        pos: Output position where it was written (None: not written).
        start: Its first sample's offset within the utterance (`AudioChunk.start_sample`).
    """

    key: int
    samples: np.ndarray
    pos: int | None = None
    start: int = 0


def clause_start(pieces: list[Piece], pos: int) -> int:
    """Index of the first piece of the clause that output position `pos` is in (0: none is).

    >>> ps = [Piece(0, np.zeros(1), 0), Piece(0, np.zeros(1), 10), Piece(1, np.zeros(1), 20)]
    >>> clause_start(ps, 5), clause_start(ps, 19), clause_start(ps, 20), clause_start(ps, -1)
    (0, 0, 2, 0)
    """
    at = -1
    for i, piece in enumerate(pieces):
        if piece.pos is None or piece.pos > pos:
            break
        at = i
    if at < 0:
        return 0
    key = pieces[at].key
    while at > 0 and pieces[at - 1].key == key:
        at -= 1
    return at


@dataclass
class Job:
    """An utterance's audio source and progress, kept while a pause of its client holds it
    (as `Utterance.resume_state`).

    Attributes:
        synth, options, pitch: How it is synthesised.
        key: Its phrase-cache key.
        cached: Audio from the phrase cache (then `chunks` is None).
        chunks: The synthesizer's chunk generator (None once exhausted).
        pieces: Every chunk made so far, for the phrase cache (None: not cached).
        written: Pieces written in the current segment since the start of the oldest clause
            that may still be playing.
        replay: Pieces to write before the source's next ones (what a pause took off the
            output, from the start of the clause that was playing).
        first: Set once the utterance's first audio reached the device (in any segment).
        segments: Times it was begun on the output.
        stale: A reload replaced its voice while it was held (see `restart`).
        skip_below: Clauses of a restarted source that are skipped (they were played).
        next_clause: Where a restarted source continues when nothing waits in `replay`.
        mark_words: For each index mark, the index of the word it precedes.
        word_starts: Utterance sample of each word made so far (`AudioChunk.word_starts`).
        marks_known: Marks whose sample was reported (`new_marks`).
        feed: An open stream's text (then `chunks` is its current text's generator, and the
            next text is taken from the feed when that runs out); None for a whole text.
        made_samples: Samples made so far (a stream's texts continue each other's numbering).
    """

    synth: Synthesizer
    options: SpeakOptions
    pitch: float
    key: tuple
    cached: np.ndarray | None = None
    chunks: Iterator[AudioChunk] | None = None
    pieces: list[np.ndarray] | None = None
    next_slice: int = 0
    audio_s: float = 0.0
    compute_s: float = 0.0
    written: list[Piece] = field(default_factory=list)
    replay: deque[Piece] = field(default_factory=deque)
    first: threading.Event = field(default_factory=threading.Event)
    segments: int = 0
    stale: bool = False
    skip_below: int = 0
    next_clause: int = 0
    mark_words: tuple[int, ...] = ()
    word_starts: list[int] = field(default_factory=list)
    marks_known: int = 0
    feed: TextFeed | None = None
    made_samples: int = 0

    @property
    def waiting(self) -> bool:
        """An open stream whose text so far is all synthesised: more text may come."""
        return self.chunks is None and self.feed is not None and not self.feed.exhausted

    def new_marks(self, utterance: int) -> MarkSamples | None:
        """The samples of the marks whose words were made since the last call (None: none)."""
        first = self.marks_known
        while self.marks_known < len(self.mark_words) and self.mark_words[self.marks_known] < len(
            self.word_starts
        ):
            self.marks_known += 1
        if self.marks_known == first:
            return None
        words = self.mark_words[first : self.marks_known]
        return MarkSamples(utterance, first, tuple(self.word_starts[w] for w in words))

    def next_piece(self) -> Piece | None:
        """The next audio to write: what a pause took off first, then the source's next
        (None: the source is exhausted).

        Raises:
            VoiceError, EngineError: from the synthesizer.
        """
        if self.replay:
            return self.replay.popleft()
        if self.cached is not None:
            step = max(1, int(CACHE_WRITE_S * self.synth.sample_rate))
            start = self.next_slice * step
            if start >= len(self.cached):
                return None
            self.next_slice += 1
            return Piece(self.next_slice - 1, self.cached[start : start + step], start=start)
        while True:
            if self.chunks is None:
                text = self.feed.take() if self.feed is not None else None
                if text is None:
                    return None  # the end, or an open stream waiting for text (`waiting`)
                trim = self.made_samples == 0 and self.synth.config.streaming.trim_lead_in
                self.chunks = _continued(
                    self.synth.speak(text, self.options, trim_lead_in=trim),
                    self.next_clause,
                    self.made_samples,
                )
            chunk = next(self.chunks, None)
            if chunk is None:
                self.chunks = None
                if self.feed is None:
                    return None
                continue
            self.made_samples = chunk.start_sample + len(chunk.samples)
            self.compute_s += chunk.compute_s
            self.audio_s += chunk.duration_s
            self.next_clause = chunk.clause_index + (1 if chunk.last_in_clause else 0)
            self.word_starts.extend(chunk.word_starts)
            if chunk.clause_index < self.skip_below:
                continue
            if self.pieces is not None:
                self.pieces.append(chunk.samples)
            return Piece(chunk.clause_index, chunk.samples, start=chunk.start_sample)

    def prune(self, read_pos: int) -> None:
        """Forget written pieces of clauses that played to their end before `read_pos`."""
        if len(self.written) > 1:
            del self.written[: clause_start(self.written, read_pos)]

    def take_off(self, stop_pos: int) -> None:
        """The output stopped at `stop_pos` and was dropped: keep the written pieces from the
        start of the clause playing there, ahead of anything not yet written."""
        keep = self.written[clause_start(self.written, stop_pos) :]
        self.replay.extendleft(reversed(keep))
        self.written = []

    def restart(self, synth: Synthesizer, text: str) -> None:
        """Synthesise `text` again with a reloaded voice, from the clause it would continue
        at (the audio kept of the old voice is dropped)."""
        self.skip_below = self.replay[0].key if self.replay else self.next_clause
        self.replay.clear()
        self.synth, self.stale, self.pieces = synth, False, None
        self.word_starts, self.marks_known = [], 0  # the new voice's words: reported again
        self.chunks = synth.speak(text, self.options)


def _continued(chunks: Iterator[AudioChunk], clause0: int, sample0: int) -> Iterator[AudioChunk]:
    """A stream's next text's chunks, numbered on from the texts before it."""
    try:
        for chunk in chunks:
            if clause0 or sample0:
                chunk = dataclasses.replace(
                    chunk,
                    clause_index=chunk.clause_index + clause0,
                    start_sample=chunk.start_sample + sample0,
                    word_starts=tuple(w + sample0 for w in chunk.word_starts),
                )
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


@dataclass
class Playing:
    """One segment on the output: an utterance from its start, or from where a pause took it
    off (shared with the audio event thread).

    Attributes:
        utt: The utterance.
        segment: The id given to the output's `begin_utterance`.
        first: The utterance's `Job.first`.
        resumed: It continues after a pause took the utterance off.
        played: Set when the output finished with the segment (played or dropped).
        aborted: The output dropped some of it.
        continued_sent: `Continued` was emitted for it.
        stop_pos: Output read position when a pause took it off.
        rate_hz: Utterance samples played per second (`Anchor.rate_hz`).
        loud_sample: Utterance sample of its first sound, once written (`Anchor.sample`).
        heard_s: When its first sound reached the device.
        words: The engine reports where words start (`Anchor.words`).
        anchored: Its `Anchor` was emitted.
        lock: Guards the five above (the player thread and the audio event thread).
    """

    utt: Utterance
    segment: int
    first: threading.Event
    resumed: bool = False
    played: threading.Event = field(default_factory=threading.Event)
    aborted: bool = False
    continued_sent: bool = False
    stop_pos: int | None = None
    rate_hz: float = 0.0
    loud_sample: int | None = None
    heard_s: float | None = None
    words: bool = False
    anchored: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def anchor(self) -> Anchor | None:
        """The segment's `Anchor` once both its first sound's sample and time are known, once
        (caller holds `lock`)."""
        if self.anchored or self.loud_sample is None or self.heard_s is None:
            return None
        self.anchored = True
        return Anchor(self.utt.uid, self.heard_s, self.loud_sample, self.rate_hz, self.words)
