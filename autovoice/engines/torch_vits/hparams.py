"""Hyper-parameters of a Piper VITS voice, read from its weights' shapes and the graph.

Nothing here is specific to one voice: x_low, low, medium and high voices differ in widths,
generator layout and resblock type, and all of it is read off the weights (shapes, counts) and
the conv nodes' attributes (dilations, strides, paddings). `medium_hparams()` gives the layout
of Piper's "medium" voices for random-weight models (GPU checks without the real voice).

This module needs no torch.

Thread: any. RT-safe: no.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autovoice.errors import VoiceError

from .onnx_weights import OnnxWeights

__all__ = ["VitsHParams", "hparams_from_weights", "medium_hparams", "tiny_hparams"]

SDP_TAIL_BOUND = 5.0
"""Range of the stochastic duration predictor's spline (fixed in VITS, not stored in weights)."""


@dataclass(frozen=True)
class VitsHParams:
    """Architecture of one VITS voice (inference part only).

    Attributes:
        n_vocab: Number of phoneme ids.
        hidden_channels: Width of the text encoder.
        inter_channels: Channels of the latent `z` (192 in Piper).
        filter_channels: Inner width of the text encoder's feed-forward layers.
        n_heads: Attention heads.
        n_layers: Text encoder layers.
        ffn_kernel_size: Kernel of the feed-forward convs.
        window_size: Relative-position attention window (each side).
        heads_share: Whether the relative embeddings are shared by all heads.
        n_speakers: Speakers (1 = single-speaker, no `emb_g`).
        gin_channels: Speaker embedding width (0 for single-speaker).
        use_sdp: Stochastic (True) or plain (False) duration predictor.
        dp_filter_channels: Width of the duration predictor.
        dp_kernel_size: Kernel of the duration predictor's convs.
        dp_n_layers: DDSConv layers in the stochastic duration predictor.
        dp_n_flows: ConvFlows in the stochastic duration predictor.
        dp_num_bins: Spline bins of each ConvFlow.
        flow_n_flows: Residual coupling layers of the flow.
        flow_hidden_channels: Width of the flow's WaveNet layers.
        flow_kernel_size: Kernel of the flow's WaveNet layers.
        flow_dilation_rate: Dilation growth of the flow's WaveNet layers.
        flow_n_layers: WaveNet layers per coupling layer.
        upsample_initial_channel: Generator width after conv_pre.
        upsample_rates: Stride of each generator upsampling.
        upsample_kernel_sizes: Kernel of each generator upsampling.
        upsample_paddings: Padding of each generator upsampling.
        resblock_type: "1" (three dilated + three plain convs) or "2" (two dilated convs).
        resblock_kernel_sizes: Kernel of each resblock in a stage.
        resblock_dilations: Dilations of each resblock's convs.
        conv_pre_kernel_size: Kernel of the generator's first conv.
        conv_post_kernel_size: Kernel of the generator's last conv.
    """

    n_vocab: int
    hidden_channels: int
    inter_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    ffn_kernel_size: int
    window_size: int
    heads_share: bool
    n_speakers: int
    gin_channels: int
    use_sdp: bool
    dp_filter_channels: int
    dp_kernel_size: int
    dp_n_layers: int
    dp_n_flows: int
    dp_num_bins: int
    flow_n_flows: int
    flow_hidden_channels: int
    flow_kernel_size: int
    flow_dilation_rate: int
    flow_n_layers: int
    upsample_initial_channel: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_paddings: tuple[int, ...]
    resblock_type: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilations: tuple[tuple[int, ...], ...]
    conv_pre_kernel_size: int = 7
    conv_post_kernel_size: int = 7

    @property
    def hop_samples(self) -> int:
        """Audio samples per latent frame (product of the upsampling strides)."""
        hop = 1
        for r in self.upsample_rates:
            hop *= r
        return hop


