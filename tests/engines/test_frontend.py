"""Text frontend: Piper-identical ids, clause splitting, and hostile input."""

from __future__ import annotations

import tracemalloc

import pytest
from piper import PiperVoice

from autovoice.engines.frontend import Frontend, clean_text, split_long_text
from autovoice.engines.voice import VoiceInfo, default_voice_path

SENTENCES = [
    "Hello world.",
    "Hello, world. How are you? I am fine; thanks: really!",
    "In 1984, the price was $3.50, or 3 euros and 20 cents.",
    "Dr. Smith lives at 221B Baker Street (London) since 12/05/2020...",
    "Don't stop — it's 9:30 a.m., isn't it?",
    "A very long sentence, with many clauses, that goes on and on, past commas and semicolons; "
    "it keeps going: listing things, like apples, pears, plums and cherries, until it ends.",
    "Numbers: 1, 22, 333, 4444, 55555, and 3.14159.",
    "Ünïcödé façade café naïve résumé.",
    "Line one\nLine two\n\nA new paragraph",
    "no punctuation at all",
]


@pytest.fixture(scope="module")
def voice() -> VoiceInfo:
    return VoiceInfo.load(default_voice_path())


@pytest.fixture(scope="module")
def piper_voice() -> PiperVoice:
    return PiperVoice.load(default_voice_path())


@pytest.mark.parametrize("text", SENTENCES)
def test_same_ids_as_piper(voice: VoiceInfo, piper_voice: PiperVoice, text: str) -> None:
    expected = [piper_voice.phonemes_to_ids(p) for p in piper_voice.phonemize(text)]
    assert Frontend(voice).sentence_ids(text) == expected


def test_short_sentences_are_whole_units(voice: VoiceInfo, piper_voice: PiperVoice) -> None:
    text = SENTENCES[1]
    units = list(Frontend(voice, max_unit_phonemes=200).units(text))
    expected = [piper_voice.phonemes_to_ids(p) for p in piper_voice.phonemize(text)]
    assert [list(u.ids) for u in units] == expected
    assert all(u.ends_sentence for u in units)


def test_long_sentence_splits_at_clauses(voice: VoiceInfo) -> None:
    text = SENTENCES[5]
    units = list(Frontend(voice, max_unit_phonemes=40).units(text))
    assert len(units) >= 4
    assert {u.sentence_index for u in units} == {0}
    assert [u.ends_sentence for u in units] == [False] * (len(units) - 1) + [True]
    # every unit except the last ends at a clause terminator (",", ";", ":") plus a space
    for unit in units[:-1]:
        assert unit.phonemes[-2] in ",;:" and unit.phonemes[-1] == " "
    whole = list(Frontend(voice, max_unit_phonemes=2000).units(text))
    assert len(whole) == 1
    joined = [p for u in units for p in u.phonemes]
    assert joined == list(whole[0].phonemes)


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n", "\x00\x01\x07\x1b\x7f", "\ud800", "...!?"])
def test_nothing_to_say(voice: VoiceInfo, text: str) -> None:
    assert [u for u in Frontend(voice).units(text) if len(u.ids) > 4] == []


def test_control_characters_and_any_unicode(voice: VoiceInfo) -> None:
    assert clean_text("a\x00b\x07c\u2028d\ud800e") == "a b c d e"
    units = list(Frontend(voice).units("Bell\x07 and null\x00 chars. 日本語、한국어, emoji 🎉 ok."))
    assert units and all(len(u.ids) > 2 for u in units)


def test_split_long_text_bounds_blocks() -> None:
    text = ("word " * 3000) + "End. " + ("x" * 9000)
    blocks = list(split_long_text(text, 4000))
    assert "".join(blocks) == text
    assert all(len(b) <= 4000 for b in blocks)


def test_one_megabyte_text_is_lazy_and_bounded(voice: VoiceInfo) -> None:
    text = "This is sentence number one, of very many. " * 24_000  # ~1 MB
    assert len(text) > 1_000_000
    frontend = Frontend(voice)
    tracemalloc.start()
    units = frontend.units(text)
    for _ in range(50):
        next(units)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # the million-character text is never phonemized whole


def test_first_unit_is_short_even_without_commas(voice: VoiceInfo) -> None:
    text = (
        "In the beginning of the year after a long and rather difficult winter the small "
        "village by the river decided to hold a festival. Then another sentence follows."
    )
    units = list(Frontend(voice, max_unit_phonemes=200, first_unit_phonemes=40).units(text))
    whole = list(Frontend(voice, max_unit_phonemes=200).units(text))
    assert len(units[0].phonemes) <= 40
    assert units[0].phonemes[-1] == " "  # cut between words
    assert [p for u in units for p in u.phonemes] == [p for u in whole for p in u.phonemes]
    assert len(units) == len(whole) + 1  # only the first sentence was cut, once
