"""Text -> phoneme symbols -> ids for every `phoneme_type` piper-tts 1.8 knows, as Piper does.

Each phonemizer yields the sentences of a block of text, each as its clauses (lists of phoneme
symbols), such that joining a sentence's clauses and applying `ids` gives exactly
`PiperVoice.phonemize` + `PiperVoice.phonemes_to_ids` (tested per type):

- `espeak`: piper-tts's espeak-ng bridge with Piper's post-processing (language-switch flags
  dropped, clause punctuation kept, NFD, the voice's `vowel_clusters` merged per sentence),
  `[[ raw phonemes ]]` blocks spliced in as Piper does, Arabic (`espeak.voice` "ar")
  diacritized first with Piper's bundled Tashkeel model.
- `text`: the text's own codepoints (NFD); Piper makes the whole text one sentence.
- `hebrew`, `japanese`, `thai`, `pinyin`: piper-tts's own phonemizers (Nakdimon + rules,
  OpenJTalk, TLTK, g2pW); `pinyin` ids are padded per syllable (piper's Chinese
  `phonemes_to_ids`). Their packages are optional: `make_phonemizer` fails at load with one line
  saying what to install.

Thread: the inference thread, and the voice loader's warm-up (espeak-ng is a process-wide C
library, serialised by `ESPEAK_LOCK`; piper's other phonemizers by one more lock). RT-safe: no.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from piper.phoneme_ids import phonemes_to_ids

from autovoice.engines.voice import VoiceInfo
from autovoice.errors import VoiceError

__all__ = ["ESPEAK_LOCK", "Phonemizer", "make_phonemizer", "missing_packages"]

# espeak-ng keeps one global state per process: one caller at a time, whoever the caller is.
ESPEAK_LOCK = threading.Lock()
_ESPEAK_READY = False
# piper's other phonemizers wrap C libraries (OpenJTalk) and shared models whose thread safety
# nobody promises: one caller at a time too (a voice warming up on the loader thread while
# another speaks).
_PIPER_LOCK = threading.Lock()

_LANG_SWITCH = re.compile(r"\([^)]+\)")
_PHONEME_BLOCK = re.compile(r"(\[\[.*?\]\])")
CLAUSE_TERMINATORS = (",", ":", ";")
_TEXT_CLAUSE_END = re.compile(r"(?<=[,:;.!?])(?=\s)")
_CLAUSE_SYMBOLS = frozenset({",", ";", ":", "，", "；", "：", "、"})

Sentence = list[list[str]]
"""A sentence as its clauses, each a list of phoneme symbols."""

_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "pinyin": (("g2pw", "transformers", "sentence_stream", "unicode_rbnf"), "piper-tts[zh]"),
    "japanese": (("pyopenjtalk",), "piper-tts[ja]"),
    "thai": (("tltk", "pandas", "unicode_rbnf", "requests"), "piper-tts[th]"),
}
"""Modules each optional phonemizer imports, and the pip requirement that brings them."""
G2PW_DIR_NAME = "g2pW"
"""Where a `pinyin` voice's g2pW model is looked for: this directory beside the voice."""


class Phonemizer:
    """Sentences and ids for one voice (the base class is the `text` type).

    Args:
        voice: The voice (its phoneme map, espeak voice, vowel clusters).
    """

    def __init__(self, voice: VoiceInfo) -> None:
        self.voice = voice

    def sentences(self, block: str) -> Iterator[Sentence]:
        """Yield the sentences of `block` (Piper: the whole text is one sentence)."""
        text = unicodedata.normalize("NFD", block)
        clauses = [list(c) for c in _TEXT_CLAUSE_END.split(text) if c]
        if clauses:
            yield clauses

    def ids(self, phonemes: list[str] | tuple[str, ...]) -> list[int]:
        """Piper's ids for one unit's phonemes (BOS, pads, EOS included)."""
        return phonemes_to_ids(list(phonemes), self.voice.phoneme_id_map)

    def symbol_id_starts(self, phonemes: list[str] | tuple[str, ...]) -> list[int]:
        """For each symbol, the index in `ids(phonemes)` where its ids begin."""
        id_map = self.voice.phoneme_id_map
        pad = len(id_map["_"])
        starts: list[int] = []
        index = len(id_map["^"]) + pad
        for symbol in phonemes:
            starts.append(index)
            if symbol in id_map:
                index += len(id_map[symbol]) + pad
        return starts


