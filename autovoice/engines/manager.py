"""Engine selection: which backends exist, which to try, and falling back when one fails.

`auto` tries, in order: tensorrt > cuda-graph > torch on CUDA > the fastest CPU engine, then
the other CPU engine. An engine that cannot start (missing library, no GPU, build failure) is
skipped with a log line; `EngineChoice.remaining` is the rest of the chain, which the synthesizer
falls back to when its engine fails at run time. An explicitly named engine has no fallback.

In the `auto` chain the GPU engines are skipped without importing torch when the GPU probe
(`gpu_probe`) finds no NVIDIA GPU: on a CPU machine the daemon never imports torch (2 s and a
few hundred MB of start-up) unless it falls back to the torch-cpu engine.

Thread: loading runs on the caller's thread (start-up or reload). RT-safe: no.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from autovoice.config import AppConfig
from autovoice.engines.base import Backend
from autovoice.engines.gpu_probe import GpuProbe, probe_nvidia_gpu
from autovoice.engines.voice import VoiceInfo
from autovoice.errors import EngineError, EngineUnavailable, VoiceError

__all__ = ["ENGINE_LOADERS", "EngineChoice", "candidate_engines", "load_backend"]

_LOG = logging.getLogger(__name__)

#: CPU engines, fastest first (see BENCHMARKS.md). In the auto chain "torch-cpu" is the torch
#: engine pinned to the CPU (after torch-cuda failed, "auto" device must not mean CUDA again).
CPU_ENGINES = ("onnx", "torch-cpu")
AUTO_ORDER = ("tensorrt", "cuda-graph", "torch-cuda", *CPU_ENGINES)
#: Engines of the auto chain that need an NVIDIA GPU (skipped when the probe finds none).
GPU_ENGINES = frozenset({"tensorrt", "cuda-graph", "torch-cuda"})


def _load_onnx(voice: VoiceInfo, config: AppConfig) -> Backend:
    from autovoice.engines.onnx_backend import OnnxBackend
    from autovoice.engines.onnx_cache import default_split_cache_dir

    return OnnxBackend.load(
        voice.model_path,
        voice.hop_samples,
        config.engines.onnx.threads,
        voice=voice,
        # The cache location is read from the environment, as the TensorRT plans' is.
        cache_dir=default_split_cache_dir(os.environ),
    )


def _torch_module():
    try:
        from autovoice.engines import torch_backend
    except ImportError as exc:
        raise EngineUnavailable(
            "torch", f"{exc} (install with: pip install 'autovoice[torch]')"
        ) from exc
    return torch_backend


def _load_torch(voice: VoiceInfo, config: AppConfig) -> Backend:
    settings = config.engines.torch
    device = settings.device
    if device == "auto":
        device = "cuda" if _cuda_available() else "cpu"
    return _torch_module().TorchBackend.load(
        voice.model_path, device=device, compile=settings.compile
    )


def _load_torch_cpu(voice: VoiceInfo, config: AppConfig) -> Backend:
    settings = config.engines.torch
    return _torch_module().TorchBackend.load(
        voice.model_path, device="cpu", compile=settings.compile
    )


def _load_torch_cuda(voice: VoiceInfo, config: AppConfig) -> Backend:
    if not _cuda_available():
        raise EngineUnavailable("torch-cuda", "no CUDA device")
    settings = config.engines.torch
    return _torch_module().TorchBackend.load(
        voice.model_path, device="cuda", compile=settings.compile
    )


def _load_cuda_graph(voice: VoiceInfo, config: AppConfig) -> Backend:
    try:
        from autovoice.engines import cuda_graph_backend
    except ImportError as exc:
        raise EngineUnavailable("cuda-graph", f"not available: {exc}") from exc
    return cuda_graph_backend.load(voice, config)


def _load_tensorrt(voice: VoiceInfo, config: AppConfig) -> Backend:
    try:
        from autovoice.engines import tensorrt_backend
    except ImportError as exc:
        raise EngineUnavailable("tensorrt", f"not available: {exc}") from exc
    return tensorrt_backend.load(voice, config)


def _cuda_available() -> bool:
    if probe_nvidia_gpu().present is False:
        return False  # no GPU: torch need not be imported to find that out
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


ENGINE_LOADERS: dict[str, Callable[[VoiceInfo, AppConfig], Backend]] = {
    "onnx": _load_onnx,
    "torch": _load_torch,
    "torch-cuda": _load_torch_cuda,
    "torch-cpu": _load_torch_cpu,
    "cuda-graph": _load_cuda_graph,
    "tensorrt": _load_tensorrt,
}


@dataclass(frozen=True)
class EngineChoice:
    """The loaded backend, why the engines before it were skipped, and what may follow it.

    Attributes:
        backend: The loaded engine.
        skipped: One line per engine tried before it ("engine X: reason").
        remaining: Engines after it in the chain (run-time fallbacks); empty unless `auto`.
    """

    backend: Backend
    skipped: tuple[str, ...]
    remaining: tuple[str, ...] = ()


def candidate_engines(engine: str) -> tuple[str, ...]:
    """Engines to try for a configured engine name, in order."""
    if engine == "auto":
        return AUTO_ORDER
    if engine not in ENGINE_LOADERS:
        raise EngineError(engine, f"unknown engine (accepted: auto, {', '.join(ENGINE_LOADERS)})")
    return (engine,)


def load_backend(
    voice: VoiceInfo, config: AppConfig, chain: tuple[str, ...] | None = None
) -> EngineChoice:
    """Load the first engine of the chain that works, logging each one skipped.

    Args:
        voice: The voice to load.
        config: Engine settings; `config.engine` gives the chain unless `chain` is given.
        chain: Engines to try in order (the synthesizer passes `remaining` to fall back).

    Raises:
        VoiceError: the voice file itself is bad (no engine is tried further).
        EngineError: no engine of the chain could load.
    """
    skipped: list[str] = []
    errors: list[EngineError] = []
    names = candidate_engines(config.engine) if chain is None else tuple(chain)
    gpu: GpuProbe | None = None
    for position, name in enumerate(names):
        if name not in ENGINE_LOADERS:
            raise EngineError(name, f"unknown engine (accepted: {', '.join(ENGINE_LOADERS)})")
        try:
            if config.engine == "auto" and name in GPU_ENGINES:
                gpu = gpu or probe_nvidia_gpu()
                if gpu.present is False:
                    raise EngineUnavailable(name, f"no CUDA device ({gpu.reason})")
            backend = ENGINE_LOADERS[name](voice, config)
        except VoiceError:
            raise
        except EngineError as exc:
            skipped.append(str(exc))
            errors.append(exc)
            if config.engine == "auto":
                _LOG.info("skipping %s", exc)
            continue
        if skipped and config.engine == "auto":
            _LOG.info("engine %s in use (skipped %d)", backend.name, len(skipped))
        remaining = names[position + 1 :] if config.engine == "auto" else ()
        return EngineChoice(backend, tuple(skipped), remaining)
    if len(errors) == 1:
        raise errors[0]
    raise EngineError(config.engine, "; ".join(skipped) or "no engine could load")
