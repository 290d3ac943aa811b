"""TextAccumulator: deltas split anywhere give whole words, clauses come out at once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autovoice.engines.text_stream import LONGEST_WORD, TextAccumulator

SENTENCES = [
    "Hello world.",
    "Hello, world. How are you? I am fine; thanks: really!",
    "In 1984, the price was $3.50, or 3 euros and 20 cents.",
    "Dr. Smith lives at 221B Baker Street (London) since 12/05/2020...",
    "Don't stop, it's 9:30 a.m., isn't it?",
    "The meeting moved to Thursday at 123.45 Main Street, e.g. the old bank.",
    "Mr. and Mrs. Jones met J. R. R. Tolkien in the U.S. in 1950.",
    'She said "stop!" and he stopped. (Then he left.) Fine.',
    "A very long sentence with no punctuation at all that just keeps going and going on and on",
    "Numbers: 1, 22, 333, 4,444, 55555, and 3.14159.",
    "Line one\nLine two\n\nA new paragraph starts here",
    "1. First item\n2. Second item",
    "Ünïcödé façade café naïve résumé.",
]


def _split(text: str, sizes: list[int]) -> list[str]:
    deltas, start, k = [], 0, 0
    while start < len(text):
        size = sizes[k % len(sizes)]
        deltas.append(text[start : start + size])
        start += size
        k += 1
    return deltas


def _run(acc: TextAccumulator, deltas: list[str]) -> list[str]:
    pieces = []
    for delta in deltas:
        pieces.extend(acc.feed(delta))
    return pieces + acc.finish()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=5),
    st.lists(st.integers(1, 6), min_size=1, max_size=40),
    st.sampled_from([" ", "\n", "  "]),
    st.integers(1, 8),
    st.sampled_from([20, 60, 250]),
)
def test_random_deltas_keep_every_word(
    sentences: list[str], sizes: list[int], sep: str, min_words: int, max_chars: int
) -> None:
    text = sep.join(sentences)
    pieces = _run(TextAccumulator(min_words, max_chars), _split(text, sizes))
    # Same words: a piece ending mid-word ("Thurs" | "day", "12" | "3.45") would split a word.
    assert " ".join(pieces).split() == text.split()
    assert all(p and p == p.strip() for p in pieces)
    words = set(text.split())
    for piece in pieces:
        assert piece.split()[-1] in words
        assert piece.split()[0] in words
        assert not piece.endswith(("Dr.", "Mr.", "Mrs.", "e.g.", "a.m.", "U.S.", " J.", " R."))
        if len(piece.split()) > 1:
            assert len(piece) <= max_chars


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=20))
def test_clause_breaks_do_not_depend_on_deltas(sizes: list[int]) -> None:
    text = " ".join(SENTENCES[:8])
    whole = _run(TextAccumulator(min_words=1000, max_chars=10_000), [text])
    split = _run(TextAccumulator(min_words=1000, max_chars=10_000), _split(text, sizes))
    assert split == whole


def test_clause_released_on_whitespace_without_next_letter() -> None:
    acc = TextAccumulator()
    assert acc.feed("Hello there") == []
    assert acc.feed(".") == []  # "." at the end may still become a decimal point
    assert acc.feed(" ") == ["Hello there."]
    assert acc.feed("Yes,") == []
    assert acc.feed("\n") == ["Yes,"]
    assert acc.finish() == []


def test_finish_releases_a_final_dot() -> None:
    acc = TextAccumulator()
    assert acc.feed("It is 3.") == []
    assert acc.finish() == ["It is 3."]


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        (["It is 12", "3.45 degrees. ", "Ok"], ["It is 123.45 degrees.", "Ok"]),
        (["On Thurs", "day at 3", ":30 we go"], ["On Thursday at 3:30 we go"]),
        (["It costs 3", ".", "5 now"], ["It costs 3.5 now"]),
        (["About 1", ",000 people"], ["About 1,000 people"]),
        (["Dr. Smith and Mr. Lee, e.g. ", "friends."], ["Dr. Smith and Mr. Lee,", "e.g. friends."]),
        (['He said "stop!" and', " left."], ['He said "stop!"', "and left."]),
        (["1. Apples\n2. Pears"], ["1. Apples\n2.", "Pears"]),
        (["Title\n\nBody text"], ["Title", "Body text"]),
        (["你好。", "我很好！", "谢谢"], ["你好。", "我很好！", "谢谢"]),
    ],
)
def test_examples(deltas: list[str], expected: list[str]) -> None:
    acc = TextAccumulator(min_words=100)
    assert _run(acc, deltas) == expected


def test_words_without_punctuation() -> None:
    acc = TextAccumulator(min_words=3)
    assert acc.feed("one two thr") == []
    assert acc.feed("ee") == []  # "three" may still grow
    assert acc.feed(" fo") == ["one two three"]
    # Speech has started: the next cut needs twice the words.
    assert acc.feed("ur five six ") == []
    assert acc.feed("seven eight nine ") == ["four five six seven eight nine"]
    assert acc.finish() == []


def test_word_cuts_do_not_end_on_a_function_word() -> None:
    acc = TextAccumulator(min_words=4)
    assert acc.feed("Your next meeting is ") == ["Your next meeting"]
    acc = TextAccumulator(min_words=3)
    assert acc.feed("Traffic on the ") == []  # waits for "way"
    assert acc.feed("wa") == []
    assert acc.feed("y to") == ["Traffic on the way"]
    acc = TextAccumulator(min_words=2)
    assert acc.feed("of the ") == []
    assert acc.feed("and a ") == ["of the and a"]  # twice the words: cut anyway


def test_max_chars_cuts_at_whitespace() -> None:
    acc = TextAccumulator(min_words=100, max_chars=12)
    pieces = _run(acc, ["alpha beta gamma delta epsilon ", "supercalifragilistic end"])
    assert pieces == ["alpha beta", "gamma delta", "epsilon", "supercalifragilistic", "end"]


def test_a_run_without_whitespace_is_cut_at_longest_word() -> None:
    acc = TextAccumulator()
    run = "x" * (2 * LONGEST_WORD + 500)
    pieces = _run(acc, [run[i : i + 7] for i in range(0, len(run), 7)] + [" end"])
    assert pieces == ["x" * LONGEST_WORD, "x" * LONGEST_WORD, "x" * 500, "end"]


def test_whitespace_only_and_reuse() -> None:
    acc = TextAccumulator()
    assert _run(acc, ["  ", "\n\n", " "]) == []
    assert _run(acc, ["Again. ", "And"]) == ["Again.", "And"]


def test_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="min_words"):
        TextAccumulator(min_words=0)
    with pytest.raises(ValueError, match="max_chars"):
        TextAccumulator(max_chars=0)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab1. ,!?:;\n\"')(", max_size=80),
    st.lists(st.integers(1, 6), min_size=1, max_size=20),
    st.integers(1, 4),
    st.integers(1, 12),
)
def test_any_text_keeps_every_word(
    text: str, sizes: list[int], min_words: int, max_chars: int
) -> None:
    pieces = _run(TextAccumulator(min_words, max_chars), _split(text, sizes))
    assert " ".join(pieces).split() == text.split()
    assert all(p and p == p.strip() for p in pieces)
