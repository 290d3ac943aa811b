"""Engine fallback: `auto` skips engines that cannot start here, and an engine that fails
mid-utterance is replaced by the next one of the chain without repeating or losing audio.

Load-time failures are real: this machine has no CUDA, so tensorrt (not installed), cuda-graph
and torch-cuda really fail to load. A run-time GPU fault (a CUDA error in the middle of an
utterance) cannot be caused on a CPU-only machine, so `FlakyBackend` below is a FAKE: a real
onnx backend that raises at its Nth encode or decode call, standing in for that fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autovoice.config import config_from_dict
from autovoice.engines import Synthesizer, manager
from autovoice.engines.gpu_plan import decoder_windows
from autovoice.errors import EngineError, EngineUnavailable
from tests.conftest import EXACT

TEXT = "The quick brown fox jumps over the lazy dog. Then it runs."


@dataclass
class FlakyBackend:
    """FAKE engine fault: a real backend that raises RuntimeError at its `fail_at`-th call of
    `method` ("encode" or "decode"), as a GPU engine would on a device error."""

    inner: object
    method: str
    fail_at: int
    name: str = "flaky"
    decoder_windows: tuple[int, ...] = ()
    error: type = RuntimeError
    calls: int = 0
    closed: bool = False

    @property
    def hop_samples(self) -> int:
        return self.inner.hop_samples

    @property
    def z_channels(self) -> int:
        return self.inner.z_channels

    def _tick(self, method: str) -> None:
        if method == self.method:
            self.calls += 1
            if self.calls == self.fail_at:
                raise self.error("fake device fault (CUDA error: an illegal memory access)")

    def encode(self, ids, scales):
        self._tick("encode")
        return self.inner.encode(ids, scales)

    def decode(self, z, speaker_id=None):
        self._tick("decode")
        return self.inner.decode(z, speaker_id)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


@pytest.fixture
def flaky_chain(monkeypatch):
    """Put a FAKE flaky engine first in the auto chain; returns a setter for its fault."""
    made: list[FlakyBackend] = []
    fault = {"method": "decode", "fail_at": 3, "windows": (), "error": RuntimeError}

    def load_flaky(voice, config):
        backend = FlakyBackend(
            manager._load_onnx(voice, config),
            fault["method"],
            fault["fail_at"],
            decoder_windows=fault["windows"],
            error=fault["error"],
        )
        made.append(backend)
        return backend

    monkeypatch.setitem(manager.ENGINE_LOADERS, "flaky", load_flaky)

    def configure(chain, method="decode", fail_at=3, windows=(), error=RuntimeError):
        monkeypatch.setattr(manager, "AUTO_ORDER", chain)
        fault.update(method=method, fail_at=fail_at, windows=windows, error=error)
        return made

    return configure


@pytest.fixture(scope="module")
def reference(onnx_synth) -> np.ndarray:
    """TEXT streamed by the onnx engine alone."""
    return np.concatenate([c.samples for c in onnx_synth.speak(TEXT, EXACT)])


def _check_stream(chunks) -> np.ndarray:
    position = 0
    for chunk in chunks:
        assert chunk.start_sample == position  # nothing repeated, nothing skipped
        position += len(chunk.samples)
    last_flags = [c.last_in_clause for c in chunks]
    assert last_flags.count(True) == len({c.clause_index for c in chunks})
    return np.concatenate([c.samples for c in chunks])


def test_auto_skips_engines_that_cannot_run_here():
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        assert synth.engine_name == "onnx"
        skipped = "\n".join(synth.skipped_engines)
        assert "engine tensorrt: no CUDA device" in skipped
        assert "engine cuda-graph: no CUDA device" in skipped
        assert "engine torch-cuda: no CUDA device" in skipped
        assert synth.fallback_chain == ("torch-cpu",)
        assert synth.engine_status()["fallbacks"] == 0
    finally:
        synth.close()


@pytest.mark.parametrize("engine", ["cuda-graph", "tensorrt"])
def test_explicit_gpu_engine_reports_why_it_is_unavailable(engine):
    with pytest.raises(EngineError) as info:
        Synthesizer.load(config_from_dict({"engine": engine}), warm_up=False)
    assert info.value.engine == engine
    assert "CUDA" in str(info.value) or "not available" in str(info.value)


def test_cuda_graph_loader_raises_unavailable_without_cuda(onnx_synth):
    from autovoice.engines import cuda_graph_backend

    with pytest.raises(EngineUnavailable, match="no CUDA device"):
        cuda_graph_backend.load(onnx_synth.voice, config_from_dict({}))


def test_mid_clause_decode_failure_continues_on_next_engine(flaky_chain, reference):
    made = flaky_chain(("flaky", "onnx"), method="decode", fail_at=3)
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        chunks = list(synth.speak(TEXT, EXACT))
        audio = _check_stream(chunks)
        # the unit's z is kept: the next engine decodes only the chunks not yet yielded
        np.testing.assert_allclose(
            audio, reference, rtol=0, atol=1e-5
        )  # lazy-flow windows differ in float rounding only
        assert synth.engine_name == "onnx"
        assert synth.fallbacks == 1 and synth.failures == 1
        assert (
            "flaky: RuntimeError: fake device fault" in synth.engine_status()["recent_failures"][0]
        )
        assert made[0].closed
        assert synth.fallback_chain == ()
    finally:
        synth.close()


def test_failure_at_second_unit_encode_restarts_that_unit_only(flaky_chain, reference):
    flaky_chain(("flaky", "onnx"), method="encode", fail_at=2)
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        chunks = list(synth.speak(TEXT, EXACT))
        assert len({c.clause_index for c in chunks}) >= 2
        np.testing.assert_allclose(_check_stream(chunks), reference, rtol=0, atol=1e-5)
        assert synth.fallbacks == 1
    finally:
        synth.close()


def test_fallback_from_fixed_window_engine_skips_a_real_failing_gpu_engine(flaky_chain, reference):
    """GPU-style fixed decoder windows before the fault, plain windows after: the kept frames
    are the same, so the audio joins within the streaming tolerance. On the way, cuda-graph
    really fails to load (no CUDA) and is skipped."""
    windows = decoder_windows(16, 256, 16)
    flaky_chain(("flaky", "cuda-graph", "onnx"), method="decode", fail_at=4, windows=windows)
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        audio = _check_stream(list(synth.speak(TEXT, EXACT)))
        assert len(audio) == len(reference)
        assert np.linalg.norm(audio - reference) / np.linalg.norm(reference) < 1e-4
        assert synth.engine_name == "onnx"
        assert any("cuda-graph: no CUDA device" in s for s in synth.skipped_engines)
    finally:
        synth.close()


def test_explicit_engine_has_no_fallback(flaky_chain):
    flaky_chain(("flaky",), method="decode", fail_at=1)
    # "flaky" is not a config engine name: load it as the only member of the chain.
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        assert synth.fallback_chain == ()
        with pytest.raises(EngineError, match="fake device fault"):
            list(synth.speak(TEXT, EXACT))
        assert synth.failures == 1 and synth.fallbacks == 0
        assert synth.engine_name == "flaky"
    finally:
        synth.close()


def test_no_engine_left_to_fall_back_to(flaky_chain):
    flaky_chain(("flaky", "cuda-graph"), method="encode", fail_at=1)
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        with pytest.raises(EngineError, match="no fallback loaded"):
            list(synth.speak(TEXT, EXACT))
    finally:
        synth.close()


def test_request_errors_are_not_engine_failures(flaky_chain):
    """A ValueError (bad input: the caller's fault) propagates and triggers no fallback."""
    flaky_chain(("flaky", "onnx"), method="decode", fail_at=1, error=ValueError)
    synth = Synthesizer.load(config_from_dict({"engine": "auto"}), warm_up=False)
    try:
        with pytest.raises(ValueError, match="fake"):
            list(synth.speak(TEXT, EXACT))
        assert synth.failures == 0 and synth.fallbacks == 0
        assert synth.engine_name == "flaky"
    finally:
        synth.close()
