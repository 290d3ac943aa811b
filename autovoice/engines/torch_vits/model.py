"""The VITS inference model of a Piper voice, split into stages for streaming and CUDA graphs.

Stages (each a method; all but `expand` keep their shapes fixed given fixed input shapes):

1. `text_stats(ids, x_mask, g, dp_noise)`: text encoder + duration predictor on phoneme ids
   padded to any length (masks make padding exact) -> prior mean/log-std and log-durations.
2. `durations(logw, x_mask, length_scale)`: ceil(exp(logw) * length_scale), as Piper's graph.
3. `expand(m_p, logs_p, w_ceil)`: length regulation to frames (data-dependent frame count).
4. `latent(m, logs, y_mask, g, noise)`: prior sample + flow in reverse -> z (masked).
5. `decode(z, g)`: HiFi-GAN generator -> audio.

`load_state` fills a model from `OnnxWeights` and names any weight that does not fit.

Thread: inference thread. RT-safe: no.
"""

from __future__ import annotations

import torch
from torch import nn

from autovoice.errors import VoiceError

from .duration import DurationPredictor, StochasticDurationPredictor
from .flow import ResidualCouplingBlock
from .generator import Generator
from .hparams import VitsHParams
from .onnx_weights import OnnxWeights
from .text_encoder import TextEncoder, sequence_mask

__all__ = ["VitsModel", "load_state"]


class VitsModel(nn.Module):
    """Piper's VITS synthesiser (inference only); parameter names follow Piper's."""

    def __init__(self, hp: VitsHParams) -> None:
        super().__init__()
        self.hp = hp
        self.enc_p = TextEncoder(hp)
        self.dp: nn.Module = (
            StochasticDurationPredictor(hp) if hp.use_sdp else DurationPredictor(hp)
        )
        self.flow = ResidualCouplingBlock(hp)
        self.dec = Generator(hp)
        if hp.n_speakers > 1:
            self.emb_g = nn.Embedding(hp.n_speakers, hp.gin_channels)

    def speaker_embedding(self, sid: torch.Tensor | None) -> torch.Tensor | None:
        """Speaker ids long [B] -> g [B, gin_channels, 1]; None for a single-speaker voice."""
        if self.hp.n_speakers <= 1:
            return None
        if sid is None:
            raise ValueError("a multi-speaker voice needs speaker ids")
        return self.emb_g(sid).unsqueeze(-1)

    def text_stats(
        self,
        ids: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None = None,
        dp_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Phoneme ids [B, T] and mask [B, 1, T] -> (m_p, logs_p [B, C, T], logw [B, 1, T]).

        `dp_noise` [B, 2, T] is the stochastic duration predictor's noise, already multiplied
        by noise_w (None = no noise).
        """
        x, m_p, logs_p = self.enc_p(ids, x_mask)
        logw = self.dp(x, x_mask, g, dp_noise)
        return m_p, logs_p, logw

    @staticmethod
    def durations(logw: torch.Tensor, x_mask: torch.Tensor, length_scale: float) -> torch.Tensor:
        """Frames per phoneme, float32 [B, 1, T]: ceil(exp(logw) * mask * length_scale)."""
        w = torch.exp(logw.float()) * x_mask.float() * length_scale
        return torch.ceil(w)

    @staticmethod
    def expand(
        m_p: torch.Tensor, logs_p: torch.Tensor, w_ceil: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Repeat each phoneme's stats for its frames -> (m [B, C, F], logs, y_mask [B, 1, F]).

        F = max over the batch of max(1, total frames), as in Piper (a frame past the total is
        zero).
        """
        w = w_ceil[:, 0]  # [B, T], integral floats
        cum = torch.cumsum(w, dim=-1)
        y_lengths = cum[:, -1].clamp_min(1).long()
        n_frames = int(y_lengths.max())
        frames = torch.arange(n_frames, device=w.device, dtype=cum.dtype)
        frames = frames.unsqueeze(0).expand(w.shape[0], n_frames).contiguous()
        owner = torch.searchsorted(cum.contiguous(), frames, right=True)  # phoneme of frame
        covered = (owner < w.shape[1]).to(m_p.dtype).unsqueeze(1)
        owner = owner.clamp_max(w.shape[1] - 1).unsqueeze(1)
        m = torch.gather(m_p, 2, owner.expand(-1, m_p.shape[1], -1)) * covered
        logs = torch.gather(logs_p, 2, owner.expand(-1, logs_p.shape[1], -1)) * covered
        y_mask = sequence_mask(y_lengths, n_frames).unsqueeze(1).to(m_p.dtype)
        return m, logs, y_mask

    def latent(
        self,
        m: torch.Tensor,
        logs: torch.Tensor,
        y_mask: torch.Tensor,
        g: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Prior stats per frame -> z [B, C, F] (masked). `noise` is scaled by noise_scale."""
        z_p = m if noise is None else m + noise * torch.exp(logs)
        return self.flow(z_p, y_mask, g=g) * y_mask

    def decode(self, z: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, C, F] -> audio [B, 1, F * hop_samples]."""
        return self.dec(z, g=g)


def load_state(model: VitsModel, weights: OnnxWeights, voice: str) -> None:
    """Copy `weights` into `model`, checking names, shapes and conv attributes.

    Raises:
        VoiceError: A weight has no place in the model, a model weight is missing, a shape
            differs, or a conv runs with other stride/dilation/padding in the graph (named).
    """
    state = model.state_dict()
    for name, array in weights.tensors.items():
        if name not in state:
            raise VoiceError(
                voice,
                f"weight {name} (ONNX initializer {weights.sources[name]!r}) has no place in "
                "the model",
            )
        if tuple(state[name].shape) != tuple(array.shape):
            raise VoiceError(
                voice,
                f"weight {name} (ONNX initializer {weights.sources[name]!r}) has shape "
                f"{tuple(array.shape)}, the model expects {tuple(state[name].shape)}",
            )
    missing = [n for n in state if n not in weights.tensors]
    if missing:
        raise VoiceError(voice, f"missing weight {missing[0]} ({len(missing)} missing in all)")
    for path, module in model.named_modules():
        attrs = weights.convs.get(path)
        if attrs is None or not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            continue
        ours = (module.stride[0], module.dilation[0], module.groups)
        theirs = (attrs.stride, attrs.dilation, attrs.groups)
        pad = module.padding[0]
        if ours != theirs or (pad and attrs.pads != (pad, pad)):
            raise VoiceError(
                voice,
                f"conv {path}: graph runs stride/dilation/groups {theirs} pads {attrs.pads}, "
                f"the model has {ours} padding {pad}",
            )
    with torch.no_grad():
        for name, array in weights.tensors.items():
            state[name].copy_(torch.from_numpy(array))
