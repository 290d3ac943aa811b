"""Our PyTorch re-implementation of Piper's VITS inference, loading weights from the `.onnx`.

Modules: `onnx_weights` (initializers -> module paths, torch-free), `hparams` (architecture read
from the weights and conv nodes; presets for random-weight models), `text_encoder`, `duration`,
`spline`, `flow`, `generator`, `model` (the stages), `loader` (voice file -> model).

For the GPU engines: every stage but `VitsModel.expand` (length regulation) keeps its shapes
fixed for fixed input shapes, takes masks (ids padded to a bucket give the same values at the
real positions), has no host sync and no data-dependent Python branching, and takes its noise
as an input tensor (zeros = deterministic). Modules follow the parameters' dtype (fp16/bf16);
durations are computed in fp32 (`VitsModel.durations`). Needs the `torch` extra.
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
