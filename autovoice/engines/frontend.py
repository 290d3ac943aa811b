"""Text frontend: text -> sentences -> clauses -> phonemes -> phoneme ids, as Piper does.

Sentences and ids come from the voice's phonemizer (`phonemizers`: espeak-ng with Piper's
post-processing, or piper-tts's own phonemizer for the voice's `phoneme_type`), so a sentence
gives exactly `PiperVoice.phonemize` + `phonemes_to_ids`'s ids. On top of that, long sentences
are split at clause boundaries into synthesis units so they start speaking after their first
clause.

Thread: inference thread (see `phonemizers`). RT-safe: no.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from autovoice.engines.phonemizers import make_phonemizer
from autovoice.engines.voice import VoiceInfo

__all__ = [
    "Frontend",
    "SpeechUnit",
    "clean_text",
    "count_words",
    "split_long_text",
    "word_id_starts",
    "word_symbol_starts",
]

#: Text longer than this is cut (at a sentence end or whitespace) before phonemizing, so memory
#: stays bounded on huge inputs. Shorter texts reach espeak-ng whole, exactly as with Piper.
MAX_BLOCK_CHARS = 4000
_SENTENCE_END = re.compile(r"[.!?。！？]\s+|\n\s*\n")
_CLAUSE_END = re.compile(r"[,:;.!?。！？]\s+|\n\s*\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True)
class SpeechUnit:
    """A piece of text synthesised in one encoder pass: a sentence, or clauses of a long one.

    Attributes:
        phonemes: Phoneme symbols (Piper's decomposition).
        ids: Phoneme ids with BOS/EOS and padding, ready for the model.
        sentence_index: Which sentence of the text it belongs to (0-based).
        ends_sentence: True for the last unit of a sentence.
    """

    phonemes: tuple[str, ...]
    ids: tuple[int, ...]
    sentence_index: int
    ends_sentence: bool


def clean_text(text: str) -> str:
    """Replace control characters (other than tab/newline) and lone surrogates with spaces."""
    text = _CONTROL.sub(" ", text)
    return text.encode("utf-8", "replace").decode("utf-8").replace("\ufffd", " ")


def word_symbol_starts(phonemes: list[str] | tuple[str, ...]) -> list[int]:
    """Index of each word's first symbol; words are runs of symbols between `" "` symbols.

    >>> word_symbol_starts(list(" ab c"))
    [1, 4]
    """
    starts: list[int] = []
    inside = False
    for index, symbol in enumerate(phonemes):
        if symbol == " ":
            inside = False
        elif not inside:
            starts.append(index)
            inside = True
    return starts


def count_words(phonemes: list[str] | tuple[str, ...]) -> int:
    """Words of a phoneme sequence (see `word_symbol_starts`).

    >>> count_words(list(" həlˈoʊ, wˈɜːld. "))
    2
    """
    return len(word_symbol_starts(phonemes))


def word_id_starts(
    phonemes: list[str] | tuple[str, ...], id_map: dict[str, list[int]]
) -> list[int]:
    """Index in `phonemes_to_ids(phonemes, id_map)` of each word's first phoneme id.

    Piper's ids are BOS, pad, then each phoneme's ids followed by a pad, then EOS; phonemes
    missing from the map have no ids.

    >>> word_id_starts(["a", "b", " ", "c"], {"^": [1], "_": [0], "$": [2], "a": [5],
    ...                                        "b": [6], " ": [3], "c": [7]})
    [2, 8]
    """
    pad = len(id_map["_"])
    id_index: list[int] = []  # where each symbol's ids begin
    index = len(id_map["^"]) + pad
    for symbol in phonemes:
        id_index.append(index)
        if symbol in id_map:
            index += len(id_map[symbol]) + pad
    return [id_index[i] for i in word_symbol_starts(phonemes)]


def split_long_text(text: str, max_chars: int = MAX_BLOCK_CHARS) -> Iterator[str]:
    """Yield blocks of at most `max_chars`, cut after a sentence end, else at whitespace."""
    start = 0
    length = len(text)
    while length - start > max_chars:
        window = text[start : start + max_chars]
        cut = 0
        for match in _SENTENCE_END.finditer(window):
            cut = match.end()
        if cut == 0:
            cut = window.rfind(" ") + 1 or window.rfind("\n") + 1 or max_chars
        yield text[start : start + cut]
        start += cut
    if start < length:
        yield text[start:]


class Frontend:
    """Turns text into `SpeechUnit`s for one voice.

    Args:
        voice: The voice whose phonemizer (by `phoneme_type`) and phoneme map are used.
        max_unit_phonemes: Sentences longer than this are split into clause groups.
        first_unit_phonemes: The first unit of a text is at most this long (cut at clauses,
            else at a word boundary), so the first audio of a long sentence comes early; 0 = no
            special first unit.

    Raises:
        VoiceError: the voice's phonemizer cannot be had (its package is not installed).
    """

    def __init__(
        self, voice: VoiceInfo, max_unit_phonemes: int = 200, first_unit_phonemes: int = 0
    ) -> None:
        self.voice = voice
        self.max_unit_phonemes = max_unit_phonemes
        self.first_unit_phonemes = first_unit_phonemes
        self._phonemizer = make_phonemizer(voice)

    def sentences(self, text: str) -> Iterator[list[list[str]]]:
        """Yield each sentence as its list of clauses (each a list of phoneme symbols)."""
        text = clean_text(text)
        for block in split_long_text(text):
            if block.strip():
                yield from self._phonemizer.sentences(block)

    def units(self, text: str) -> Iterator[SpeechUnit]:
        """Yield synthesis units lazily (memory stays bounded for any text length)."""
        for index, clauses in enumerate(self.sentences(text)):
            first_limit = self.first_unit_phonemes if index == 0 else 0
            groups = _pack(clauses, self.max_unit_phonemes, first_limit)
            for number, group in enumerate(groups):
                phonemes = list(group)
                if not any(p.strip() for p in phonemes):
                    continue
                yield SpeechUnit(
                    phonemes=tuple(phonemes),
                    ids=tuple(self._phonemizer.ids(phonemes)),
                    sentence_index=index,
                    ends_sentence=number == len(groups) - 1,
                )

    def sentence_ids(self, text: str) -> list[list[int]]:
        """Piper-equivalent ids, one list per whole sentence (no clause splitting)."""
        return [
            self._phonemizer.ids([p for c in clauses for p in c])
            for clauses in self.sentences(text)
        ]

    def word_id_starts(self, phonemes: list[str] | tuple[str, ...]) -> list[int]:
        """Index in this unit's ids of each word's first phoneme id (see `word_id_starts`;
        the phonemizer knows where each symbol's ids begin)."""
        starts = self._phonemizer.symbol_id_starts(phonemes)
        return [starts[i] for i in word_symbol_starts(phonemes)]

    def words_before(self, text: str, offsets: list[int] | tuple[int, ...]) -> list[int]:
        """For each character offset into `text` (ascending), how many of the words that `units`
        makes of `text` come before it: the index of the word an index mark there precedes.

        Counted by phonemizing the text before the offset, from the last clause or sentence end
        on (word counts add up over clauses), so numbers and abbreviations that espeak-ng speaks as
        several words count as it speaks them. An offset inside a word counts that word as
        after it. espeak-ng joins some short words ("of the" -> one word) unless a mark is
        between them; then the mark's word is the one after the joined pair.
        """
        result: list[int] = []
        base, base_words = 0, 0
        for offset in offsets:
            offset = min(max(offset, base), len(text))
            for match in _CLAUSE_END.finditer(text, base, offset):
                end = match.end()
                base_words += self._count(text[base:end])
                base = end
            words = base_words + self._count(text[base:offset])
            inside = 0 < offset < len(text) and not text[offset - 1].isspace()
            if inside and not text[offset].isspace() and words > 0:
                words -= 1  # inside a word: the mark precedes that word
            result.append(words)
        return result

    def _count(self, text: str) -> int:
        return sum(count_words([p for c in clauses for p in c]) for clauses in self.sentences(text))


def _pack(clauses: list[list[str]], max_phonemes: int, first_limit: int = 0) -> list[list[str]]:
    """Group consecutive clauses into units of at most `max_phonemes` (one clause may exceed).

    With `first_limit`, the first unit is at most that long: clauses are packed up to it, and a
    first clause longer than it is cut at the last word boundary before the limit.
    """
    total = sum(len(c) for c in clauses)
    if first_limit and total > first_limit:
        head, rest = _take_first(clauses, first_limit)
        return [head, *_pack(rest, max_phonemes)] if rest else [head]
    if total <= max_phonemes:
        return [[p for c in clauses for p in c]]
    groups: list[list[str]] = []
    current: list[str] = []
    for clause in clauses:
        if current and len(current) + len(clause) > max_phonemes:
            groups.append(current)
            current = []
        current = current + clause
    if current:
        groups.append(current)
    return groups


def _take_first(clauses: list[list[str]], limit: int) -> tuple[list[str], list[list[str]]]:
    """Split off a first piece of at most `limit` phonemes (whole clauses, else whole words)."""
    head: list[str] = []
    for number, clause in enumerate(clauses):
        if len(head) + len(clause) <= limit:
            head = head + clause
            continue
        if head:
            return head, clauses[number:]
        cut = _word_cut(clause, limit)
        if cut is None:
            return clause, clauses[number + 1 :]
        return clause[:cut], [clause[cut:], *clauses[number + 1 :]]
    return head, []


def _word_cut(phonemes: list[str], limit: int) -> int | None:
    """Index just after the last space at or before `limit` (not in the first half), or None."""
    for index in range(min(limit, len(phonemes) - 1), limit // 2, -1):
        if phonemes[index - 1] == " ":
            return index
    return None
