"""TensorRT engine: the split VITS stages exported to ONNX, built into cached TensorRT plans.

At load, for each stage (`text`, `flow`, `decoder`, see `gpu_export`) a plan is looked up in
the plan cache (`$XDG_CACHE_HOME/autovoice/trt/`, keyed by voice hash, stage, precision, GPU,
TensorRT version and shape profile; see `gpu_trt_cache`). A missing, stale or corrupt plan is
rebuilt: the stages are exported from our PyTorch model to ONNX (once per load) and built with
one optimisation profile each:

- text: phonemes 1 .. largest phoneme bucket (opt 64), fp32;
- flow: frames 1 .. largest frame bucket (opt 256), fp32;
- decoder: frames 1 .. largest decoder window (opt the max-chunk window), in the decoder
  precision (FP16/BF16 builder flag when asked). The synthesizer slides its windows to the
  fixed sizes of `decoder_windows`, so the decoder sees a handful of shapes.

TF32 is off in every plan (fp32 means fp32: see `gpu_plan.resolve_precision`). Length
regulation between `text` and `flow` runs in PyTorch on the GPU. Inputs and outputs are torch
CUDA tensors; each stage is enqueued on the engine's own CUDA stream and the result is copied to
pinned host memory. A shape beyond a profile runs the PyTorch stage eagerly (`eager_calls`).

Importing this module needs `tensorrt` (the `gpu` extra); the ImportError names it, and the
engine manager reports the engine unavailable with that reason.

Thread: one inference thread at a time. RT-safe: no.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tensorrt as trt
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"TensorRT is not installed ({e}): pip install autovoice[gpu]") from e
import torch

from autovoice.config import AppConfig
from autovoice.engines.base import Scales, check_encode_args
from autovoice.engines.gpu_export import EXPORT_VERSION, export_stages
from autovoice.engines.gpu_plan import (
    decoder_windows,
    frame_buckets,
    phoneme_buckets,
    resolve_precision,
)
from autovoice.engines.gpu_trt_cache import PlanCache, PlanKey, default_cache_dir, file_hash
from autovoice.engines.torch_vits import VitsModel, load_vits
from autovoice.engines.voice import VoiceInfo
from autovoice.errors import AutoVoiceError, EngineError, EngineUnavailable

__all__ = ["TensorRTBackend", "load"]

_LOG = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30
"""Builder workspace limit."""
OPT_PHONEMES = 64
OPT_FRAMES = 256

_TORCH_OF = {
    trt.DataType.FLOAT: torch.float32,
    trt.DataType.HALF: torch.float16,
    trt.DataType.INT32: torch.int32,
    trt.DataType.INT64: torch.int64,
    trt.DataType.BOOL: torch.bool,
}
if hasattr(trt.DataType, "BF16"):
    _TORCH_OF[trt.DataType.BF16] = torch.bfloat16


@dataclass(frozen=True)
class _Profile:
    """One dynamic axis of a stage: its inputs' fixed dims and the range of the dynamic one."""

    inputs: dict[str, tuple[int, ...]]  # name -> shape with -1 at the dynamic axis
    low: int
    opt: int
    high: int

    def text(self) -> str:
        return f"{self.low}-{self.opt}-{self.high}"

    def shapes(self, name: str) -> tuple[tuple[int, ...], ...]:
        shape = self.inputs[name]
        sizes = (self.low, self.opt, self.high)
        return tuple(tuple(v if d == -1 else d for d in shape) for v in sizes)


def _profiles(model: VitsModel, max_phonemes: int, max_frames: int, windows: tuple) -> dict:
    hp = model.hp
    c = hp.inter_channels
    g = {"g": (1, hp.gin_channels, 1)} if hp.n_speakers > 1 else {}
    text = {"ids": (1, -1), "x_mask": (1, 1, -1), "dp_noise": (1, 2, -1), **g}
    flow = {"m": (1, c, -1), "logs": (1, c, -1), "y_mask": (1, 1, -1), "noise": (1, c, -1), **g}
    widest = max(windows)
    opt_window = sorted(windows)[-2] if len(windows) > 1 else widest
    return {
        "text": _Profile(text, 1, min(OPT_PHONEMES, max_phonemes), max_phonemes),
        "flow": _Profile(flow, 1, min(OPT_FRAMES, max_frames), max_frames),
        "decoder": _Profile({"z": (1, c, -1), **g}, 1, opt_window, widest),
    }


