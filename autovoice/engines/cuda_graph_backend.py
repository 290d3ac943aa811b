"""CUDA-graph engine: our PyTorch VITS stages captured once at fixed shapes, then replayed.

Each stage runs on static device buffers at one of a few fixed shapes (see
`autovoice.engines.gpu_plan`): the text encoder + duration predictor per phoneme-length bucket,
the flow per frame bucket, the decoder per window size. At load every stage is warmed up and
captured into a CUDA graph on the engine's own stream (all graphs share one memory pool: they
are replayed one at a time, in order). Per call the engine only copies inputs into the static
buffers, replays, and copies the output to pinned host memory with a non-blocking copy.

Padding is exact: ids are padded with masked positions, the flow's frames with masked frames;
the decoder is never padded (windows slide over real frames, `gpu_plan.stream_plan`). A shape
that no graph fits (a clause longer than the largest bucket, a clause shorter than the smallest
decoder window) runs eagerly on the GPU and is counted in `eager_calls`.

Durations, length regulation and the encoder run in fp32 (TF32 off); the decoder runs in the
configured precision (`gpu_plan.resolve_precision`). If capture fails (an op not capturable,
out of memory), the engine logs once and runs the same stages eagerly on CUDA (`graphs_active`
False).

Without CUDA, `load` raises `EngineUnavailable`. `CudaGraphBackend.from_model(..., capture=False)`
runs the identical buffer/padding logic eagerly on any device (this is how it is tested on CPU).

Thread: one inference thread at a time. RT-safe: no.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the cuda-graph engine needs PyTorch with CUDA: pip install autovoice[gpu]"
    ) from e

from autovoice.config import AppConfig
from autovoice.engines.base import Scales, check_encode_args
from autovoice.engines.gpu_plan import (
    decoder_windows,
    frame_buckets,
    phoneme_buckets,
    pick_bucket,
    resolve_precision,
)
from autovoice.engines.torch_vits import VitsModel, load_vits
from autovoice.engines.voice import VoiceInfo
from autovoice.errors import EngineError, EngineUnavailable

__all__ = ["CudaGraphBackend", "load"]

_LOG = logging.getLogger(__name__)

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
WARMUP_RUNS = 3
"""Eager runs of each stage on the side stream before capture (cuDNN picks its algorithms)."""


class _Stage:
    """One fixed-shape call on static input buffers.

    After `capture` the call is a CUDA-graph replay whose outputs land in the same tensors each
    time; before (CPU, or after a failed capture) it is an eager call on the same buffers.
    """

    def __init__(self, name: str, fn: Callable[..., tuple], inputs: dict[str, Any]) -> None:
        self.name = name
        self.fn = fn
        self.inputs = inputs
        self.graph: Any = None
        self.outputs: tuple | None = None

    def capture(self, stream: Any, pool: Any) -> None:
        """Warm up on `stream`, then capture the call into a graph using memory pool `pool`."""
        stream.wait_stream(torch.cuda.current_stream(stream.device))
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_RUNS):
                self.fn(**self.inputs)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=stream):
            outputs = self.fn(**self.inputs)
        self.graph, self.outputs = graph, outputs

    def drop_graph(self) -> None:
        """Forget the graph (eager from now on)."""
        self.graph, self.outputs = None, None

    def run(self) -> tuple:
        """Replay (captured) or call eagerly; returns the output tensors."""
        if self.graph is not None:
            self.graph.replay()
            return self.outputs  # type: ignore[return-value]
        return self.fn(**self.inputs)


@dataclass
class CudaGraphBackend:
    """A voice as captured CUDA graphs (or the same stages eagerly), behind `Backend`.

    Attributes:
        model: The `VitsModel`; encoder parts fp32, `model.dec` in `precision`.
        device: `torch.device` it runs on.
        precision: Decoder precision: fp32, fp16 or bf16.
        phoneme_buckets: Phoneme lengths the text stage is captured at.
        frame_buckets: Frame counts the flow is captured at.
        decoder_windows: Window sizes (frames) the decoder is captured at; the synthesizer
            slides its windows to these sizes (`gpu_plan.stream_plan`).
        sample_rate: Output rate in Hz.
        hop_samples: Audio samples per latent frame.
        z_channels: Channels of `z`.
        num_speakers: Speakers of the voice.
        generator: Random source of the noise.
        graphs_active: True while stages replay captured graphs.
        eager_calls: Calls no captured shape fitted (run eagerly).
        name: "cuda-graph".
    """

    model: VitsModel
    device: Any
    precision: str
    phoneme_buckets: tuple[int, ...]
    frame_buckets: tuple[int, ...]
    decoder_windows: tuple[int, ...]
    sample_rate: int
    hop_samples: int
    z_channels: int
    num_speakers: int = 1
    generator: Any = None
    graphs_active: bool = False
    eager_calls: int = 0
    name: str = "cuda-graph"
    _text: dict[int, _Stage] = field(default_factory=dict, repr=False)
    _flow: dict[int, _Stage] = field(default_factory=dict, repr=False)
    _dec: dict[int, _Stage] = field(default_factory=dict, repr=False)
    _host: dict[str, Any] = field(default_factory=dict, repr=False)
    _g: Any = field(default=None, repr=False)
    _stream: Any = field(default=None, repr=False)

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_model(
        cls,
        model: VitsModel,
        device: str = "cuda",
        precision: str = "fp32",
        phoneme_sizes: tuple[int, ...] = phoneme_buckets(200),
        frame_sizes: tuple[int, ...] = frame_buckets(),
        windows: tuple[int, ...] = decoder_windows(16, 256, 16),
        sample_rate: int = 22050,
        capture: bool = True,
    ) -> CudaGraphBackend:
        """Move `model` to `device`, allocate static buffers, and capture when asked.

        Args:
            model: A loaded fp32 `VitsModel` (it is modified: moved, decoder cast).
            device: "cuda", "cuda:N" or "cpu" (cpu: eager on the static buffers, for tests).
            precision: Decoder precision (fp32, fp16, bf16).
            phoneme_sizes: Phoneme-length buckets.
            frame_sizes: Flow frame buckets.
            windows: Decoder window sizes.
            sample_rate: Output rate in Hz.
            capture: Capture CUDA graphs (CUDA only); on failure logs once and runs eagerly.

        Raises:
            ValueError: unknown precision or device.
            EngineError: moving the model to the device failed.
        """
        if precision not in TORCH_DTYPES:
            raise ValueError(
                f"precision must be one of {', '.join(TORCH_DTYPES)}, got {precision!r}"
            )
        dev = torch.device(device)
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        try:
            model.to(dev)
            model.dec.to(TORCH_DTYPES[precision])
        except RuntimeError as e:
            raise EngineError("cuda-graph", f"cannot move the model to {device}: {e}") from e
        hp = model.hp
        backend = cls(
            model=model,
            device=dev,
            precision=precision,
            phoneme_buckets=tuple(sorted(phoneme_sizes)),
            frame_buckets=tuple(sorted(frame_sizes)),
            decoder_windows=tuple(sorted(windows)),
            sample_rate=sample_rate,
            hop_samples=hp.hop_samples,
            z_channels=hp.inter_channels,
            num_speakers=hp.n_speakers,
            generator=torch.Generator(device=dev),
        )
        backend._allocate()
        if capture and dev.type == "cuda":
            backend._capture_all()
        return backend

    def _cuda(self) -> bool:
        return self.device.type == "cuda"

    def _host_buffer(self, numel: int, dtype: Any) -> Any:
        """Flat host staging buffer (pinned on CUDA, for non-blocking copies)."""
        return torch.zeros(numel, dtype=dtype, pin_memory=self._cuda())

    def _allocate(self) -> None:
        """Static device buffers and stages for every bucket, and pinned host buffers."""
        hp = self.model.hp
        dev, c = self.device, hp.inter_channels
        if self._cuda():
            self._stream = torch.cuda.Stream(device=dev)
        self._g = torch.zeros(1, hp.gin_channels, 1, device=dev) if hp.n_speakers > 1 else None
        g = self._g
        model = self.model
        dtype = TORCH_DTYPES[self.precision]

        def text_fn(ids, x_mask, dp_noise):
            return model.text_stats(ids, x_mask, g, dp_noise)

        def flow_fn(m, logs, y_mask, noise):
            return (model.latent(m, logs, y_mask, g, noise),)

        def dec_fn(z):
            gd = None if g is None else g.to(dtype)
            return (model.decode(z.to(dtype), gd).reshape(-1).float(),)

        for n in self.phoneme_buckets:
            inputs = {
                "ids": torch.zeros(1, n, dtype=torch.long, device=dev),
                "x_mask": torch.zeros(1, 1, n, device=dev),
                "dp_noise": torch.zeros(1, 2, n, device=dev),
            }
            self._text[n] = _Stage(f"text[{n}]", text_fn, inputs)
        for f in self.frame_buckets:
            inputs = {
                "m": torch.zeros(1, c, f, device=dev),
                "logs": torch.zeros(1, c, f, device=dev),
                "y_mask": torch.zeros(1, 1, f, device=dev),
                "noise": torch.zeros(1, c, f, device=dev),
            }
            self._flow[f] = _Stage(f"flow[{f}]", flow_fn, inputs)
        for w in self.decoder_windows:
            self._dec[w] = _Stage(f"decode[{w}]", dec_fn, {"z": torch.zeros(1, c, w, device=dev)})
        longest_ids = max(self.phoneme_buckets, default=1)
        most_frames = max(self.frame_buckets, default=1)
        widest = max(self.decoder_windows, default=1)
        self._host = {
            "ids": self._host_buffer(longest_ids, torch.long),
            "z_out": self._host_buffer(c * most_frames, torch.float32),
            "z_in": self._host_buffer(c * widest, torch.float32),
            "audio": self._host_buffer(widest * self.hop_samples, torch.float32),
        }

    def _stages(self) -> list[_Stage]:
        return [*self._text.values(), *self._flow.values(), *self._dec.values()]

    def _capture_all(self) -> None:
        """Warm up and capture every stage; on any failure log once and stay eager."""
        started = time.monotonic()
        pool = torch.cuda.graph_pool_handle()
        stage = None
        try:
            with torch.inference_mode(), self._numerics():
                for stage in self._stages():
                    stage.capture(self._stream, pool)
        except Exception as e:  # capture raises many types (unsupported op, OOM, driver)
            where = stage.name if stage is not None else "?"
            _LOG.warning(
                "cuda-graph: capture of %s failed, running eager CUDA: %s: %s",
                where,
                type(e).__name__,
                e,
            )
            for s in self._stages():
                s.drop_graph()
            with contextlib.suppress(Exception):
                torch.cuda.synchronize(self.device)
            self.graphs_active = False
            return
        self.graphs_active = True
        _LOG.info(
            "cuda-graph: captured %d graphs (%s decoder) in %.2f s",
            len(self._stages()),
            self.precision,
            time.monotonic() - started,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _numerics(self) -> Any:
        """cuDNN settings for every call and capture: autotuned fixed shapes, and no TF32 (fp32
        means fp32: TF32 convs could move a rounded-up duration and change the sample count)."""
        if not self._cuda():
            return contextlib.nullcontext()
        return torch.backends.cudnn.flags(enabled=True, benchmark=True, allow_tf32=False)

    def _on_stream(self) -> Any:
        return (
            torch.cuda.stream(self._stream)
            if self._stream is not None
            else contextlib.nullcontext()
        )

    def _sync(self) -> None:
        if self._stream is not None:
            self._stream.synchronize()

    def _set_speaker(self, speaker_id: int | None) -> Any:
        """Write the speaker embedding into the static `g` buffer; returns it (None if single)."""
        if self.num_speakers <= 1:
            return None
        sid = 0 if speaker_id is None else speaker_id
        if not 0 <= sid < self.num_speakers:
            raise ValueError(f"speaker_id must be in 0..{self.num_speakers - 1}, got {sid}")
        emb = self.model.emb_g.weight[sid].reshape(1, -1, 1)
        self._g.copy_(emb)
        return self._g

    def _fill_noise(self, buf: Any, scale: float) -> None:
        if scale == 0:
            buf.zero_()
        else:
            buf.normal_(generator=self.generator).mul_(scale)

    def _to_host(self, tensor: Any, key: str) -> np.ndarray:
        """Non-blocking copy of a device tensor into the pinned buffer `key`; wait; numpy copy."""
        if self._host[key].numel() < tensor.numel():  # an eager call beyond every bucket
            self._host[key] = self._host_buffer(tensor.numel(), self._host[key].dtype)
        flat = self._host[key][: tensor.numel()]
        flat.copy_(tensor.reshape(-1), non_blocking=True)
        self._sync()
        return flat.numpy().reshape(tuple(tensor.shape)).copy()

    def _check(self, what: str, exc: Exception) -> EngineError:
        return EngineError(self.name, f"{what} failed: {type(exc).__name__}: {exc}")

    # -- Backend protocol ----------------------------------------------------------------------

    def encode(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray:
        """Phoneme ids of one clause -> latent z, float32 [z_channels, frames].

        Raises:
            ValueError: empty ids, an id outside the voice's symbols, bad length scale or speaker.
            EngineError: the device failed.
        """
        check_encode_args(phoneme_ids, scales, self.model.hp.n_vocab)
        with torch.inference_mode(), self._on_stream(), self._numerics():
            g = self._set_speaker(scales.speaker_id)
            try:
                return self._encode(phoneme_ids, scales, g)
            except RuntimeError as e:
                raise self._check("encode", e) from e

    def _encode(self, phoneme_ids: list[int], scales: Scales, g: Any) -> np.ndarray:
        n = len(phoneme_ids)
        bucket = pick_bucket(n, self.phoneme_buckets)
        if bucket is None:
            self.eager_calls += 1
            ids = torch.tensor([phoneme_ids], dtype=torch.long, device=self.device)
            x_mask = torch.ones(1, 1, n, device=self.device)
            dp_noise = torch.zeros(1, 2, n, device=self.device)
            self._fill_noise(dp_noise, scales.noise_w)
            m_p, logs_p, logw = self.model.text_stats(ids, x_mask, g, dp_noise)
        else:
            stage = self._text[bucket]
            inp = stage.inputs
            host_ids = self._host["ids"]
            host_ids[:n].copy_(torch.as_tensor(phoneme_ids, dtype=torch.long))
            inp["ids"].zero_()
            inp["ids"][0, :n].copy_(host_ids[:n], non_blocking=True)
            inp["x_mask"].zero_()
            inp["x_mask"][..., :n] = 1.0
            self._fill_noise(inp["dp_noise"], scales.noise_w)
            m_p, logs_p, logw = (t[..., :n] for t in stage.run())
            x_mask = inp["x_mask"][..., :n]
        w_ceil = self.model.durations(logw, x_mask, scales.length_scale)
        m, logs, y_mask = self.model.expand(m_p, logs_p, w_ceil)
        frames = m.shape[2]
        fb = pick_bucket(frames, self.frame_buckets)
        if fb is None:
            self.eager_calls += 1
            noise = torch.zeros_like(m)
            self._fill_noise(noise, scales.noise_scale)
            z = self.model.latent(m, logs, y_mask, g, noise)
        else:
            stage = self._flow[fb]
            inp = stage.inputs
            for key, value in (("m", m), ("logs", logs), ("y_mask", y_mask)):
                inp[key].zero_()
                inp[key][..., :frames].copy_(value)
            self._fill_noise(inp["noise"], scales.noise_scale)
            z = stage.run()[0][..., :frames]
        return self._to_host(z[0], "z_out")

    def decode(self, z: np.ndarray, speaker_id: int | None = None) -> np.ndarray:
        """Latent frames float32 [z_channels, frames] -> float32 PCM [frames * hop_samples].

        Replays the decoder graph of that window size, else decodes eagerly.

        Raises:
            ValueError: `z` is not [z_channels, frames >= 1], or a bad speaker id.
            EngineError: the device failed.
        """
        if z.ndim != 2 or z.shape[0] != self.z_channels or z.shape[1] < 1:
            raise ValueError(f"z must be [{self.z_channels}, frames >= 1], got {z.shape}")
        frames = z.shape[1]
        with torch.inference_mode(), self._on_stream(), self._numerics():
            g = self._set_speaker(speaker_id)
            try:
                stage = self._dec.get(frames)
                if stage is None:
                    self.eager_calls += 1
                    zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
                    zt = zt.to(self.device).unsqueeze(0)
                    dtype = TORCH_DTYPES[self.precision]
                    gd = None if g is None else g.to(dtype)
                    audio = self.model.decode(zt.to(dtype), gd).reshape(-1).float()
                    return audio.cpu().numpy()
                host = self._host["z_in"][: z.size]
                host.numpy()[:] = np.asarray(z, dtype=np.float32).reshape(-1)
                stage.inputs["z"].copy_(host.view(1, self.z_channels, frames), non_blocking=True)
                audio = stage.run()[0]
                return self._to_host(audio, "audio")
            except RuntimeError as e:
                raise self._check("decode", e) from e

    def close(self) -> None:
        """Drop graphs, buffers and the model; release cached device memory."""
        for stage in self._stages():
            stage.drop_graph()
        self._text, self._flow, self._dec, self._host = {}, {}, {}, {}
        self.model = None  # type: ignore[assignment]
        if self._cuda():
            try:
                torch.cuda.empty_cache()
            except RuntimeError as e:
                _LOG.warning("cuda-graph: emptying the CUDA cache failed: %s", e)


def load(voice: VoiceInfo, config: AppConfig) -> CudaGraphBackend:
    """Load `voice` as the cuda-graph engine with the precision of `config` (mode, precision).

    Raises:
        EngineUnavailable: no CUDA device, or bf16 asked for on a GPU without it.
        VoiceError: the voice file is bad.
        EngineError: moving to the device failed.
    """
    if not torch.cuda.is_available():
        raise EngineUnavailable("cuda-graph", "no CUDA device (torch.cuda.is_available() is False)")
    precision = resolve_precision(config.mode, config.engines.torch.precision)
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise EngineUnavailable("cuda-graph", "bf16 asked for but this GPU does not support it")
    started = time.monotonic()
    model, _hp, voice_config = load_vits(Path(voice.model_path))
    s = config.streaming
    backend = CudaGraphBackend.from_model(
        model,
        device="cuda",
        precision=precision,
        phoneme_sizes=phoneme_buckets(s.max_unit_phonemes),
        frame_sizes=frame_buckets(),
        windows=decoder_windows(s.first_chunk_frames, s.max_chunk_frames, s.halo_frames),
        sample_rate=voice.sample_rate,
        capture=True,
    )
    _LOG.info(
        "cuda-graph engine: loaded %s (%s decoder, graphs %s) in %.2f s",
        voice.name,
        precision,
        "on" if backend.graphs_active else "off",
        time.monotonic() - started,
    )
    return backend
