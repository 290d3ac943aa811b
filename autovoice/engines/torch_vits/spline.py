"""Inverse rational-quadratic spline with linear tails (the ConvFlow transform of VITS).

Computed for every element with `torch.where` instead of boolean indexing, so shapes stay
fixed (CUDA graphs, torch.compile) and padded positions cost nothing special.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["rq_spline_inverse"]

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
SEARCH_EPS = 1e-6


def _knots(unnormalized: torch.Tensor, lo: float, hi: float, min_size: float):
    """Softmax bin sizes -> (cumulative knots [..., n+1], sizes [..., n])."""
    n = unnormalized.shape[-1]
    sizes = F.softmax(unnormalized, dim=-1)
    sizes = min_size + (1 - min_size * n) * sizes
    cum = torch.cumsum(sizes, dim=-1)
    cum = F.pad(cum, (1, 0), mode="constant", value=0.0)
    cum = (hi - lo) * cum + lo
    edge_lo = torch.full_like(cum[..., :1], lo)
    edge_hi = torch.full_like(cum[..., :1], hi)
    cum = torch.cat([edge_lo, cum[..., 1:-1], edge_hi], dim=-1)
    sizes = cum[..., 1:] - cum[..., :-1]
    return cum, sizes


def rq_spline_inverse(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    tail_bound: float,
) -> torch.Tensor:
    """Invert the spline on [-tail_bound, tail_bound]; identity outside.

    Args:
        inputs: Values [...].
        unnormalized_widths: [..., n_bins].
        unnormalized_heights: [..., n_bins].
        unnormalized_derivatives: [..., n_bins - 1] (inner knots; the tails get slope 1).
        tail_bound: Half-width of the spline's interval.

    Returns:
        The transformed values, shaped like `inputs`.
    """
    inside = (inputs >= -tail_bound) & (inputs <= tail_bound)
    x = inputs.clamp(-tail_bound, tail_bound)

    constant = math.log(math.exp(1 - MIN_DERIVATIVE) - 1)
    edge = torch.full_like(unnormalized_derivatives[..., :1], constant)
    ud = torch.cat([edge, unnormalized_derivatives, edge], dim=-1)

    cumwidths, widths = _knots(unnormalized_widths, -tail_bound, tail_bound, MIN_BIN_WIDTH)
    cumheights, heights = _knots(unnormalized_heights, -tail_bound, tail_bound, MIN_BIN_HEIGHT)
    derivatives = MIN_DERIVATIVE + F.softplus(ud)

    search = torch.cat([cumheights[..., :-1], cumheights[..., -1:] + SEARCH_EPS], dim=-1)
    bin_idx = (torch.sum(x.unsqueeze(-1) >= search, dim=-1) - 1).unsqueeze(-1)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, bin_idx).squeeze(-1)

    in_cumwidths = pick(cumwidths)
    in_widths = pick(widths)
    in_cumheights = pick(cumheights)
    in_delta = pick(heights / widths)
    in_d = pick(derivatives)
    in_d1 = pick(derivatives[..., 1:])
    in_heights = pick(heights)

    dy = x - in_cumheights
    slope_sum = in_d + in_d1 - 2 * in_delta
    a = dy * slope_sum + in_heights * (in_delta - in_d)
    b = in_heights * in_d - dy * slope_sum
    c = -in_delta * dy
    discriminant = (b.pow(2) - 4 * a * c).clamp_min(0)
    root = (2 * c) / (-b - torch.sqrt(discriminant))
    outputs = root * in_widths + in_cumwidths
    return torch.where(inside, outputs, inputs)