def _build_plan(onnx_path: Path, profile: _Profile, precision: str, logger: Any) -> bytes:
    """Build a serialized TensorRT plan from an ONNX file with one optimisation profile.

    Raises:
        EngineError: the parser or the builder failed (their messages included).
    """
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError("tensorrt", f"cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.clear_flag(trt.BuilderFlag.TF32)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        if not hasattr(trt.BuilderFlag, "BF16"):
            raise EngineUnavailable("tensorrt", f"TensorRT {trt.__version__} has no BF16")
        config.set_flag(trt.BuilderFlag.BF16)
    opt = builder.create_optimization_profile()
    for name in profile.inputs:
        opt.set_shape(name, *profile.shapes(name))
    config.add_optimization_profile(opt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError("tensorrt", f"building {onnx_path.name} failed (see TensorRT's log)")
    return bytes(plan)


@dataclass
class _Stage:
    engine: Any
    context: Any
    outputs: tuple[str, ...]
    profile: _Profile


@dataclass
class TensorRTBackend:
    """A voice as three TensorRT engines, behind `Backend`.

    Attributes:
        model: The fp32 `VitsModel` on the GPU (speaker table, and stages beyond a profile).
        precision: Decoder precision.
        decoder_windows: Window sizes the synthesizer slides its decoder windows to.
        sample_rate: Output rate in Hz.
        hop_samples: Audio samples per latent frame.
        z_channels: Channels of `z`.
        num_speakers: Speakers of the voice.
        eager_calls: Calls beyond a profile, run in PyTorch.
        name: "tensorrt".
    """

    model: VitsModel
    precision: str
    decoder_windows: tuple[int, ...]
    sample_rate: int
    hop_samples: int
    z_channels: int
    num_speakers: int = 1
    eager_calls: int = 0
    name: str = "tensorrt"
    _stages: dict[str, _Stage] = field(default_factory=dict, repr=False)
    _stream: Any = field(default=None, repr=False)
    _generator: Any = field(default=None, repr=False)
    _pinned: dict[str, Any] = field(default_factory=dict, repr=False)

    def _run(self, stage: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Enqueue one stage on the engine's stream; None when a shape is beyond its profile."""
        st = self._stages[stage]
        length = next(iter(inputs.values())).shape[-1]
        if not st.profile.low <= length <= st.profile.high:
            return None
        ctx = st.context
        for name, tensor in inputs.items():
            if name in st.profile.inputs:
                ctx.set_input_shape(name, tuple(tensor.shape))
                ctx.set_tensor_address(name, tensor.data_ptr())
        outs = {}
        for name in st.outputs:
            shape = tuple(ctx.get_tensor_shape(name))
            dtype = _TORCH_OF[st.engine.get_tensor_dtype(name)]
            out = torch.empty(shape, dtype=dtype, device="cuda")
            ctx.set_tensor_address(name, out.data_ptr())
            outs[name] = out
        if not ctx.execute_async_v3(self._stream.cuda_stream):
            raise EngineError(self.name, f"enqueue of the {stage} engine failed")
        return outs

    def _speaker(self, speaker_id: int | None) -> Any:
        if self.num_speakers <= 1:
            return None
        sid = 0 if speaker_id is None else speaker_id
        if not 0 <= sid < self.num_speakers:
            raise ValueError(f"speaker_id must be in 0..{self.num_speakers - 1}, got {sid}")
        return self.model.emb_g.weight[sid].reshape(1, -1, 1).contiguous()

    def _noise(self, shape: tuple[int, ...], scale: float) -> Any:
        if scale == 0:
            return torch.zeros(shape, device="cuda")
        return torch.randn(shape, generator=self._generator, device="cuda").mul_(scale)

    def _to_host(self, tensor: Any) -> np.ndarray:
        numel = tensor.numel()
        host = self._pinned.get("out")
        if host is None or host.numel() < numel:
            host = torch.empty(max(numel, 1 << 20), dtype=torch.float32, pin_memory=True)
            self._pinned["out"] = host
        flat = host[:numel]
        flat.copy_(tensor.reshape(-1).float(), non_blocking=True)
        self._stream.synchronize()
        return flat.numpy().reshape(tuple(tensor.shape)).copy()

    def encode(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray:
        """Phoneme ids of one clause -> latent z, float32 [z_channels, frames].

        Raises:
            ValueError: empty ids, an id outside the voice's symbols, bad length scale or speaker.
            EngineError: TensorRT or the device failed.
        """
        check_encode_args(phoneme_ids, scales, self.model.hp.n_vocab)
        n = len(phoneme_ids)
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            g = self._speaker(scales.speaker_id)
            gi = {"g": g} if g is not None else {}
            try:
                ids = torch.tensor([phoneme_ids], dtype=torch.long).to("cuda", non_blocking=True)
                x_mask = torch.ones(1, 1, n, device="cuda")
                dp_noise = self._noise((1, 2, n), scales.noise_w)
                outs = self._run("text", {"ids": ids, "x_mask": x_mask, "dp_noise": dp_noise, **gi})
                if outs is None:
                    self.eager_calls += 1
                    m_p, logs_p, logw = self.model.text_stats(ids, x_mask, g, dp_noise)
                else:
                    m_p, logs_p, logw = outs["m_p"], outs["logs_p"], outs["logw"]
                w_ceil = self.model.durations(logw, x_mask, scales.length_scale)
                m, logs, y_mask = self.model.expand(m_p, logs_p, w_ceil)
                noise = self._noise(tuple(m.shape), scales.noise_scale)
                flow_in = {"m": m, "logs": logs, "y_mask": y_mask, "noise": noise, **gi}
                outs = self._run("flow", {k: v.contiguous() for k, v in flow_in.items()})
                if outs is None:
                    self.eager_calls += 1
                    z = self.model.latent(m, logs, y_mask, g, noise)
                else:
                    z = outs["z"]
                return self._to_host(z[0])
            except RuntimeError as e:
                raise EngineError(self.name, f"encode failed: {type(e).__name__}: {e}") from e

    def decode(self, z: np.ndarray, speaker_id: int | None = None) -> np.ndarray:
        """Latent frames float32 [z_channels, frames] -> float32 PCM [frames * hop_samples].

        Raises:
            ValueError: `z` is not [z_channels, frames >= 1], or a bad speaker id.
            EngineError: TensorRT or the device failed.
        """
        if z.ndim != 2 or z.shape[0] != self.z_channels or z.shape[1] < 1:
            raise ValueError(f"z must be [{self.z_channels}, frames >= 1], got {z.shape}")
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            g = self._speaker(speaker_id)
            try:
                zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).unsqueeze(0)
                zt = zt.pin_memory().to("cuda", non_blocking=True)
                outs = self._run("decoder", {"z": zt, **({"g": g} if g is not None else {})})
                if outs is None:
                    self.eager_calls += 1
                    audio = self.model.decode(zt, g)
                else:
                    audio = outs["audio"]
                return self._to_host(audio.reshape(-1))
            except RuntimeError as e:
                raise EngineError(self.name, f"decode failed: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        """Drop the engines, contexts and model; release cached device memory."""
        self._stages = {}
        self._pinned = {}
        self.model = None  # type: ignore[assignment]
        try:
            torch.cuda.empty_cache()
        except RuntimeError as e:
            _LOG.warning("tensorrt: emptying the CUDA cache failed: %s", e)


def gpu_identity() -> str:
    """GPU name and compute capability of the current CUDA device (part of the plan key)."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return f"{props.name} sm{props.major}{props.minor}"


def build_backend(
    model: VitsModel,
    voice_hash: str,
    precision: str,
    cache: PlanCache,
    max_phonemes: int,
    max_frames: int,
    windows: tuple[int, ...],
    sample_rate: int,
) -> TensorRTBackend:
    """Load a model's plans from `cache` (building what is missing) into a `TensorRTBackend`.

    Args:
        model: The fp32 `VitsModel` on the CPU (exported if a plan must be built; then moved).
        voice_hash: Identifies the weights in the plan key (`file_hash` of the voice).
        precision: Decoder precision.
        cache: Where plans live.
        max_phonemes: Largest phoneme count of the text profile.
        max_frames: Largest frame count of the flow profile.
        windows: Decoder window sizes (the largest bounds the decoder profile).
        sample_rate: Output rate in Hz.

    Raises:
        EngineError: export, build or deserialization failed.
    """
    hp = model.hp
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    profiles = _profiles(model, max_phonemes, max_frames, windows)
    gpu = gpu_identity()
    exported: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="autovoice-onnx-") as tmp:

        def onnx_file(stage: str) -> Path:
            if stage not in exported:
                _LOG.info("tensorrt: exporting the %s stage of %s to ONNX", stage, voice_hash)
                exported.update(export_stages(model, Path(tmp), stages=(stage,)))
            return exported[stage]

        stages = {}
        for stage, profile in profiles.items():
            stage_precision = precision if stage == "decoder" else "fp32"
            key = PlanKey(
                voice_hash=voice_hash,
                stage=stage,
                precision=stage_precision,
                gpu=gpu,
                trt_version=trt.__version__,
                profile=profile.text(),
                export_version=EXPORT_VERSION,
            )
            started = time.monotonic()

            def build(stage=stage, profile=profile, stage_precision=stage_precision) -> bytes:
                return _build_plan(onnx_file(stage), profile, stage_precision, logger)

            engine = cache.load_or_build(key, build, runtime.deserialize_cuda_engine)
            _LOG.info("tensorrt: %s plan ready in %.1f s", stage, time.monotonic() - started)
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            outputs = tuple(
                n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT
            )
            stages[stage] = _Stage(engine, engine.create_execution_context(), outputs, profile)
    model.to("cuda")
    return TensorRTBackend(
        model=model,
        precision=precision,
        decoder_windows=windows,
        sample_rate=sample_rate,
        hop_samples=hp.hop_samples,
        z_channels=hp.inter_channels,
        num_speakers=hp.n_speakers,
        _stages=stages,
        _stream=torch.cuda.Stream(),
        _generator=torch.Generator(device="cuda"),
    )


def load(voice: VoiceInfo, config: AppConfig) -> TensorRTBackend:
    """Load `voice` as the tensorrt engine (plans cached under $XDG_CACHE_HOME/autovoice/trt).

    Raises:
        EngineUnavailable: no CUDA device.
        VoiceError: the voice file is bad.
        EngineError: export, build or deserialization failed.
    """
    if not torch.cuda.is_available():
        raise EngineUnavailable("tensorrt", "no CUDA device (torch.cuda.is_available() is False)")
    precision = resolve_precision(config.mode, config.engines.torch.precision)
    s = config.streaming
    # The cache location is the one environment read of the engines (no config key for it yet).
    cache = PlanCache(default_cache_dir(os.environ))
    started = time.monotonic()
    try:
        model, _hp, _voice_config = load_vits(Path(voice.model_path))
        backend = build_backend(
            model,
            file_hash(Path(voice.model_path)),
            precision,
            cache,
            max_phonemes=max(phoneme_buckets(s.max_unit_phonemes)),
            max_frames=max(frame_buckets()),
            windows=decoder_windows(s.first_chunk_frames, s.max_chunk_frames, s.halo_frames),
            sample_rate=voice.sample_rate,
        )
    except AutoVoiceError:
        raise
    except Exception as e:  # TensorRT and CUDA raise assorted types
        raise EngineError("tensorrt", f"load failed: {type(e).__name__}: {e}") from e
    _LOG.info(
        "tensorrt engine: %s (%s decoder, %d plans built, %d cached) in %.1f s",
        voice.name,
        precision,
        cache.builds,
        cache.hits,
        time.monotonic() - started,
    )
    return backend