class EspeakPhonemizer(Phonemizer):
    """espeak-ng phonemes with Piper's post-processing, raw blocks and Arabic diacritics."""

    def __init__(self, voice: VoiceInfo) -> None:
        super().__init__(voice)
        raw = voice.raw_config.get("vowel_clusters")
        self._clusters = {tuple(c) for c in raw} if raw else None
        self._tashkeel: Callable[..., str] | None = None
        if voice.espeak_voice == "ar":
            from piper.tashkeel import TashkeelDiacritizer

            self._tashkeel = TashkeelDiacritizer()

    def sentences(self, block: str) -> Iterator[Sentence]:
        if "[[" not in block:
            yield from self._text_sentences(block)
            return
        yield from self._with_raw_blocks(block)

    def _text_sentences(self, text: str) -> Iterator[Sentence]:
        if self._tashkeel is not None:
            text = self._tashkeel(text, taskeen_threshold=0.8)
        sentence: Sentence = []
        for phonemes_str, terminator, end_of_sentence in _espeak_clauses(
            self.voice.espeak_voice, text
        ):
            phonemes_str = _LANG_SWITCH.sub("", phonemes_str) + terminator
            if terminator in CLAUSE_TERMINATORS:
                phonemes_str += " "
            sentence.append(list(unicodedata.normalize("NFD", phonemes_str)))
            if end_of_sentence:
                if any(sentence):
                    yield self._merged(sentence)
                sentence = []
        if any(sentence):
            yield self._merged(sentence)

    def _merged(self, sentence: Sentence) -> Sentence:
        """Piper's vowel-cluster merge over the whole sentence; a merged symbol belongs to the
        clause where it starts."""
        if not self._clusters:
            return sentence
        from piper.phonemize_espeak import _merge_known_vowel_clusters

        owner = [number for number, clause in enumerate(sentence) for _ in clause]
        merged = _merge_known_vowel_clusters([p for c in sentence for p in c], self._clusters)
        clauses: Sentence = [[] for _ in sentence]
        position = 0
        for symbol in merged:  # every input symbol is one codepoint: a merged one spans len()
            clauses[owner[position]].append(symbol)
            position += len(symbol)
        return [c for c in clauses if c]

    def _with_raw_blocks(self, block: str) -> Iterator[Sentence]:
        """`PiperVoice.phonemize`'s `[[ ... ]]` handling: raw phonemes join the sentence before
        them, and the first sentence of the text after them joins it too."""
        sentences: list[Sentence] = []
        parts = _PHONEME_BLOCK.split(block)
        after_raw = False
        for i, part in enumerate(parts):
            if part.startswith("[["):
                raw: list[str] = []
                if i > 0 and parts[i - 1].endswith(" "):
                    raw.append(" ")
                raw.extend(part[2:-2].strip())
                if i < len(parts) - 1 and parts[i + 1].startswith(" "):
                    raw.append(" ")
                if not sentences:
                    sentences.append([])
                sentences[-1].append(raw)
                after_raw = True
                continue
            found = list(self._text_sentences(part))
            if after_raw and found:
                sentences[-1].extend(found.pop(0))
            sentences.extend(found)
            after_raw = False
        yield from sentences


class PiperPhonemizer(Phonemizer):
    """One of piper-tts's own phonemizers (hebrew, japanese, thai, pinyin); each sentence is
    cut into clauses after pause symbols."""

    def __init__(self, voice: VoiceInfo, phonemizer: Any) -> None:
        super().__init__(voice)
        self._phonemizer = phonemizer

    def sentences(self, block: str) -> Iterator[Sentence]:
        with _PIPER_LOCK:
            sentences = self._phonemizer.phonemize(block)
        for phonemes in sentences:
            if not phonemes:
                continue
            clauses: Sentence = [[]]
            for symbol in phonemes:
                clauses[-1].append(symbol)
                if symbol in _CLAUSE_SYMBOLS:
                    clauses.append([])
            yield [c for c in clauses if c]


