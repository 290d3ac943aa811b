"""PyTorch backend: our own VITS modules (`autovoice.engines.torch_vits`) on CPU or CUDA.

Loads the weights straight from the voice's `.onnx` (no other file), runs eager or under
`torch.compile` (warmed up at load; on any compile failure it logs once and runs eager).
With noise scales 0 its output equals onnxruntime's on the original graph (relative L2
error ~1e-5).

Importing this module needs torch; the ImportError names the extra to install.

Thread: a backend is used by one thread at a time (the inference thread). RT-safe: no.
"""

from __future__ import annotations

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
    raise ImportError("the torch engine needs PyTorch: pip install autovoice[torch]") from e

from autovoice.engines.base import Scales, check_encode_args
from autovoice.engines.torch_vits import VitsModel, load_vits
from autovoice.errors import EngineError, EngineUnavailable

__all__ = ["TorchBackend"]

_LOG = logging.getLogger(__name__)

WARMUP_PHONEMES = (16, 48, 128)
"""Lengths of the dummy phoneme sequences run at load when compiling (one per size range)."""


@dataclass
class TorchBackend:
    """One voice as PyTorch modules, behind the `Backend` protocol.

    Attributes:
        model: The loaded `VitsModel` (eval mode, no grad).
        device: Where it runs (`torch.device`).
        sample_rate: Output rate of the voice in Hz.
        hop_samples: Audio samples per latent frame.
        z_channels: Channels of the latent `z`.
        num_speakers: Speakers of the voice (1 = single-speaker).
        compiled: Whether the stages run under torch.compile (False after a fallback).
        generator: Random source of the noise (seed it for reproducible noisy output).
        name: "torch".
    """

    model: VitsModel
    device: Any
    sample_rate: int
    hop_samples: int
    z_channels: int
    num_speakers: int = 1
    compiled: bool = False
    generator: Any = None
    name: str = "torch"
    _stages: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.generator is None:
            self.generator = torch.Generator(device=self.device)
        self._use_eager()

    @classmethod
    def load(
        cls,
        model_path: Path,
        device: str = "cpu",
        compile: bool = False,
        threads: int | None = None,
    ) -> TorchBackend:
        """Load a Piper voice (`model_path` and `model_path + ".json"`).

        Args:
            model_path: The voice's `.onnx`.
            device: "cpu", "cuda" or "cuda:N".
            compile: Run the stages under torch.compile, warmed up here.
            threads: Intra-op CPU threads for torch (process-wide); None leaves torch's default.

        Raises:
            ValueError: `device` or `threads` is not valid.
            EngineUnavailable: CUDA asked for but not available.
            VoiceError: The voice file is unreadable, not Piper, or a weight does not fit.
            EngineError: Moving the model to the device failed.
        """
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise EngineUnavailable("torch", f"device {device} asked for but CUDA is unavailable")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1 or None, got {threads}")
            torch.set_num_threads(threads)

        started = time.monotonic()
        model, hp, config = load_vits(Path(model_path))
        try:
            model.to(dev)
        except RuntimeError as e:
            raise EngineError("torch", f"cannot move the model to {device}: {e}") from e
        sample_rate = int(config.get("audio", {}).get("sample_rate", 22050))
        backend = cls(
            model=model,
            device=dev,
            sample_rate=sample_rate,
            hop_samples=hp.hop_samples,
            z_channels=hp.inter_channels,
            num_speakers=hp.n_speakers,
        )
        if compile:
            backend._compile()
        _LOG.info(
            "torch engine: loaded %s on %s%s in %.2f s",
            Path(model_path).name,
            dev,
            " (compiled)" if backend.compiled else "",
            time.monotonic() - started,
        )
        return backend

    # -- stages ------------------------------------------------------------------------------

    def _use_eager(self) -> None:
        self._stages = {
            "text": self.model.text_stats,
            "latent": self.model.latent,
            "decode": self.model.decode,
        }
        self.compiled = False

    def _compile(self) -> None:
        """Compile the three stages and warm them up; eager on any failure.

        Sizes are dynamic, but on CPU the conv backend choice guards on length thresholds, so
        the warm-up runs a few lengths (`WARMUP_PHONEMES`) to compile each range at load;
        an unusual length may still recompile once. (Unbacked sizes would avoid the guards but
        inductor cannot lower convs on them in torch 2.13.)
        """
        started = time.monotonic()
        try:
            self._stages = {
                name: torch.compile(fn, dynamic=True)
                for name, fn in (
                    ("text", self.model.text_stats),
                    ("latent", self.model.latent),
                    ("decode", self.model.decode),
                )
            }
            self.compiled = True
            sid = 0 if self.num_speakers > 1 else None
            for n in WARMUP_PHONEMES:
                ids = [i % self.model.hp.n_vocab for i in range(1, n + 1)]
                z = self.encode(ids, Scales(0.0, 1.0, 0.0, sid))
                self.decode(z, sid)
                if not self.compiled:
                    break
        except Exception as e:  # torch.compile raises many types (inductor, C++ compiler)
            _LOG.warning("torch.compile failed, running eager: %s: %s", type(e).__name__, e)
            self._use_eager()
            return
        if self.compiled:
            _LOG.info("torch.compile warm-up took %.1f s", time.monotonic() - started)

    def _run(self, stage: str, *args: Any) -> Any:
        try:
            return self._stages[stage](*args)
        except Exception as e:
            if not self.compiled:
                raise
            _LOG.warning(
                "torch.compile stage %s failed, running eager from now on: %s: %s",
                stage,
                type(e).__name__,
                e,
            )
            self._use_eager()
            return self._stages[stage](*args)

    def _speaker(self, speaker_id: int | None) -> Any:
        if self.num_speakers <= 1:
            return None  # ignored, as by the onnx engine
        sid = 0 if speaker_id is None else speaker_id
        if not 0 <= sid < self.num_speakers:
            raise ValueError(f"speaker_id must be in 0..{self.num_speakers - 1}, got {sid}")
        return self.model.speaker_embedding(torch.tensor([sid], device=self.device))

    # -- Backend protocol --------------------------------------------------------------------

    def encode(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray:
        """Phoneme ids of one clause -> latent z, float32 [z_channels, frames].

        Equals the Piper graph's `/Mul_7_output_0` (the decoder's input) for the same ids and
        scales (noise scales 0; with noise, an equally distributed draw).

        Raises:
            ValueError: Empty ids, an id outside the voice's symbols, or a bad speaker id.
        """
        check_encode_args(phoneme_ids, scales, self.model.hp.n_vocab)
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            ids = torch.tensor([phoneme_ids], dtype=torch.long, device=self.device)
            x_mask = torch.ones(1, 1, len(phoneme_ids), dtype=dtype, device=self.device)
            g = self._speaker(scales.speaker_id)
            dp_noise = self._noise((1, 2, len(phoneme_ids)), dtype, scales.noise_w)
            m_p, logs_p, logw = self._run("text", ids, x_mask, g, dp_noise)
            w_ceil = self.model.durations(logw, x_mask, scales.length_scale)
            m, logs, y_mask = self.model.expand(m_p, logs_p, w_ceil)
            noise = self._noise(tuple(m.shape), dtype, scales.noise_scale)
            z = self._run("latent", m, logs, y_mask, g, noise)
            return z[0].float().cpu().numpy()

    def decode(self, z: np.ndarray, speaker_id: int | None = None) -> np.ndarray:
        """Latent frames float32 [z_channels, frames] -> float32 PCM [frames * hop_samples].

        Raises:
            ValueError: `z` is not [z_channels, frames >= 1], or a bad speaker id.
        """
        if z.ndim != 2 or z.shape[0] != self.z_channels or z.shape[1] < 1:
            raise ValueError(f"z must be [{self.z_channels}, frames >= 1], got {z.shape}")
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
            zt = zt.to(device=self.device, dtype=dtype).unsqueeze(0)
            audio = self._run("decode", zt, self._speaker(speaker_id))
            return audio.reshape(-1).float().cpu().numpy()

    def close(self) -> None:
        """Drop the model and, on CUDA, the cached device memory."""
        self._stages = {}
        self.model = None  # type: ignore[assignment]
        if getattr(self.device, "type", "cpu") == "cuda":
            try:
                torch.cuda.empty_cache()
            except RuntimeError as e:
                _LOG.warning("torch engine: emptying the CUDA cache failed: %s", e)

    def _noise(self, shape: tuple[int, ...], dtype: Any, scale: float) -> Any:
        """Scaled standard normal noise; zeros (not None: one compiled graph) when scale is 0."""
        if scale == 0:
            return torch.zeros(shape, dtype=dtype, device=self.device)
        noise = torch.randn(shape, generator=self.generator, device=self.device)
        return (noise * scale).to(dtype)
