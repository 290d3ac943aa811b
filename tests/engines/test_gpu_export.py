"""ONNX export of the split stages (what TensorRT builds from): onnxruntime on the CPU gives the
PyTorch modules' values, at several lengths of the dynamic axes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from autovoice.engines.gpu_export import (  # noqa: E402
    STAGES,
    _Decoder,
    _Flow,
    _Text,
    example_inputs,
    export_stages,
)
from autovoice.engines.gpu_random import random_vits  # noqa: E402
from autovoice.engines.torch_vits import tiny_hparams  # noqa: E402

WRAPPERS = {"text": _Text, "flow": _Flow, "decoder": _Decoder}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = random_vits(tiny_hparams(n_speakers=2), seed=11)
    paths = export_stages(model, tmp_path_factory.mktemp("onnx"))
    return model, paths


def _run_both(model, path, stage, length):
    inputs = example_inputs(model, stage, length)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
    with torch.inference_mode():
        want = WRAPPERS[stage](model)(*inputs)
    return got, want if isinstance(want, tuple) else (want,)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("length", [7, 61])
def test_exported_stage_equals_torch(exported, stage, length):
    model, paths = exported
    got, want = _run_both(model, paths[stage], stage, length)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        w = w.numpy()
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(w).max()))


def test_io_names_and_dynamic_axes(exported):
    _model, paths = exported
    text = ort.InferenceSession(str(paths["text"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in text.get_inputs()] == ["ids", "x_mask", "dp_noise", "g"]
    assert [o.name for o in text.get_outputs()] == ["m_p", "logs_p", "logw"]
    assert text.get_inputs()[0].shape[1] == "phonemes"
    flow = ort.InferenceSession(str(paths["flow"]), providers=["CPUExecutionProvider"])
    assert flow.get_inputs()[0].shape[2] == "frames"


def test_fixed_decoder_window(tmp_path):
    model = random_vits(tiny_hparams(), seed=12)
    paths = export_stages(model, tmp_path, decoder_frames=24, stages=("decoder",))
    assert set(paths) == {"decoder"}
    session = ort.InferenceSession(str(paths["decoder"]), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, model.hp.inter_channels, 24]
    assert [i.name for i in session.get_inputs()] == ["z"]  # single speaker: no g
    with pytest.raises(ValueError, match="decoder_frames"):
        export_stages(model, tmp_path, decoder_frames=0)
