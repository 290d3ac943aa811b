"""Build a `VitsModel` from a Piper voice file (`.onnx` + `.onnx.json`).

Thread: any (called at load time). RT-safe: no.
"""

from __future__ import annotations

import json
from pathlib import Path

from autovoice.errors import VoiceError

from .hparams import VitsHParams, hparams_from_weights
from .model import VitsModel, load_state
from .onnx_weights import read_onnx_weights

__all__ = ["load_vits", "read_voice_config"]


def read_voice_config(model_path: Path) -> dict:
    """Parse the voice's `.onnx.json` (model path + ".json").

    Raises:
        VoiceError: The file is missing or not a JSON object.
    """
    config_path = Path(str(model_path) + ".json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise VoiceError(str(model_path), f"voice config {config_path} not found") from e
    except (OSError, ValueError) as e:
        raise VoiceError(str(model_path), f"voice config {config_path} unreadable: {e}") from e
    if not isinstance(config, dict):
        raise VoiceError(str(model_path), f"voice config {config_path} is not a JSON object")
    return config


def load_vits(model_path: Path) -> tuple[VitsModel, VitsHParams, dict]:
    """Load a Piper voice into our PyTorch model (float32, CPU, eval mode).

    Args:
        model_path: The voice's `.onnx` file; its config is `model_path + ".json"`.

    Returns:
        (model, hyper-parameters, parsed config).

    Raises:
        VoiceError: Unreadable, non-Piper or inconsistent voice; the message names the cause.
    """
    voice = str(model_path)
    config = read_voice_config(model_path)
    weights = read_onnx_weights(Path(model_path))
    hp = hparams_from_weights(weights, voice, config)
    model = VitsModel(hp)
    load_state(model, weights, voice)
    model.eval()
    model.requires_grad_(False)
    return model, hp, config
