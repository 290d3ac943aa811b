"""Incremental text -> pieces ready to synthesise (an LLM's answer, stdin, a Wyoming stream).

Text arrives in deltas that split words and numbers anywhere ("Thurs" + "day", "12" + "3.45").
`TextAccumulator` releases a piece as soon as the text so far holds one that can be spoken
without changing how it sounds later:

- a clause or sentence: ``. ! ? ; : ,`` (optionally followed by closing quotes or brackets) and
  then whitespace; the whitespace is enough, the next sentence's first letter is not awaited.
  A ``.`` after an abbreviation ("Dr.", "e.g.", "U.S."), an initial ("J.") or a lone list number
  ("1.") is no break. A ``.`` at the very end of the text so far waits for whitespace or
  `finish`, since "3." may become "3.5"; the other marks wait for whitespace too ("3:" may
  become "3:30", "1," may become "1,000").
- a blank line (paragraph end), and CJK sentence marks (``。！？``), which need no whitespace.
- a run of complete words without any of those: once `min_words` words have come (each followed
  by whitespace, so no word is ever split), cut at the last whitespace that does not follow an
  English function word ("Your next meeting | is with the ..."; with none, wait up to twice
  the words). Once speech has started there is less hurry, so each released piece doubles the
  words the next such cut needs (up to 8 x `min_words`); fewer cuts inside a clause sound
  better.
- text that grows past `max_chars` without a break is cut at the last whitespace that keeps the
  piece within `max_chars` (a single longer word stays whole, up to `LONGEST_WORD` characters:
  longer runs without whitespace are cut there, so a hostile stream costs linear work).

Pieces are stripped of surrounding whitespace and never empty; joined with spaces they give the
input text with its whitespace normalised (CJK pieces join without spaces).

Thread: any, one caller at a time (no locks). RT-safe: no.
"""

from __future__ import annotations

import enum
import re

__all__ = ["DEFAULT_MAX_CHARS", "DEFAULT_MIN_WORDS", "LONGEST_WORD", "TextAccumulator"]

#: Words without punctuation after which the first piece is released.
DEFAULT_MIN_WORDS = 4
#: Longest piece released without a break (unless one word is longer).
DEFAULT_MAX_CHARS = 250
#: Text this long without whitespace (a URL, a hash, unspaced CJK) is cut anyway.
LONGEST_WORD = 1000
#: The word threshold grows x2 per released piece up to min_words << this.
_MAX_WORD_SHIFT = 3

