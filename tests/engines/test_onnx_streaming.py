"""The split onnxruntime engine: split == original graph, streamed == whole, real voice."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime
import pytest

from autovoice.config import config_from_dict
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.engines.latent import FIRST_WINDOW_HALO_FRAMES
from autovoice.engines.streaming import chunk_plan
from autovoice.engines.voice import default_voice_path
from tests.conftest import EXACT

TEXTS = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest.",
    "In 1984, the price was $3.50. Was it worth it? Nobody knows!",
    "A sentence that is long enough to need several decoder chunks, so that the halos and the "
    "growing chunk sizes are all exercised by this test of streaming equality.",
]


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def test_lazy_flow_equals_whole_flow(onnx_synth: Synthesizer) -> None:
    scales, _ = onnx_synth.scales(EXACT)
    ids = onnx_synth.frontend.sentence_ids(TEXTS[3])[0]
    backend = onnx_synth.backend
    whole = backend.encode(ids, scales)
    scale = np.abs(whole).max()
    lazy = backend.encode_lazy(ids, scales)
    first = lazy[:, 0:20]
    assert lazy.flow_calls == 1  # only the first window was made
    # it had FIRST_WINDOW_HALO_FRAMES of context on its right, not the flow's whole reach: the
    # frames with the whole reach are exact, the last ones close (provisional)
    exact = 20 + FIRST_WINDOW_HALO_FRAMES - backend.flow_halo_frames
    assert 0 < exact < 20
    assert np.abs(first[:, :exact] - whole[:, :exact]).max() < 1e-4
    assert 1e-5 * scale < np.abs(first - whole[:, :20]).max() < 1e-2 * scale
    again = lazy[:, 0:20]  # read again, the provisional frames are made again, exactly
    assert lazy.flow_calls == 2
    assert np.abs(again - whole[:, :20]).max() < 1e-4
    assert np.abs(np.asarray(lazy) - whole).max() < 1e-4 * scale
    assert lazy.flow_calls < 8
    # a later unit's first window (not waited for) gets the whole reach: exact, made once
    later = backend.encode_lazy(ids, scales)
    later.exact_from_start()
    assert np.abs(later[:, 0:20] - whole[:, :20]).max() < 1e-4
    later[:, 0:20]
    assert later.flow_calls == 1
    # a window that reaches the unit's end keeps every frame it made: a short unit's flow runs once
    short_ids = onnx_synth.frontend.sentence_ids(TEXTS[0])[0]
    short_whole = backend.encode(short_ids, scales)
    short = backend.encode_lazy(short_ids, scales)
    short[:, 0 : short.shape[1] - FIRST_WINDOW_HALO_FRAMES + 1]
    assert np.abs(np.asarray(short) - short_whole).max() < 1e-4 * np.abs(short_whole).max()
    assert short.flow_calls == 1


def test_flow_halo_is_the_reach_of_its_convolutions(onnx_synth: Synthesizer) -> None:
    backend = onnx_synth.backend
    assert backend.flow_halo_frames == 32  # Piper: 4 coupling layers x 4 layers of kernel 5
    scales, _ = onnx_synth.scales(EXACT)
    ids = onnx_synth.frontend.sentence_ids(TEXTS[3])[0]
    whole = backend.encode(ids, scales)
    scale = np.abs(whole).max()

    def windowed_error(halo: int) -> float:
        lazy = dataclasses.replace(backend, flow_halo_frames=halo).encode_lazy(ids, scales)
        for stop in (8, 20, 52):  # small windows first, as the chunked decoder asks
            lazy[:, 0:stop]
        return float(np.abs(np.asarray(lazy) - whole).max() / scale)

    assert windowed_error(32) < 1e-5
    assert windowed_error(12) > 1e-4  # too little context shows: the halo is what keeps it exact


def test_split_graph_equals_original(onnx_synth: Synthesizer) -> None:
    original = onnxruntime.InferenceSession(
        str(default_voice_path()), providers=["CPUExecutionProvider"]
    )
    for ids in onnx_synth.frontend.sentence_ids(TEXTS[1] + " " + TEXTS[2]):
        (expected,) = original.run(
            None,
            {
                "input": np.asarray([ids], dtype=np.int64),
                "input_lengths": np.asarray([len(ids)], dtype=np.int64),
                "scales": np.asarray([0.0, 1.0, 0.0], dtype=np.float32),
            },
        )
        scales, _ = onnx_synth.scales(EXACT)
        z = onnx_synth.backend.encode(ids, scales)
        audio = onnx_synth.backend.decode(z, None)
        assert audio.shape == expected.reshape(-1).shape
        assert rel_l2(audio, expected.reshape(-1)) < 1e-6


@pytest.mark.parametrize("text", TEXTS)
def test_streamed_equals_whole(onnx_synth: Synthesizer, text: str) -> None:
    chunks = list(onnx_synth.speak(text, EXACT))
    streamed = np.concatenate([c.samples for c in chunks])
    whole = onnx_synth.synthesize_whole(text, EXACT)
    assert streamed.shape == whole.shape
    assert rel_l2(streamed, whole) <= 1e-4
    # chunks are contiguous and carry their offsets
    offsets = np.cumsum([0] + [len(c.samples) for c in chunks[:-1]])
    assert [c.start_sample for c in chunks] == list(offsets)
    assert all(c.samples.dtype == np.float32 and c.sample_rate == 22050 for c in chunks)


def test_first_chunk_is_small_and_chunks_grow(onnx_synth: Synthesizer) -> None:
    chunks = list(onnx_synth.speak(TEXTS[3], EXACT))
    first = onnx_synth.config.streaming.first_chunk_frames
    sizes = [len(c.samples) // 256 for c in chunks if c.clause_index == 0]
    assert sizes[0] == first
    assert sizes[1] == (3 * first + 1) // 2  # made while the first plays (see `_plans`)
    assert sizes[2] == 2 * sizes[1]
    # later units are made while earlier audio plays: they start with larger chunks
    later = [len(c.samples) // 256 for c in chunks if c.clause_index == 1]
    assert later[0] == 8 * first or len(later) == 1
    assert len(chunks) >= 3
    assert all(c.made_at_s <= d.made_at_s for c, d in zip(chunks, chunks[1:], strict=False))


def test_chunk_plan_covers_every_frame_once() -> None:
    for total in (1, 5, 16, 17, 31, 100, 1000, 4097):
        plan = chunk_plan(total, 16, 256, 16)
        assert plan[0].start == 0 and plan[-1].end == total
        assert all(a.end == b.start for a, b in zip(plan, plan[1:], strict=False))
        assert all(0 <= p.window_start <= p.start < p.end <= p.window_end <= total for p in plan)
        decoded = sum(p.window_end - p.window_start for p in plan)
        if total >= 1000:
            assert decoded <= 1.2 * total  # the halo overhead stays small


def test_clause_units_stream_and_rate_changes_length(onnx_config) -> None:
    config = config_from_dict({"engine": "onnx", "streaming": {"max_unit_phonemes": 40}})
    synth = Synthesizer.load(config, warm_up=False)
    try:
        chunks = list(synth.speak(TEXTS[1], EXACT))
        assert len({c.clause_index for c in chunks}) >= 2
        normal = len(synth.synthesize_whole("Hello there, my friend.", EXACT))
        slow = synth.synthesize_whole("Hello there, my friend.", SpeakOptions(0.5, 0.0, 0.0))
        assert len(slow) > 1.6 * normal
    finally:
        synth.close()


def test_gain_is_fixed_and_clipped(onnx_synth: Synthesizer) -> None:
    base = onnx_synth.synthesize_whole("Hello world.", EXACT)
    louder = onnx_synth.synthesize_whole(
        "Hello world.", SpeakOptions(noise_scale=0.0, noise_w=0.0, gain=2.0)
    )
    assert np.allclose(np.clip(base * 2, -1, 1), louder, atol=1e-6)
    assert np.abs(louder).max() <= 1.0


def test_noise_makes_draws_differ(onnx_synth: Synthesizer) -> None:
    a = onnx_synth.synthesize_whole("Hello world.")
    b = onnx_synth.synthesize_whole("Hello world.")
    assert a.shape != b.shape or rel_l2(a, b) > 1e-3


def test_speech_is_speech(onnx_synth: Synthesizer) -> None:
    """Not silence, not noise: voiced energy with pauses, in the speech band."""
    audio = onnx_synth.synthesize_whole("Hello, this is a test of the voice.", EXACT)
    assert 1.5 < len(audio) / 22050 < 4.0
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert rms.max() > 0.05 and (rms < 0.01).any()
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 22050)
    speech_band = spectrum[(freqs > 80) & (freqs < 4000)].sum() / spectrum.sum()
    assert speech_band > 0.8
