"""Shared fixtures: the real default voice, loaded once per test session."""

from __future__ import annotations

import importlib.util

import pytest

from autovoice.config import AppConfig, config_from_dict
from autovoice.engines import SpeakOptions, Synthesizer

if importlib.util.find_spec("tests.audio_fixtures") is not None:
    pytest_plugins = ["tests.audio_fixtures"]

#: Noise off: every path must give the same samples.
EXACT = SpeakOptions(noise_scale=0.0, noise_w=0.0)


@pytest.fixture(scope="session")
def onnx_config() -> AppConfig:
    """Defaults with the onnx engine."""
    return config_from_dict({"engine": "onnx"}, source="<tests>")


@pytest.fixture(scope="session")
def onnx_synth(onnx_config: AppConfig) -> Synthesizer:
    """The default voice on the onnxruntime engine (loaded once)."""
    synth = Synthesizer.load(onnx_config, warm_up=False)
    yield synth
    synth.close()
