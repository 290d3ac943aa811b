"""Our PyTorch re-implementation of Piper's VITS inference, loading weights from the `.onnx`.

Modules: `onnx_weights` (initializers -> module paths), `hparams` (architecture read from the
weights), `text_encoder`, `duration`, `spline`, `flow`, `generator`, `model` (the stages),
`loader` (voice file -> model). Needs the `torch` extra.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("the torch engine needs PyTorch: pip install autovoice[torch]") from e

from .hparams import VitsHParams, medium_hparams, tiny_hparams
from .loader import load_vits
from .model import VitsModel

__all__ = ["VitsHParams", "VitsModel", "load_vits", "medium_hparams", "tiny_hparams"]
