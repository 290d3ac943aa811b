"""A tiny generated multi-speaker voice: random weights exported to ONNX the way Piper does
(TorchScript exporter, `infer` as forward, weight-norm left on in the flow), loaded back through
the initializer mapping and compared with onnxruntime. Constant folding is off here (our
attention would fold emb_rel_k into a transposed copy, which Piper's own graph does not do),
so weight-norm shows up as weight_g / weight_v pairs; the folded, generated names of a real
Piper export are covered on the real voice in test_torch_loading.py."""

from __future__ import annotations

import json
import os
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from autovoice.engines.base import Scales  # noqa: E402
from autovoice.engines.torch_backend import TorchBackend  # noqa: E402
from autovoice.engines.torch_vits import VitsModel, tiny_hparams  # noqa: E402
from autovoice.engines.torch_vits.hparams import hparams_from_weights  # noqa: E402
from autovoice.engines.torch_vits.onnx_weights import read_onnx_weights  # noqa: E402
from autovoice.engines.torch_vits.text_encoder import sequence_mask  # noqa: E402

N_SPEAKERS = 3
IDS = [1, 5, 9, 3, 17, 22, 4, 8, 30, 2, 11, 6]


def piper_infer(m: VitsModel, ids, lengths, scales, sid):
    """Piper's `infer` as it exports: (input, input_lengths, scales, sid) -> output."""
    x_mask = sequence_mask(lengths, ids.shape[1]).unsqueeze(1).float()
    g = m.speaker_embedding(sid)
    m_p, logs_p, logw = m.text_stats(ids, x_mask, g, None)
    w_ceil = torch.ceil(torch.exp(logw) * x_mask * scales[1])
    y_lengths = torch.clamp_min(torch.sum(w_ceil, [1, 2]), 1).long()
    y_mask = sequence_mask(y_lengths, y_lengths.max()).unsqueeze(1).float()
    # generate_path: frame t belongs to phoneme j when cum[j-1] <= t < cum[j]
    cum = torch.cumsum(w_ceil[:, 0], -1)  # [b, t_x]
    t = torch.arange(y_lengths.max()).float().view(1, 1, -1)
    path = (t < cum.unsqueeze(-1)).float()
    path = path - torch.nn.functional.pad(path, (0, 0, 1, 0))[:, :-1]
    path = path * x_mask.transpose(1, 2) * y_mask  # [b, t_x, t_y]
    m_f = torch.matmul(m_p, path)
    z = m.flow(m_f, y_mask, g=g) * y_mask
    return m.dec(z, g=g).unsqueeze(1)


