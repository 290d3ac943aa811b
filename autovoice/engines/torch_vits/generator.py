"""HiFi-GAN generator of VITS: latent frames -> waveform (hop_samples per frame).

Purely convolutional, no masks: decoding a chunk of frames with enough context frames on each
side reproduces whole-utterance decoding (see the streaming engine). Activations shared by the
resblocks of a stage are computed once and temporaries are updated in place (inference only).

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .hparams import VitsHParams

__all__ = ["Generator"]

LRELU_SLOPE = 0.1


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, plain conv) pairs with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor, x_act: torch.Tensor | None = None) -> torch.Tensor:
        """x -> x + residuals; `x_act` = leaky_relu(x) when the caller already has it."""
        for n, (c1, c2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            a = x_act if n == 0 and x_act is not None else F.leaky_relu(x, LRELU_SLOPE)
            xt = c2(F.leaky_relu_(c1(a), LRELU_SLOPE))
            xt += x
            x = xt
        return x


class ResBlock2(nn.Module):
    """Dilated convs with residuals (one per dilation)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )

    def forward(self, x: torch.Tensor, x_act: torch.Tensor | None = None) -> torch.Tensor:
        """x -> x + residuals; `x_act` = leaky_relu(x) when the caller already has it."""
        for n, c in enumerate(self.convs):
            a = x_act if n == 0 and x_act is not None else F.leaky_relu(x, LRELU_SLOPE)
            xt = c(a)
            xt += x
            x = xt
        return x


class Generator(nn.Module):
    """z [B, inter_channels, F] (+ speaker g [B, G, 1]) -> audio [B, 1, F * hop_samples]."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        self.num_kernels = len(hp.resblock_kernel_sizes)
        ch = hp.upsample_initial_channel
        kpre, kpost = hp.conv_pre_kernel_size, hp.conv_post_kernel_size
        self.conv_pre = nn.Conv1d(hp.inter_channels, ch, kpre, padding=(kpre - 1) // 2)
        if hp.gin_channels:
            self.cond = nn.Conv1d(hp.gin_channels, ch, 1)
        block = ResBlock1 if hp.resblock_type == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k, p) in enumerate(
            zip(hp.upsample_rates, hp.upsample_kernel_sizes, hp.upsample_paddings, strict=True)
        ):
            self.ups.append(nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u, padding=p))
            for rk, rd in zip(hp.resblock_kernel_sizes, hp.resblock_dilations, strict=True):
                self.resblocks.append(block(ch // 2 ** (i + 1), rk, rd))
        last = ch // 2 ** len(hp.upsample_rates)
        self.conv_post = nn.Conv1d(last, 1, kpost, padding=(kpost - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        nk = self.num_kernels
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu_(x, LRELU_SLOPE))  # x is a fresh tensor of ours: in place
            x_act = F.leaky_relu(x, LRELU_SLOPE)  # shared by the first conv of each resblock
            xs = self.resblocks[i * nk](x, x_act)
            for j in range(1, nk):
                xs += self.resblocks[i * nk + j](x, x_act)
            x = xs.div_(nk)
        x = self.conv_post(F.leaky_relu_(x))
        return torch.tanh_(x)
