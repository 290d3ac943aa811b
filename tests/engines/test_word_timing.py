"""Word timing on the real voice: the engine's phoneme durations, where each word starts in the
audio, and which word a position in the text comes before (what index marks are timed by)."""

from __future__ import annotations

import doctest

import numpy as np

from autovoice.engines import Synthesizer, frontend
from autovoice.engines.frontend import count_words, word_id_starts
from tests.conftest import EXACT

LONG = (
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest, "
    "where nobody can find it. In 1984, it came back."
)


def test_frontend_doctests() -> None:
    assert doctest.testmod(frontend).failed == 0


def test_durations_cover_every_frame(onnx_synth: Synthesizer) -> None:
    scales, _ = onnx_synth.scales(EXACT)
    ids = onnx_synth.frontend.sentence_ids(LONG)[0]
    lazy = onnx_synth.backend.encode_lazy(ids, scales)
    durations = lazy.durations
    assert durations is not None and len(durations) == len(ids)
    assert int(durations.sum()) == lazy.shape[1]
    assert durations.min() >= 0 and durations.max() > 0
    # the plain encode path has no durations: a bare array
    assert not hasattr(onnx_synth.backend.encode(ids, scales), "durations")


def test_word_starts_per_unit(onnx_synth: Synthesizer) -> None:
    units = list(onnx_synth.frontend.units(LONG))
    assert len(units) > 1
    chunks = list(onnx_synth.speak(LONG, EXACT))
    firsts = [c for i, c in enumerate(chunks) if i == 0 or chunks[i - 1].last_in_clause]
    assert [c.clause_index for c in firsts] == list(range(len(units)))
    for unit, first in zip(units, firsts, strict=True):
        end = max(
            c.start_sample + len(c.samples) for c in chunks if c.clause_index == first.clause_index
        )
        starts = first.word_starts
        assert len(starts) == count_words(unit.phonemes) > 0
        assert list(starts) == sorted(set(starts))  # strictly increasing
        assert first.start_sample <= starts[0] and starts[-1] < end
    assert sum(1 for c in chunks if c.word_starts) == len(firsts)


def test_a_word_start_is_where_its_sound_begins(onnx_synth: Synthesizer) -> None:
    # "one ... two": a pause (comma and full stop) before each later word, so the audio just
    # before a word start is quieter than the word itself.
    text = "One. Two. Three."
    chunks = list(onnx_synth.speak(text, EXACT))
    audio = np.concatenate([c.samples for c in chunks])
    starts = [s for c in chunks for s in c.word_starts]
    assert len(starts) == 3
    rate = onnx_synth.sample_rate
    window = int(0.05 * rate)
    for start in starts[1:]:
        before = np.abs(audio[start - window : start]).mean()
        after = np.abs(audio[start : start + 2 * window]).mean()
        assert after > 2 * before


def test_word_id_starts_follow_piper_ids(onnx_synth: Synthesizer) -> None:
    unit = next(onnx_synth.frontend.units("Hello there, world."))
    starts = word_id_starts(unit.phonemes, onnx_synth.voice.phoneme_id_map)
    assert len(starts) == 3
    space = onnx_synth.voice.phoneme_id_map[" "][0]
    pad = onnx_synth.voice.phoneme_id_map["_"][0]
    for index in starts[1:]:  # each later word comes just after a space and its pad
        assert unit.ids[index - 2 : index] == (space, pad)


def test_words_before_counts_as_the_frontend_speaks(onnx_synth: Synthesizer) -> None:
    fe = onnx_synth.frontend
    text = "In 1984, Dr. Smith paid $3.50 to the team. Hello world."
    total = sum(count_words(u.phonemes) for u in fe.units(text))
    offsets = [
        0,
        text.index("1984"),
        text.index("Dr."),
        text.index("Smith"),
        text.index("paid"),
        text.index("to the"),
        text.index("Hello"),
        text.index("llo"),  # inside "Hello": that word
        text.index("world"),
        len(text),
    ]
    words = fe.words_before(text, offsets)
    # "1984" is spoken as three words, "$3.50" as five
    assert words == [0, 1, 4, 5, 6, 12, 15, 15, 16, total]
    assert total == 17
    # one call per mark gives the same as one call for all
    assert [fe.words_before(text, [o])[0] for o in offsets] == words