class PinyinPhonemizer(PiperPhonemizer):
    """Chinese: ids padded after each syllable group (piper's Chinese `phonemes_to_ids`)."""

    def ids(self, phonemes: list[str] | tuple[str, ...]) -> list[int]:
        from piper.phonemize_chinese import phonemes_to_ids as chinese_ids

        return chinese_ids(list(phonemes), self.voice.phoneme_id_map)

    def symbol_id_starts(self, phonemes: list[str] | tuple[str, ...]) -> list[int]:
        from piper.phonemize_chinese import GROUP_END_PHONEMES

        id_map = self.voice.phoneme_id_map
        starts: list[int] = []
        index = len(id_map["^"])
        for symbol in phonemes:
            starts.append(index)
            if symbol in id_map:
                index += len(id_map[symbol])
                if symbol in GROUP_END_PHONEMES:
                    index += len(id_map["_"])
        return starts


def make_phonemizer(voice: VoiceInfo) -> Phonemizer:
    """The phonemizer for `voice`'s `phoneme_type`, ready to use (models loaded).

    Raises:
        VoiceError: one line: the phonemizer's package (or the g2pW model) is missing.
    """
    kind = voice.phoneme_type
    if kind == "espeak":
        return EspeakPhonemizer(voice)
    if kind == "text":
        return Phonemizer(voice)
    missing = missing_packages(voice)
    if missing:
        raise VoiceError(voice.name, missing)
    requirement = _NEEDS.get(kind, ((), "piper-tts"))[1]
    try:
        return _piper_phonemizer(voice)
    except ImportError as exc:  # a package of theirs lacks a dependency it does not declare
        raise VoiceError(
            voice.name,
            f"phoneme_type {kind!r} cannot import {exc.name or exc}: pip install "
            f"'{requirement}' {exc.name or ''}".rstrip(),
        ) from None


def missing_packages(voice: VoiceInfo) -> str:
    """What `voice`'s phonemizer lacks, as "phoneme_type 'x' needs M: pip install 'R'", or ""
    (found without importing anything)."""
    modules, requirement = _NEEDS.get(voice.phoneme_type, ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return ""
    kind = voice.phoneme_type
    return f"phoneme_type {kind!r} needs {', '.join(missing)}: pip install '{requirement}'"


def _piper_phonemizer(voice: VoiceInfo) -> Phonemizer:
    kind = voice.phoneme_type
    if kind == "hebrew":
        from piper.phonemize_hebrew import HebrewPhonemizer

        return PiperPhonemizer(voice, HebrewPhonemizer())
    if kind == "japanese":
        from piper.phonemize_japanese import JapanesePhonemizer

        return PiperPhonemizer(voice, JapanesePhonemizer())
    if kind == "thai":
        from piper.phonemize_thai import ThaiPhonemizer

        return PiperPhonemizer(voice, ThaiPhonemizer())
    if kind == "pinyin":
        return PinyinPhonemizer(voice, _chinese_phonemizer(voice))
    raise VoiceError(voice.name, f"phoneme_type {kind!r} is not supported")


def _chinese_phonemizer(voice: VoiceInfo) -> Any:
    """piper's ChinesePhonemizer on the g2pW model beside the voice. piper would download the
    model on first use; AutoVoice never downloads while speaking, so it must be there."""
    model_dir = Path(voice.model_path).parent / G2PW_DIR_NAME
    if not (model_dir / "g2pw.onnx").is_file():
        raise VoiceError(
            voice.name,
            f"phoneme_type 'pinyin' needs the g2pW model in {model_dir} (piper-tts's "
            f"ChinesePhonemizer({str(model_dir)!r}) downloads it once)",
        )
    from piper.phonemize_chinese import ChinesePhonemizer

    return ChinesePhonemizer(model_dir)


def _espeak_clauses(espeak_voice: str, text: str) -> list[tuple[str, str, bool]]:
    global _ESPEAK_READY
    from piper import espeakbridge
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    with ESPEAK_LOCK:
        if not _ESPEAK_READY:
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _ESPEAK_READY = True
        espeakbridge.set_voice(espeak_voice)
        return espeakbridge.get_phonemes(text)
