"""Export the split VITS stages of our PyTorch model to ONNX (for TensorRT, or any runtime).

Three graphs, each one stage of `VitsModel` (see `torch_vits.model`):

- `text.onnx`: ids int64 [1, T], x_mask [1, 1, T], dp_noise [1, 2, T] (+ g [1, G, 1]) ->
  m_p, logs_p [1, C, T], logw [1, 1, T]. The phoneme axis T is dynamic.
- `flow.onnx`: m, logs, noise [1, C, F], y_mask [1, 1, F] (+ g) -> z [1, C, F]. F dynamic.
- `decoder.onnx`: z [1, C, F] (+ g) -> audio [1, F * hop]. F is fixed to `decoder_frames` when
  given (one window shape), else dynamic.

Length regulation (durations -> frames) sits between `text` and `flow` and stays in PyTorch: its
output size depends on the data. Multi-speaker voices take the speaker embedding `g` as an input
(looked up outside), so the graphs need no embedding table.

Needs torch (the `torch` extra) and onnx; runs on CPU (the exported graphs are device-free).

Thread: any (load time). RT-safe: no.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from autovoice.engines.torch_vits import VitsModel

__all__ = ["EXPORT_VERSION", "OPSET", "STAGES", "example_inputs", "export_stages"]

OPSET = 17
"""ONNX opset of the exported graphs."""
EXPORT_VERSION = 1
"""Bumped when the exported graphs change (part of TensorRT's plan cache key)."""
STAGES = ("text", "flow", "decoder")
EXAMPLE_PHONEMES = 24
EXAMPLE_FRAMES = 48


class _Text(nn.Module):
    def __init__(self, model: VitsModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids, x_mask, dp_noise, g=None):
        return self.model.text_stats(ids, x_mask, g, dp_noise)


class _Flow(nn.Module):
    def __init__(self, model: VitsModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, m, logs, y_mask, noise, g=None):
        return self.model.latent(m, logs, y_mask, g, noise)


class _Decoder(nn.Module):
    def __init__(self, model: VitsModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z, g=None):
        return self.model.decode(z, g).reshape(1, -1)


def _io(stage: str, multi: bool) -> tuple[list[str], list[str], dict[str, dict[int, str]]]:
    """Input names, output names and dynamic axes of a stage."""
    g = ["g"] if multi else []
    if stage == "text":
        axes = {n: {1 if n == "ids" else 2: "phonemes"} for n in ("ids", "x_mask", "dp_noise")}
        axes.update({n: {2: "phonemes"} for n in ("m_p", "logs_p", "logw")})
        return ["ids", "x_mask", "dp_noise", *g], ["m_p", "logs_p", "logw"], axes
    if stage == "flow":
        names = ["m", "logs", "y_mask", "noise"]
        return [*names, *g], ["z"], {n: {2: "frames"} for n in [*names, "z"]}
    return ["z", *g], ["audio"], {"z": {2: "frames"}, "audio": {1: "samples"}}


def example_inputs(model: VitsModel, stage: str, length: int | None = None) -> tuple:
    """Deterministic example inputs of a stage (CPU, fp32), `length` phonemes or frames."""
    hp = model.hp
    gen = torch.Generator().manual_seed(1234)
    g = (torch.randn(1, hp.gin_channels, 1, generator=gen),) if hp.n_speakers > 1 else ()
    if stage == "text":
        t = length or EXAMPLE_PHONEMES
        ids = torch.randint(1, hp.n_vocab, (1, t), generator=gen)
        return (ids, torch.ones(1, 1, t), 0.8 * torch.randn(1, 2, t, generator=gen), *g)
    f = length or EXAMPLE_FRAMES
    c = hp.inter_channels
    if stage == "flow":
        m = torch.randn(1, c, f, generator=gen)
        logs = 0.1 * torch.randn(1, c, f, generator=gen)
        noise = 0.667 * torch.randn(1, c, f, generator=gen)
        return (m, logs, torch.ones(1, 1, f), noise, *g)
    if stage == "decoder":
        return (torch.randn(1, c, f, generator=gen), *g)
    raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")


def export_stages(
    model: VitsModel,
    out_dir: Path,
    decoder_frames: int | None = None,
    stages: tuple[str, ...] = STAGES,
) -> dict[str, Path]:
    """Export `model`'s three stages as ONNX files into `out_dir`.

    Args:
        model: A fp32 `VitsModel` (moved to CPU for the export).
        out_dir: Directory for `text.onnx`, `flow.onnx`, `decoder.onnx` (created).
        decoder_frames: Fixed decoder window in frames, or None for a dynamic frame axis.
        stages: Which stages to export (default all).

    Returns:
        Stage name -> path of its ONNX file.

    Raises:
        ValueError: `decoder_frames` < 1, or an unknown stage.
    """
    if decoder_frames is not None and decoder_frames < 1:
        raise ValueError(f"decoder_frames must be >= 1 or None, got {decoder_frames}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"stages must be among {', '.join(STAGES)}, got {unknown[0]!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    multi = model.hp.n_speakers > 1
    wrappers = {"text": _Text(model), "flow": _Flow(model), "decoder": _Decoder(model)}
    paths = {}
    for stage in stages:
        inputs, outputs, axes = _io(stage, multi)
        length = decoder_frames if stage == "decoder" else None
        if stage == "decoder" and decoder_frames is not None:
            axes = {}
        path = out_dir / f"{stage}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(
                wrappers[stage],
                example_inputs(model, stage, length),
                str(path),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        paths[stage] = path
    return paths