_CLAUSE_MARKS = frozenset(",;:!?")
_CJK_BREAKS = frozenset("。！？")
_CLOSERS = frozenset("\"')]}»”’」』）")
_OPENERS = "\"'([{«“‘「『（"
#: Words (lowercase, without the dot) whose dot never ends a sentence.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "fig", "figs", "approx"}
    | {"ca", "cf", "capt", "lt", "sgt", "rev", "dept", "vol", "pp"}
)
#: English words a phrase rarely ends on: a piece cut by word count does not end on them.
_FUNCTION_WORDS_TEXT = (
    "a an the and or but nor so of in on at to for from with by as into onto about over under"
    " than that which who whom whose what is are was were be been being am has have had do does"
    " did will would shall should can could may might must not my your his her its our their"
    " this these those if then when while because i you he she it we they me him us them"
    " there very just also"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
#: "e.g", "i.e", "U.S", "a.m": single letters joined by dots.
_DOTTED = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")


class _End(enum.Enum):
    """How a word ends."""

    WORD = "word"  # ordinary: a piece may be cut after it once enough words have come
    JOINED = "joined"  # abbreviation, initial or list number: never cut after it
    BREAK = "break"  # a clause or sentence ends: release


class TextAccumulator:
    """Turns text that arrives in arbitrary deltas into pieces ready to synthesise.

    Args:
        min_words: Complete words without punctuation after which the first piece is released.
        max_chars: Pieces are cut at whitespace before they grow past this many characters.

    Raises:
        ValueError: `min_words` < 1 or `max_chars` < 1.
    """

    def __init__(
        self, min_words: int = DEFAULT_MIN_WORDS, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.min_words = min_words
        self.max_chars = max_chars
        self._buf = ""
        self._pos = 0  # self._buf[:self._pos] has been scanned
        self._word_ends: list[int] = []  # whitespace right after a word, in self._buf[:self._pos]
        self._released = 0
        self._run = 0  # characters scanned since the last whitespace

    def feed(self, delta: str) -> list[str]:
        """Add `delta`; return the pieces that became speakable with it (often none)."""
        self._buf += delta
        out: list[str] = []
        while self._pos < len(self._buf):
            i = self._pos
            self._pos += 1
            char = self._buf[i]
            prev = self._buf[i - 1] if i else ""
            if char.isspace():
                self._run = 0
                if prev and not prev.isspace():
                    kind = self._word_end_kind(i)
                    if kind is not _End.JOINED:
                        self._word_ends.append(i)
                    self._limit_length(out)
                    if kind is _End.BREAK:
                        self._take(self._pos - 1, out)
                elif char == "\n" and self._blank_line_at(i):
                    self._take(i, out)
            elif prev in _CJK_BREAKS and char not in _CLOSERS and char not in _CJK_BREAKS:
                self._take(i, out)
                self._run = 1
            else:
                self._run += 1
                if self._run > LONGEST_WORD:  # no word is this long: bound work and delay
                    self._take(i, out)
                    self._run = 1
        if len(self._word_ends) >= self._word_threshold():
            end = self._phrase_end()
            if end is not None:
                self._take(end, out)
        return out

    def finish(self) -> list[str]:
        """Return the rest at the end of the stream; the accumulator is then empty and reusable."""
        out = self.feed(" ") if self._buf else []
        rest = self._buf.strip()
        if rest:
            out.append(rest)
        self._buf = ""
        self._pos = 0
        self._word_ends = []
        self._released = 0
        self._run = 0
        return out

    @property
    def pending(self) -> str:
        """Text received but not yet released (whitespace as received)."""
        return self._buf

    def _word_threshold(self) -> int:
        return self.min_words << min(self._released, _MAX_WORD_SHIFT)

    def _take(self, end: int, out: list[str]) -> None:
        """Release self._buf[:end] as a piece (if it holds any text) and keep the rest."""
        piece = self._buf[:end].strip()
        self._buf = self._buf[end:]
        self._pos -= end
        self._word_ends = [e - end for e in self._word_ends if e > end]
        if piece:
            out.append(piece)
            self._released += 1

    def _phrase_end(self) -> int | None:
        """The last word end not right after a function word ("the", "is", "with"), so a
        piece cut by word count ends where a phrase may ("Your next meeting | is with ...").
        None (wait for more words) when there is none after the first word, until twice the
        threshold has come; then the last word end."""
        ends = self._word_ends
        for end in reversed(ends[1:]):
            word = self._buf[self._word_start(end) : end].strip(_OPENERS + "".join(_CLOSERS))
            if word.lower() not in _FUNCTION_WORDS:
                return end
        return ends[-1] if len(ends) >= 2 * self._word_threshold() else None

    def _word_start(self, end: int) -> int:
        """Where the word that ends at `end` starts."""
        start = end
        while start > 0 and not self._buf[start - 1].isspace():
            start -= 1
        return start

    def _limit_length(self, out: list[str]) -> None:
        """Cut at the last word end that fits if the piece so far is longer than max_chars."""
        end = self._pos - 1  # the whitespace just scanned
        start = len(self._buf) - len(self._buf.lstrip())
        if end - start <= self.max_chars:
            return
        fits = [e for e in self._word_ends if e < end and e - start <= self.max_chars]
        if fits:
            self._take(fits[-1], out)
        elif self._word_ends and self._word_ends[0] < end:
            self._take(self._word_ends[0], out)  # the first word alone is too long

    def _blank_line_at(self, i: int) -> bool:
        """True if the newline at i ends a blank line that follows some text."""
        j = i - 1
        while j >= 0 and self._buf[j].isspace():
            if self._buf[j] == "\n":
                return bool(self._buf[:j].strip())
            j -= 1
        return False

    def _word_end_kind(self, i: int) -> _End:
        """How the word that ends just before the whitespace at i ends."""
        j = i - 1
        while j >= 0 and self._buf[j] in _CLOSERS:
            j -= 1
        if j < 0:
            return _End.WORD
        mark = self._buf[j]
        if mark not in _CLAUSE_MARKS and mark != ".":
            return _End.WORD
        start = self._word_start(j)
        word = self._buf[start:j].lstrip(_OPENERS).rstrip(".!?;:,")
        if not any(c.isalnum() for c in self._buf[:j]):
            return _End.WORD  # nothing to say yet ("...", "- ")
        if mark != ".":
            return _End.BREAK
        if word.isdigit():
            # "1." alone is a list number: keep it with its item.
            return _End.BREAK if self._buf[:start].strip() else _End.JOINED
        if len(word) == 1 and word.isalpha() and word.isupper():
            return _End.JOINED  # an initial: "J. R. R. Tolkien"
        if word.lower() in _ABBREVIATIONS or _DOTTED.match(word):
            return _End.JOINED  # "Dr. Smith", "e.g. this"
        return _End.BREAK
