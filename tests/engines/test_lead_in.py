"""No quiet lead-in: what the daemon plays of an utterance starts 1 ms before its first audible
sample, and equals the whole-utterance audio from there on (real voice, noise off)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from autovoice.engines import Synthesizer, lead_in
from autovoice.engines.lead_in import AUDIBLE, MARGIN_S, lead_frames, silent_frames
from tests.conftest import EXACT

TEXTS = (
    "Our records show two payments received this month.",  # a long BOS: 15 frames
    "She opened the window.",  # audible from the first sample: nothing to drop
    "Hello world. This has a pause between two sentences, and one inside.",
    "The meeting has been moved to Thursday afternoon at half past three, in the large room, "
    "because the small one is being painted; bring the printed agenda.",  # several units
)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def test_doctests() -> None:
    assert doctest.testmod(lead_in).failed == 0


@pytest.mark.parametrize("text", TEXTS)
def test_played_equals_whole_from_onset_less_margin(onnx_synth: Synthesizer, text: str) -> None:
    whole = onnx_synth.synthesize_whole(text, EXACT)
    onset = int(np.argmax(np.abs(whole) > AUDIBLE))
    margin = int(round(MARGIN_S * onnx_synth.sample_rate))
    expected = whole[max(0, onset - margin) :]
    chunks = list(onnx_synth.speak(text, EXACT, trim_lead_in=True))
    played = np.concatenate([c.samples for c in chunks])
    assert played.shape == expected.shape
    assert rel_l2(played, expected) <= 1e-4
    assert int(np.argmax(np.abs(played) > AUDIBLE)) == min(onset, margin)
    # sample 0 is the first played one; chunks stay contiguous
    offsets = np.cumsum([0] + [len(c.samples) for c in chunks[:-1]])
    assert [c.start_sample for c in chunks] == list(offsets)


def test_word_starts_shift_with_the_lead_in(onnx_synth: Synthesizer) -> None:
    text = TEXTS[3]
    full = list(onnx_synth.speak(text, EXACT))
    trimmed = list(onnx_synth.speak(text, EXACT, trim_lead_in=True))
    dropped = sum(len(c.samples) for c in full) - sum(len(c.samples) for c in trimmed)
    assert dropped > 0
    before = [s for c in full for s in c.word_starts]
    after = [s for c in trimmed for s in c.word_starts]
    assert len(before) == len(after) > 5
    assert after == [max(0, s - dropped) for s in before]
    # every unit but the first is unchanged: only the utterance's start moved
    assert [len(c.samples) for c in full if c.clause_index > 0] == [
        len(c.samples) for c in trimmed if c.clause_index > 0
    ]


def test_bos_frames_are_not_decoded(onnx_synth: Synthesizer) -> None:
    scales, _ = onnx_synth.scales(EXACT)
    unit = next(iter(onnx_synth.frontend.units(TEXTS[0])))
    z = onnx_synth.backend.encode_lazy(list(unit.ids), scales)
    bos = onnx_synth.voice.phoneme_id_map["^"][0]
    skip = silent_frames(unit.ids, z.durations, bos)
    assert skip == int(z.durations[0]) - lead_in.SAFETY_FRAMES > 5
    assert lead_frames(unit.ids, z.durations, bos) == (skip, lead_in.SAFETY_FRAMES)
    plans = onnx_synth._plans(onnx_synth.backend, z.shape[1], True, skip, lead_in.SAFETY_FRAMES)
    assert plans[0].start == skip and plans[-1].end == z.shape[1]
    # the first chunk still plays first_chunk_frames once its quiet BOS frames are trimmed
    first = onnx_synth.config.streaming.first_chunk_frames
    assert plans[0].end - plans[0].start == first + lead_in.SAFETY_FRAMES
    # without durations (other engines) nothing is skipped; the sample trim still applies
    assert silent_frames(unit.ids, None, bos) == 0
