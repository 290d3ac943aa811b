"""VITS duration predictors: the stochastic one (flows over noise) and the plain conv one.

Both return log-durations [B, 1, T] (zero at masked positions). The stochastic predictor runs
its flows in reverse only (inference); `flows.1` is unused in reverse and is not built.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .hparams import SDP_TAIL_BOUND, VitsHParams
from .spline import rq_spline_inverse
from .text_encoder import LayerNorm

__all__ = ["DurationPredictor", "StochasticDurationPredictor"]


class DDSConv(nn.Module):
    """Dilated depthwise-separable conv stack (dilation kernel_size**i), GELU, residual."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int) -> None:
        super().__init__()
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(n_layers):
            dilation = kernel_size**i
            padding = (kernel_size * dilation - dilation) // 2
            self.convs_sep.append(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    groups=channels,
                    dilation=dilation,
                    padding=padding,
                )
            )
            self.convs_1x1.append(nn.Conv1d(channels, channels, 1))
            self.norms_1.append(LayerNorm(channels))
            self.norms_2.append(LayerNorm(channels))

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        if g is not None:
            x = x + g
        for sep, n1, c1, n2 in zip(
            self.convs_sep, self.norms_1, self.convs_1x1, self.norms_2, strict=True
        ):
            y = F.gelu(n1(sep(x * x_mask)))
            y = F.gelu(n2(c1(y)))
            x = x + y
        return x * x_mask


class ElementwiseAffine(nn.Module):
    """Per-channel affine flow; reverse: (x - m) * exp(-logs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        return (x - self.m) * torch.exp(-self.logs) * x_mask


class ConvFlow(nn.Module):
    """Spline coupling flow conditioned on the duration predictor's hidden state (reverse)."""

    def __init__(
        self, in_channels: int, filter_channels: int, kernel_size: int, n_layers: int, bins: int
    ) -> None:
        super().__init__()
        self.half_channels = in_channels // 2
        self.filter_channels = filter_channels
        self.num_bins = bins
        self.pre = nn.Conv1d(self.half_channels, filter_channels, 1)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers)
        self.proj = nn.Conv1d(filter_channels, self.half_channels * (bins * 3 - 1), 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0)
        h = self.convs(h, x_mask, g=g)
        h = self.proj(h) * x_mask
        b, c, t = x0.shape
        h = h.reshape(b, c, -1, t).permute(0, 1, 3, 2)  # [b, c, t, 3 * bins - 1]
        nb = self.num_bins
        scale = math.sqrt(self.filter_channels)
        x1 = rq_spline_inverse(
            x1, h[..., :nb] / scale, h[..., nb : 2 * nb] / scale, h[..., 2 * nb :], SDP_TAIL_BOUND
        )
        return torch.cat([x0, x1], 1) * x_mask


class StochasticDurationPredictor(nn.Module):
    """Noise -> log-durations through reversed spline flows (VITS, inference direction)."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        fc = hp.dp_filter_channels
        self.n_flows = hp.dp_n_flows
        self.pre = nn.Conv1d(hp.hidden_channels, fc, 1)
        self.proj = nn.Conv1d(fc, fc, 1)
        self.convs = DDSConv(fc, hp.dp_kernel_size, hp.dp_n_layers)
        if hp.gin_channels:
            self.cond = nn.Conv1d(hp.gin_channels, fc, 1)
        # Indices as in VITS: 0 affine, 2i+1 ConvFlow, 2i+2 Flip; flows.1 is dropped in reverse.
        flows = {"0": ElementwiseAffine(2)}
        for i in range(1, hp.dp_n_flows):
            flows[str(2 * i + 1)] = ConvFlow(
                2, fc, hp.dp_kernel_size, hp.dp_n_layers, hp.dp_num_bins
            )
        self.flows = nn.ModuleDict(flows)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None,
        noise: torch.Tensor | None,
    ) -> torch.Tensor:
        """x [B, H, T], x_mask [B, 1, T], g [B, G, 1] or None, noise [B, 2, T] already
        scaled by noise_w (None = zeros) -> log-durations [B, 1, T]."""
        x = self.pre(x)
        if g is not None:
            x = x + self.cond(g)
        x = self.convs(x, x_mask)
        x = self.proj(x) * x_mask
        b, _, t = x.shape
        z = noise if noise is not None else x.new_zeros(b, 2, t)
        for i in range(self.n_flows - 1, 0, -1):
            z = torch.flip(z, [1])
            z = self.flows[str(2 * i + 1)](z, x_mask, g=x)
        z = torch.flip(z, [1])
        z = self.flows["0"](z, x_mask)
        return z[:, :1]


class DurationPredictor(nn.Module):
    """Plain conv duration predictor (voices trained without the stochastic one)."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        fc, k = hp.dp_filter_channels, hp.dp_kernel_size
        self.conv_1 = nn.Conv1d(hp.hidden_channels, fc, k, padding=k // 2)
        self.norm_1 = LayerNorm(fc)
        self.conv_2 = nn.Conv1d(fc, fc, k, padding=k // 2)
        self.norm_2 = LayerNorm(fc)
        self.proj = nn.Conv1d(fc, 1, 1)
        if hp.gin_channels:
            self.cond = nn.Conv1d(hp.gin_channels, hp.hidden_channels, 1)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same signature as the stochastic predictor; `noise` is ignored."""
        if g is not None:
            x = x + self.cond(g)
        x = self.norm_1(torch.relu(self.conv_1(x * x_mask)))
        x = self.norm_2(torch.relu(self.conv_2(x * x_mask)))
        x = self.proj(x * x_mask)
        return x * x_mask
