"""cuda-graph engine: its CPU-side logic here (padding to buckets is exact, static buffers,
sliding decoder windows, the real voice through the Synthesizer), capture and replay on a GPU
(`@pytest.mark.gpu`, skipped without CUDA; `scripts/gpu_check.py` runs the full check)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autovoice.config import config_from_dict  # noqa: E402
from autovoice.engines import Synthesizer  # noqa: E402
from autovoice.engines.base import Scales  # noqa: E402
from autovoice.engines.cuda_graph_backend import CudaGraphBackend  # noqa: E402
from autovoice.engines.frontend import Frontend  # noqa: E402
from autovoice.engines.gpu_plan import decoder_windows  # noqa: E402
from autovoice.engines.gpu_random import random_ids, random_vits  # noqa: E402
from autovoice.engines.torch_backend import TorchBackend  # noqa: E402
from autovoice.engines.torch_vits import load_vits, medium_hparams, tiny_hparams  # noqa: E402
from tests.conftest import EXACT  # noqa: E402

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs an NVIDIA GPU with CUDA")
SMALL = {"phoneme_sizes": (32, 64), "frame_sizes": (64, 128, 256), "windows": (48, 64, 96)}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def _reference(model) -> TorchBackend:
    hp = model.hp
    return TorchBackend(
        model=model,
        device=torch.device("cpu"),
        sample_rate=22050,
        hop_samples=hp.hop_samples,
        z_channels=hp.inter_channels,
        num_speakers=hp.n_speakers,
    )


@pytest.mark.parametrize(
    "hp",
    [medium_hparams(), tiny_hparams(n_speakers=3), tiny_hparams(use_sdp=False)],
    ids=["medium", "tiny-multispeaker", "tiny-plain-dp"],
)
def test_padded_ids_and_frames_equal_unpadded(hp):
    """Masks make padding exact: the text stage at a bucket length, and the flow at a frame
    bucket, give the unpadded values at the real positions (with noise on, same noise)."""
    model = random_vits(hp, seed=1)
    n, bucket = 21, 32
    gen = torch.Generator().manual_seed(2)
    ids = torch.tensor([random_ids(hp.n_vocab, n, 3)])
    g = model.speaker_embedding(torch.tensor([1])) if hp.n_speakers > 1 else None
    dp_noise = 0.8 * torch.randn(1, 2, bucket, generator=gen)
    padded_ids = torch.nn.functional.pad(ids, (0, bucket - n))
    mask = torch.ones(1, 1, n)
    with torch.inference_mode():
        plain = model.text_stats(ids, mask, g, dp_noise[..., :n])
        padded_mask = torch.nn.functional.pad(mask, (0, bucket - n))
        padded = model.text_stats(padded_ids, padded_mask, g, dp_noise)
        for a, b in zip(plain, padded, strict=True):
            torch.testing.assert_close(b[..., :n], a, rtol=1e-5, atol=1e-5)
        m, logs, y_mask = model.expand(plain[0], plain[1], model.durations(plain[2], mask, 1.0))
        frames = m.shape[2]
        frame_bucket = frames + 35
        noise = 0.667 * torch.randn(1, m.shape[1], frame_bucket, generator=gen)
        z = model.latent(m, logs, y_mask, g, noise[..., :frames])

        def pad(t):
            return torch.nn.functional.pad(t, (0, frame_bucket - frames))

        z_padded = model.latent(pad(m), pad(logs), pad(y_mask), g, noise)
    torch.testing.assert_close(z_padded[..., :frames], z, rtol=1e-5, atol=1e-4)


def test_static_buffers_equal_the_torch_engine():
    """Same ids through the bucketed static-buffer path (eager on CPU) and the torch engine:
    equal z at every bucket boundary; oversize inputs run eagerly and are counted."""
    model = random_vits(tiny_hparams(n_speakers=2), seed=4)
    reference = _reference(copy.deepcopy(model))
    backend = CudaGraphBackend.from_model(model, device="cpu", capture=False, **SMALL)
    assert not backend.graphs_active
    for n in (1, 31, 32, 33, 64):
        ids = random_ids(model.hp.n_vocab, n, n)
        for sid in (0, 1):
            scales = Scales(0.0, 1.3, 0.0, sid)
            z = backend.encode(ids, scales)
            np.testing.assert_allclose(z, reference.encode(ids, scales), rtol=1e-5, atol=1e-6)
            for frames in sorted({min(z.shape[1], w) for w in (48, 64, 7)}):
                window = z[:, :frames]
                np.testing.assert_allclose(
                    backend.decode(window, sid), reference.decode(window, sid), atol=1e-6
                )
    eager_before = backend.eager_calls
    backend.encode(random_ids(model.hp.n_vocab, 65, 0), Scales(0.0, 1.0, 0.0, 0))  # > buckets
    assert backend.eager_calls > eager_before
    with pytest.raises(ValueError, match="speaker_id"):
        backend.decode(np.zeros((model.hp.inter_channels, 48), np.float32), 2)
    backend.close()


def test_noise_draws_differ_and_stay_finite():
    backend = CudaGraphBackend.from_model(
        random_vits(tiny_hparams(), seed=5), device="cpu", capture=False, **SMALL
    )
    ids = random_ids(40, 20, 0)
    a = backend.encode(ids, Scales(0.667, 1.0, 0.8))
    b = backend.encode(ids, Scales(0.667, 1.0, 0.8))
    assert np.isfinite(a).all() and np.isfinite(b).all()
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_bf16_decoder_stays_close_to_fp32():
    model = random_vits(tiny_hparams(), seed=6)
    fp32 = CudaGraphBackend.from_model(copy.deepcopy(model), device="cpu", capture=False, **SMALL)
    bf16 = CudaGraphBackend.from_model(
        model, device="cpu", precision="bf16", capture=False, **SMALL
    )
    z = fp32.encode(random_ids(40, 30, 1), Scales(0.0, 1.0, 0.0))[:, :48]
    assert _rel(bf16.decode(z), fp32.decode(z)) < 5e-2


def test_real_voice_streams_equal_onnx_whole(onnx_synth):
    """The default voice on the cuda-graph engine's CPU path (buckets, static buffers, sliding
    decoder windows) equals the onnx engine's whole-sentence audio."""
    model, _hp, _cfg = load_vits(onnx_synth.voice.model_path)
    config = config_from_dict({"engine": "onnx"})
    s = config.streaming
    backend = CudaGraphBackend.from_model(
        model,
        device="cpu",
        capture=False,
        windows=decoder_windows(s.first_chunk_frames, s.max_chunk_frames, s.halo_frames),
    )
    synth = Synthesizer(
        voice=onnx_synth.voice,
        backend=backend,
        frontend=Frontend(onnx_synth.voice, s.max_unit_phonemes, s.first_unit_phonemes),
        config=config,
    )
    text = "Graphs replay shapes, again: 42 times."
    streamed = np.concatenate([c.samples for c in synth.speak(text, EXACT)])
    whole = onnx_synth.synthesize_whole(text, EXACT)
    assert len(streamed) == len(whole)
    assert _rel(streamed, whole) < 1e-4
    assert backend.eager_calls == 0  # every window had a fixed size


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_graph_replay_equals_eager_on_gpu(precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    model = random_vits(medium_hparams(), seed=7)
    cpu = _reference(copy.deepcopy(model))
    eager = CudaGraphBackend.from_model(
        copy.deepcopy(model), precision=precision, capture=False, **SMALL
    )
    graphs = CudaGraphBackend.from_model(model, precision=precision, capture=True, **SMALL)
    assert graphs.graphs_active
    ids = random_ids(256, 40, 8)
    scales = Scales(0.0, 1.0, 0.0)
    z = graphs.encode(ids, scales)
    np.testing.assert_allclose(z, eager.encode(ids, scales), rtol=1e-5, atol=1e-5)
    assert z.shape == cpu.encode(ids, scales).shape
    window = z[:, :96]
    replayed = graphs.decode(window)
    assert _rel(replayed, eager.decode(window)) < 1e-5
    bound = 1e-4 if precision == "fp32" else 3e-2
    assert _rel(replayed, cpu.decode(window)) < bound