def medium_hparams(n_vocab: int = 256, n_speakers: int = 1) -> VitsHParams:
    """The layout of Piper's "medium" voices (e.g. en_US-joe-medium).

    Args:
        n_vocab: Number of phoneme ids.
        n_speakers: Speakers; >1 adds a 512-wide speaker embedding.
    """
    return VitsHParams(
        n_vocab=n_vocab,
        hidden_channels=192,
        inter_channels=192,
        filter_channels=768,
        n_heads=2,
        n_layers=6,
        ffn_kernel_size=3,
        window_size=4,
        heads_share=True,
        n_speakers=n_speakers,
        gin_channels=512 if n_speakers > 1 else 0,
        use_sdp=True,
        dp_filter_channels=192,
        dp_kernel_size=3,
        dp_n_layers=3,
        dp_n_flows=4,
        dp_num_bins=10,
        flow_n_flows=4,
        flow_hidden_channels=192,
        flow_kernel_size=5,
        flow_dilation_rate=1,
        flow_n_layers=4,
        upsample_initial_channel=256,
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_paddings=(4, 4, 2),
        resblock_type="2",
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilations=((1, 2), (2, 6), (3, 12)),
    )


def tiny_hparams(n_vocab: int = 40, n_speakers: int = 1, use_sdp: bool = True) -> VitsHParams:
    """A very small VITS layout for fast tests of plumbing (not a real voice)."""
    return VitsHParams(
        n_vocab=n_vocab,
        hidden_channels=16,
        inter_channels=8,
        filter_channels=32,
        n_heads=2,
        n_layers=2,
        ffn_kernel_size=3,
        window_size=4,
        heads_share=True,
        n_speakers=n_speakers,
        gin_channels=12 if n_speakers > 1 else 0,
        use_sdp=use_sdp,
        dp_filter_channels=16,
        dp_kernel_size=3,
        dp_n_layers=3,
        dp_n_flows=4,
        dp_num_bins=10,
        flow_n_flows=2,
        flow_hidden_channels=16,
        flow_kernel_size=5,
        flow_dilation_rate=1,
        flow_n_layers=2,
        upsample_initial_channel=32,
        upsample_rates=(4, 4),
        upsample_kernel_sizes=(8, 8),
        upsample_paddings=(2, 2),
        resblock_type="1",
        resblock_kernel_sizes=(3, 5),
        resblock_dilations=((1, 3, 5), (1, 3, 5)),
    )