def _build(seed: int) -> VitsModel:
    torch.manual_seed(seed)
    hp = tiny_hparams(n_speakers=N_SPEAKERS)
    model = VitsModel(hp).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):
                p.normal_(1.0, 0.1)  # all distinct: the exporter merges equal initializers
            if name.endswith(".beta"):
                p.normal_(0.0, 0.1)
            if name.endswith("emb_rel_k") or name.endswith("emb_rel_v"):
                p.normal_(0, 0.3)
            if name.startswith("dp.flows.0."):
                p.uniform_(-0.3, 0.3)
            if name.startswith("flow.") and name.endswith("post.weight"):
                p.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory) -> tuple[Path, VitsModel]:
    model = _build(0)
    export = _build(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for layer in export.flow.flows[0].enc.in_layers:
            torch.nn.utils.weight_norm(layer)  # exported as weight_g / weight_v
    path = tmp_path_factory.mktemp("voice") / "xx_XX-tiny-x_low.onnx"
    args = (
        torch.tensor([IDS]),
        torch.tensor([len(IDS)]),
        torch.tensor([0.0, 1.0, 0.0]),
        torch.tensor([1]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export.forward = types.MethodType(piper_infer, export)  # export like Piper: no prefix
        torch.onnx.export(
            export,
            args,
            str(path),
            input_names=["input", "input_lengths", "scales", "sid"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch", 1: "phonemes"}, "output": {0: "batch", 3: "t"}},
            opset_version=15,
            do_constant_folding=False,
            dynamo=False,
        )
    config = {
        "audio": {"sample_rate": 16000, "quality": "x_low"},
        "num_symbols": 40,
        "num_speakers": N_SPEAKERS,
        "speaker_id_map": {"a": 0, "b": 1, "c": 2},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
    }
    Path(str(path) + ".json").write_text(json.dumps(config))
    return path, model


def test_weights_and_hparams_round_trip(tiny_voice) -> None:
    path, model = tiny_voice
    weights = read_onnx_weights(path)
    source = weights.sources["flow.flows.0.enc.in_layers.0.weight"]
    assert source == "flow.flows.0.enc.in_layers.0.weight_v"
    hp = hparams_from_weights(weights, str(path), {"num_speakers": N_SPEAKERS})
    assert hp == model.hp
    for name, tensor in model.state_dict().items():
        np.testing.assert_allclose(weights.tensors[name], tensor.numpy(), rtol=1e-5, atol=1e-6)


def test_multi_speaker_parity_with_onnx(tiny_voice) -> None:
    path, _ = tiny_voice
    backend = TorchBackend.load(path)
    assert backend.num_speakers == N_SPEAKERS and backend.sample_rate == 16000
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = []
    for sid in range(N_SPEAKERS):
        (expected,) = session.run(
            None,
            {
                "input": np.asarray([IDS], dtype=np.int64),
                "input_lengths": np.asarray([len(IDS)], dtype=np.int64),
                "scales": np.asarray([0.0, 1.0, 0.0], dtype=np.float32),
                "sid": np.asarray([sid], dtype=np.int64),
            },
        )
        z = backend.encode(IDS, Scales(0.0, 1.0, 0.0, speaker_id=sid))
        audio = backend.decode(z, sid)
        expected = expected.reshape(-1)
        assert audio.shape == expected.shape
        assert np.linalg.norm(audio - expected) <= 1e-4 * np.linalg.norm(expected)
        outputs.append(audio)
    a, b = outputs[0], outputs[1]
    assert a.shape != b.shape or not np.allclose(a, b)  # the speaker matters
    with pytest.raises(ValueError, match="speaker_id"):
        backend.encode(IDS, Scales(0.0, 1.0, 0.0, speaker_id=N_SPEAKERS))
    backend.close()


def test_plain_duration_predictor_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = VitsModel(tiny_hparams(use_sdp=False)).eval()
    assert not hasattr(model.dp, "flows")
    with torch.inference_mode():
        ids = torch.tensor([IDS])
        mask = torch.ones(1, 1, len(IDS))
        m_p, logs_p, logw = model.text_stats(ids, mask)
        m, logs, y_mask = model.expand(m_p, logs_p, model.durations(logw, mask, 1.0))
        audio = model.decode(model.latent(m, logs, y_mask))
    assert audio.shape == (1, 1, m.shape[2] * model.hp.hop_samples)


def test_padded_ids_give_the_same_result() -> None:
    """Masks make padding exact (needed for the GPU engine's length buckets)."""
    model = _build(1)
    with torch.inference_mode():
        g = model.speaker_embedding(torch.tensor([2]))
        ids = torch.tensor([IDS])
        mask = torch.ones(1, 1, len(IDS))
        m_p, logs_p, logw = model.text_stats(ids, mask, g)
        padded = torch.tensor([IDS + [0] * 13])
        pmask = sequence_mask(torch.tensor([len(IDS)]), padded.shape[1]).unsqueeze(1).float()
        pm, plogs, plogw = model.text_stats(padded, pmask, g)
    n = len(IDS)
    torch.testing.assert_close(pm[..., :n], m_p, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plogs[..., :n], logs_p, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plogw[..., :n], logw, rtol=1e-5, atol=1e-5)
    assert torch.all(plogw[..., n:] == 0)


def test_stages_run_in_bfloat16() -> None:
    """Dtype-agnostic modules (for the GPU engine's mixed precision); fp32 durations."""
    model = _build(2)
    with torch.inference_mode():
        ids = torch.tensor([IDS])
        g = model.speaker_embedding(torch.tensor([0]))
        mask = torch.ones(1, 1, len(IDS))
        m_p, logs_p, logw = model.text_stats(ids, mask, g, torch.zeros(1, 2, len(IDS)))
        m, logs, y_mask = model.expand(m_p, logs_p, model.durations(logw, mask, 1.0))
        z = model.latent(m, logs, y_mask, g, torch.zeros_like(m))
        audio = model.decode(z, g)
        half = _build(2).to(torch.bfloat16)
        hg = half.speaker_embedding(torch.tensor([0]))
        hmask = mask.to(torch.bfloat16)
        hm_p, _, hlogw = half.text_stats(ids, hmask, hg, torch.zeros(1, 2, len(IDS)).bfloat16())
        assert hlogw.dtype == torch.bfloat16 and hm_p.shape == m_p.shape
        assert model.durations(hlogw, hmask, 1.0).dtype == torch.float32
        hz = half.latent(m.bfloat16(), logs.bfloat16(), y_mask.bfloat16(), hg)
        haudio = half.decode(z.bfloat16(), hg)
    assert hz.dtype == torch.bfloat16 and haudio.dtype == torch.bfloat16
    rel = (haudio.float() - audio).norm() / audio.norm()
    assert rel < 0.1, float(rel)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("AUTOVOICE_TEST_COMPILE") != "1",
    reason="torch.compile takes minutes on 2 cores; set AUTOVOICE_TEST_COMPILE=1",
)
def test_compiled_backend_matches_eager(tiny_voice) -> None:
    path, _ = tiny_voice
    eager = TorchBackend.load(path)
    compiled = TorchBackend.load(path, compile=True)
    assert compiled.compiled
    for n in (5, len(IDS)):
        exact = Scales(0.0, 1.0, 0.0, speaker_id=1)
        z = compiled.encode(IDS[:n], exact)
        z_ref = eager.encode(IDS[:n], exact)
        assert z.shape == z_ref.shape
        np.testing.assert_allclose(z, z_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(compiled.decode(z, 1), eager.decode(z, 1), rtol=1e-4, atol=1e-5)
