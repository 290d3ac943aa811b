"""VITS text encoder: phoneme embedding, relative-position self-attention, feed-forward convs.

Every layer takes a padding mask, so phoneme ids padded up to a fixed length (a shape bucket
for CUDA graphs) give the same values at the real positions as the unpadded ids.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .hparams import VitsHParams

__all__ = ["LayerNorm", "TextEncoder", "sequence_mask"]

MASK_FILL = -1e4
"""Score given to masked attention cells (as in VITS; representable in fp16)."""


def sequence_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """[B] lengths -> bool [B, max_length], True where position < length."""
    pos = torch.arange(max_length, device=lengths.device)
    return pos.unsqueeze(0) < lengths.unsqueeze(1)


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of [B, C, T] (parameters `gamma`, `beta`)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, -1)
        x = F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with relative-position keys and values inside a +-window (VITS).

    Relative terms are gathered within the band |i - j| <= window, which equals VITS's
    pad-and-reshape formulation (embeddings outside the window are zero there).
    """

    def __init__(self, channels: int, n_heads: int, window_size: int, heads_share: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        rel_heads = 1 if heads_share else n_heads
        n_rel = 2 * window_size + 1
        self.emb_rel_k = nn.Parameter(torch.zeros(rel_heads, n_rel, self.k_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(rel_heads, n_rel, self.k_channels))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, T], attn_mask bool [B, 1, T, T] -> [B, C, T]."""
        b, c, t = x.shape
        h, d, w = self.n_heads, self.k_channels, self.window_size
        q = self.conv_q(x).view(b, h, d, t).transpose(2, 3)  # [b, h, t, d]
        k = self.conv_k(x).view(b, h, d, t).transpose(2, 3)
        v = self.conv_v(x).view(b, h, d, t).transpose(2, 3)
        q = q / math.sqrt(d)
        scores = torch.matmul(q, k.transpose(-2, -1))  # [b, h, t, t]

        pos = torch.arange(t, device=x.device)
        offset = pos.unsqueeze(0) - pos.unsqueeze(1)  # [i, j] = j - i
        band = offset.abs() <= w
        rel_idx = (offset + w).clamp(0, 2 * w)
        rel_logits = torch.matmul(q, self.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # [b,h,t,2w+1]
        local = torch.gather(rel_logits, 3, rel_idx.expand(b, h, t, t))
        scores = scores + local * band.to(scores.dtype)

        scores = scores.masked_fill(~attn_mask, MASK_FILL)
        p_attn = F.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, v)

        # relative values: weight of offset r at row i is p_attn[i, i + r - w] (0 off the edge)
        r = torch.arange(2 * w + 1, device=x.device)
        col = pos.unsqueeze(1) + r.unsqueeze(0) - w  # [t, 2w+1]
        inside = (col >= 0) & (col < t)
        rel_w = torch.gather(p_attn, 3, col.clamp(0, t - 1).expand(b, h, t, 2 * w + 1))
        rel_w = rel_w * inside.to(rel_w.dtype)
        out = out + torch.matmul(rel_w, self.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).reshape(b, c, t)
        return self.conv_o(out)


class FFN(nn.Module):
    """Two convs with ReLU, 'same' padding, masked inputs."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(F.pad(x * x_mask, self.pad))
        x = torch.relu(x)
        x = self.conv_2(F.pad(x * x_mask, self.pad))
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer stack of VITS."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        c = hp.hidden_channels
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(c, hp.n_heads, hp.window_size, hp.heads_share)
            for _ in range(hp.n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(c) for _ in range(hp.n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(c, hp.filter_channels, hp.ffn_kernel_size) for _ in range(hp.n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(c) for _ in range(hp.n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        valid = x_mask.squeeze(1) > 0  # [b, t]
        attn_mask = (valid.unsqueeze(2) & valid.unsqueeze(1)).unsqueeze(1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask


class TextEncoder(nn.Module):
    """Phoneme ids -> hidden states and the prior's mean / log-std per phoneme."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        self.hidden_channels = hp.hidden_channels
        self.out_channels = hp.inter_channels
        self.emb = nn.Embedding(hp.n_vocab, hp.hidden_channels)
        self.encoder = Encoder(hp)
        self.proj = nn.Conv1d(hp.hidden_channels, hp.inter_channels * 2, 1)

    def forward(
        self, ids: torch.Tensor, x_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids long [B, T], x_mask [B, 1, T] (float) -> (x, m_p, logs_p), each [B, *, T]."""
        x = self.emb(ids) * math.sqrt(self.hidden_channels)
        x = x.transpose(1, -1)
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return x, m, logs
