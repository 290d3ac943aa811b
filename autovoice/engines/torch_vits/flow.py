"""VITS normalising flow (residual coupling layers with WaveNet blocks), reverse direction.

Convolutional in time: with a frame mask it runs on any window of frames, so it can be chunked
together with the decoder.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import torch
from torch import nn

from .hparams import VitsHParams

__all__ = ["ResidualCouplingBlock"]


class WN(nn.Module):
    """Non-causal WaveNet: gated dilated convs with residual and skip outputs."""

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int,
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(
                nn.Conv1d(
                    hidden_channels,
                    2 * hidden_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=padding,
                )
            )
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(nn.Conv1d(hidden_channels, out, 1))

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        hc = self.hidden_channels
        output = torch.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)
        for i, (in_layer, res_skip) in enumerate(
            zip(self.in_layers, self.res_skip_layers, strict=True)
        ):
            x_in = in_layer(x)
            if g is not None:
                x_in = x_in + g[:, i * 2 * hc : (i + 1) * 2 * hc, :]
            acts = torch.tanh(x_in[:, :hc]) * torch.sigmoid(x_in[:, hc:])
            res_skip_acts = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip_acts[:, :hc]) * x_mask
                output = output + res_skip_acts[:, hc:]
            else:
                output = output + res_skip_acts
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: x1 -= f(x0) in reverse."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        self.half_channels = hp.inter_channels // 2
        self.pre = nn.Conv1d(self.half_channels, hp.flow_hidden_channels, 1)
        self.enc = WN(
            hp.flow_hidden_channels,
            hp.flow_kernel_size,
            hp.flow_dilation_rate,
            hp.flow_n_layers,
            hp.gin_channels,
        )
        self.post = nn.Conv1d(hp.flow_hidden_channels, self.half_channels, 1)

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        m = self.post(h) * x_mask
        x1 = (x1 - m) * x_mask
        return torch.cat([x0, x1], 1)


class Flip(nn.Module):
    """Reverse the channel order (no parameters)."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """Coupling layers (even indices) interleaved with flips (odd), run in reverse."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(hp.flow_n_flows):
            self.flows.append(ResidualCouplingLayer(hp))
            self.flows.append(Flip())

    def forward(
        self, z_p: torch.Tensor, y_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Prior sample z_p [B, C, F] -> latent z [B, C, F] (reverse flow)."""
        x = z_p
        for flow in reversed(self.flows):
            x = flow(x, y_mask, g=g)
        return x
