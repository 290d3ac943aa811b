"""Seeded random-weight VITS models with fixed durations: GPU checks without a voice file.

A lent GPU machine receives at most 64 MiB with a call and has no internet, while the default
voice alone is 63 MB. A model of the same architecture (`medium_hparams`) with seeded random
weights does the same compute; its duration predictor is set so that, with `noise_w` 0, every
phoneme lasts `frames_per_phoneme` frames (times the length scale), like real speech (about 6
frames, 70 ms), so frame counts and therefore timings match a real voice's.

Needs torch.

Thread: any (load time). RT-safe: no.
"""

from __future__ import annotations

import math

import torch

from autovoice.engines.torch_vits import VitsHParams, VitsModel
from autovoice.engines.torch_vits.duration import StochasticDurationPredictor

__all__ = ["random_ids", "random_vits"]

WEIGHT_STD = 0.05
"""Standard deviation of the random weights (keeps activations and audio in range)."""
DURATION_MARGIN = 1e-3
"""Log-duration margin below the target frame count."""


def random_vits(hp: VitsHParams, seed: int = 0, frames_per_phoneme: float = 6.0) -> VitsModel:
    """A `VitsModel` of architecture `hp` with seeded random weights and fixed durations.

    Args:
        hp: The architecture (e.g. `medium_hparams()`).
        seed: Seed of the weights.
        frames_per_phoneme: Frames each phoneme lasts at length scale 1 and noise_w 0
            (rounded up when not whole).

    Returns:
        The model in eval mode, on the CPU, fp32, without gradients.
    """
    if frames_per_phoneme <= 0:
        raise ValueError(f"frames_per_phoneme must be > 0, got {frames_per_phoneme}")
    model = VitsModel(hp).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".gamma"):
                param.fill_(1.0)
            elif name.endswith(".beta"):
                param.zero_()
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * WEIGHT_STD)
        # A hair under the target, so ceil() gives it despite rounding on any device.
        log_frames = math.log(frames_per_phoneme) - DURATION_MARGIN
        dp = model.dp
        if isinstance(dp, StochasticDurationPredictor):
            # Zero spline parameters: noise 0 stays 0 through the flows; the final affine
            # flow then gives logw = -m[0] * exp(-logs[0]).
            for key, flow in dp.flows.items():
                if key != "0":
                    flow.proj.weight.zero_()
                    flow.proj.bias.zero_()
            dp.flows["0"].m.zero_()
            dp.flows["0"].logs.zero_()
            dp.flows["0"].m[0] = -log_frames
        else:
            dp.proj.weight.zero_()
            dp.proj.bias.fill_(log_frames)
    return model


def random_ids(n_vocab: int, length: int, seed: int) -> list[int]:
    """`length` seeded random phoneme ids in 1 .. n_vocab - 1."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, n_vocab, (length,), generator=gen).tolist()