def _count(names: set[str], pattern: str) -> list[int]:
    """Sorted distinct integer captures of `pattern` over `names`."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for n in names if (m := rx.match(n))})


def hparams_from_weights(w: OnnxWeights, voice: str, config: dict) -> VitsHParams:
    """Infer the architecture from weight shapes, conv attributes and the `.onnx.json`.

    Args:
        w: The weights read by `read_onnx_weights`.
        voice: The voice path (for error messages).
        config: The parsed `.onnx.json`.

    Raises:
        VoiceError: A weight the architecture needs is missing or inconsistent (named).
    """
    t = w.tensors
    names = set(t)

    def shape(name: str) -> tuple[int, ...]:
        if name not in t:
            raise VoiceError(voice, f"missing weight {name}")
        return tuple(t[name].shape)

    def conv(path: str):
        if path not in w.convs:
            raise VoiceError(voice, f"no conv node found for module {path}")
        return w.convs[path]

    n_vocab, hidden = shape("enc_p.emb.weight")
    inter = shape("enc_p.proj.weight")[0] // 2
    layers = _count(names, r"enc_p\.encoder\.attn_layers\.(\d+)\.")
    if not layers:
        raise VoiceError(voice, "missing weight enc_p.encoder.attn_layers.0.conv_q.weight")
    rel = shape("enc_p.encoder.attn_layers.0.emb_rel_k")
    k_channels = rel[2]
    if hidden % k_channels:
        raise VoiceError(voice, f"emb_rel_k shape {rel} does not divide hidden {hidden}")
    n_heads = hidden // k_channels
    ffn = shape("enc_p.encoder.ffn_layers.0.conv_1.weight")

    n_speakers, gin = 1, 0
    if "emb_g.weight" in t:
        n_speakers, gin = shape("emb_g.weight")
    cfg_speakers = int(config.get("num_speakers", 1))
    if cfg_speakers != n_speakers and not (cfg_speakers <= 1 and n_speakers == 1):
        raise VoiceError(
            voice, f"config num_speakers={cfg_speakers} but weights have {n_speakers} speakers"
        )

    use_sdp = "dp.flows.0.m" in t or any(n.startswith("dp.convs.") for n in names)
    if use_sdp:
        dp_filter = shape("dp.pre.weight")[0]
        dp_kernel = shape("dp.convs.convs_sep.0.weight")[2]
        dp_layers = len(_count(names, r"dp\.convs\.convs_sep\.(\d+)\."))
        flows = _count(names, r"dp\.flows\.(\d+)\.pre\.")
        if not flows:
            raise VoiceError(voice, "missing weight dp.flows.3.pre.weight")
        dp_n_flows = len(flows) + 1  # flows.1 is unused in inference and not exported
        if flows != [2 * i + 1 for i in range(1, dp_n_flows)]:
            raise VoiceError(voice, f"unexpected duration flow layout: dp.flows.{flows}")
        half = shape(f"dp.flows.{flows[0]}.pre.weight")[1]
        proj_out = shape(f"dp.flows.{flows[0]}.proj.weight")[0]
        if proj_out % half or (proj_out // half + 1) % 3:
            raise VoiceError(voice, f"dp.flows.{flows[0]}.proj.weight: odd shape {proj_out}")
        num_bins = (proj_out // half + 1) // 3
    else:
        dp_filter, _, dp_kernel = shape("dp.conv_1.weight")
        dp_layers, dp_n_flows, num_bins = 0, 0, 0

    flow_idx = _count(names, r"flow\.flows\.(\d+)\.pre\.")
    if not flow_idx or flow_idx != [2 * i for i in range(len(flow_idx))]:
        raise VoiceError(voice, f"unexpected flow layout: flow.flows.{flow_idx}")
    wn_layers = _count(names, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\.")
    flow_kernel = shape("flow.flows.0.enc.in_layers.0.weight")[2]
    dilation_rate = conv("flow.flows.0.enc.in_layers.1").dilation if len(wn_layers) > 1 else 1

    ups = _count(names, r"dec\.ups\.(\d+)\.weight")
    if not ups:
        raise VoiceError(voice, "missing weight dec.ups.0.weight")
    up_init = shape("dec.conv_pre.weight")[0]
    rates, kernels, pads = [], [], []
    for i in ups:
        a = conv(f"dec.ups.{i}")
        rates.append(a.stride)
        kernels.append(shape(f"dec.ups.{i}.weight")[2])
        pads.append(a.pads[0])
    n_res = len(_count(names, r"dec\.resblocks\.(\d+)\."))
    if n_res == 0 or n_res % len(ups):
        raise VoiceError(voice, f"{n_res} generator resblocks for {len(ups)} upsamplings")
    per_stage = n_res // len(ups)
    rtype = "1" if "dec.resblocks.0.convs1.0.weight" in t else "2"
    first = "convs1" if rtype == "1" else "convs"
    rk, rd = [], []
    for j in range(per_stage):
        rk.append(shape(f"dec.resblocks.{j}.{first}.0.weight")[2])
        n_convs = len(_count(names, rf"dec\.resblocks\.{j}\.{first}\.(\d+)\."))
        rd.append(tuple(conv(f"dec.resblocks.{j}.{first}.{c}").dilation for c in range(n_convs)))

    return VitsHParams(
        n_vocab=n_vocab,
        hidden_channels=hidden,
        inter_channels=inter,
        filter_channels=ffn[0],
        n_heads=n_heads,
        n_layers=len(layers),
        ffn_kernel_size=ffn[2],
        window_size=(rel[1] - 1) // 2,
        heads_share=rel[0] == 1,
        n_speakers=n_speakers,
        gin_channels=gin,
        use_sdp=use_sdp,
        dp_filter_channels=dp_filter,
        dp_kernel_size=dp_kernel,
        dp_n_layers=dp_layers,
        dp_n_flows=dp_n_flows,
        dp_num_bins=num_bins,
        flow_n_flows=len(flow_idx),
        flow_hidden_channels=shape("flow.flows.0.pre.weight")[0],
        flow_kernel_size=flow_kernel,
        flow_dilation_rate=dilation_rate,
        flow_n_layers=len(wn_layers),
        upsample_initial_channel=up_init,
        upsample_rates=tuple(rates),
        upsample_kernel_sizes=tuple(kernels),
        upsample_paddings=tuple(pads),
        resblock_type=rtype,
        resblock_kernel_sizes=tuple(rk),
        resblock_dilations=tuple(rd),
        conv_pre_kernel_size=shape("dec.conv_pre.weight")[2],
        conv_post_kernel_size=shape("dec.conv_post.weight")[2],
    )
