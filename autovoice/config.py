"""Typed configuration: YAML file -> validated dataclasses.

Config flows CLI -> `load_config` -> dataclasses -> constructors; nothing here reads state other
than the file it is given (the CLI resolves which file, see `find_config_path`).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autovoice.errors import ConfigError

__all__ = [
    "AppConfig",
    "AudioConfig",
    "DaemonConfig",
    "EnginesConfig",
    "OnnxEngineConfig",
    "StreamingConfig",
    "SynthesisConfig",
    "TorchEngineConfig",
    "WyomingConfig",
    "find_config_path",
    "load_config",
    "packaged_config_path",
]

ENGINE_NAMES = ("auto", "onnx", "torch", "cuda-graph", "tensorrt")
MODES = ("speed", "balanced", "quality")
PRECISIONS = ("fp32", "fp16", "bf16")
TORCH_DEVICES = ("auto", "cpu", "cuda")


def _range(low: float, high: float) -> dict[str, Any]:
    return {"range": (low, high)}


def _choice(*values: str) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class SynthesisConfig:
    """Default synthesis options (per request options override them)."""

    rate: float = field(default=1.0, metadata=_range(0.1, 10.0))
    """Speaking rate multiplier (2.0 = twice as fast)."""
    noise_scale: float | None = field(default=None, metadata=_range(0.0, 2.0))
    """Prior noise; None = the voice's setting."""
    noise_w: float | None = field(default=None, metadata=_range(0.0, 2.0))
    """Duration noise; None = the voice's setting."""
    gain: float = field(default=1.0, metadata=_range(0.0, 4.0))
    """Fixed linear gain on every sample."""


@dataclass(frozen=True)
class StreamingConfig:
    """How clauses are chunked for streaming decode."""

    first_chunk_frames: int = field(default=8, metadata=_range(1, 1024))
    """Latent frames in the first decoded chunk of a clause."""
    max_chunk_frames: int = field(default=256, metadata=_range(1, 4096))
    """Largest decoded chunk, in latent frames."""
    halo_frames: int = field(default=10, metadata=_range(0, 256))
    """Context frames decoded on each side of a chunk."""
    max_unit_phonemes: int = field(default=200, metadata=_range(10, 2000))
    """Sentences longer than this (in phonemes) are split at clauses."""
    first_unit_phonemes: int = field(default=24, metadata=_range(0, 2000))
    """The first unit of a text is at most this long (0 = no limit)."""
    trim_lead_in: bool = True
    """The daemon drops an utterance's quiet lead-in (engines/lead_in.py)."""


@dataclass(frozen=True)
class OnnxEngineConfig:
    """onnxruntime engine settings."""

    threads: int = field(default=0, metadata=_range(0, 256))
    """Intra-op threads; 0 = one per core."""


@dataclass(frozen=True)
class TorchEngineConfig:
    """PyTorch engine settings."""

    device: str = field(default="auto", metadata=_choice(*TORCH_DEVICES))
    """cpu, cuda, or auto."""
    compile: bool = False
    """Use torch.compile."""
    precision: str = field(default="fp32", metadata=_choice(*PRECISIONS))
    """GPU precision."""


@dataclass(frozen=True)
class EnginesConfig:
    """Per-engine settings."""

    onnx: OnnxEngineConfig = field(default_factory=OnnxEngineConfig)
    torch: TorchEngineConfig = field(default_factory=TorchEngineConfig)


@dataclass(frozen=True)
class AudioConfig:
    """Audio output settings."""

    device: str | int | None = None
    """Device name substring or index; None = system default."""
    latency: str | float = field(default="low", metadata={"latency": True})
    """PortAudio latency: "low", "high" or seconds."""
    lookahead_s: float = field(default=2.0, metadata=_range(0.2, 30.0))
    """Seconds of audio queued ahead of playback at most."""
    block_s: float = field(default=0.003, metadata=_range(0.001, 0.1))
    """Audio callback block in seconds: PortAudio buffers about two blocks (at latency low)."""
    idle_stop_s: float = field(default=5.0, metadata=_range(0.0, 86400.0))
    """Seconds with nothing to play before the output stream stops (0: never)."""


@dataclass(frozen=True)
class DaemonConfig:
    """Daemon settings."""

    socket: str | None = None
    """Unix socket path; None = environment / XDG default."""
    max_text_bytes: int = field(default=1 << 20, metadata=_range(1, 64 << 20))
    """Largest text accepted in one request."""
    cache_mb: float = field(default=32.0, metadata=_range(0.0, 4096.0))
    """Size bound of the phrase cache in megabytes."""
    cache_max_chars: int = field(default=64, metadata=_range(0, 10000))
    """Longest phrase (characters) that is cached."""
    synthesis_workers: int = field(default=2, metadata=_range(1, 64))
    """Threads that synthesise for clients taking the audio back (Wyoming), concurrently."""
    stream_idle_s: float = field(default=30.0, metadata=_range(0.1, 86400.0))
    """An open stream (`speak` with `stream`) that gets no text for this long is ended."""


@dataclass(frozen=True)
class WyomingConfig:
    """The Wyoming (Home Assistant) front-end."""

    uri: str | None = None
    """tcp://HOST:PORT or unix://PATH to serve the Wyoming protocol on; None = off."""
    zeroconf: bool = False
    """Announce the TCP server as _wyoming._tcp (mDNS) for Home Assistant's discovery."""
    zeroconf_name: str | None = None
    """The announced name; None = autovoice-<host name>."""


@dataclass(frozen=True)
class AppConfig:
    """The whole configuration."""

    voice: str = "default"
    """Voice name or .onnx path."""
    voices_dir: str | None = None
    """Directory of voices; None = $XDG_DATA_HOME/autovoice/voices."""
    catalogue: str | None = None
    """Base URL of the voice catalogue (a piper-voices layout); None = piper-voices."""
    speaker: int | str | None = None
    """Speaker id or name for multi-speaker voices."""
    engine: str = field(default="auto", metadata=_choice(*ENGINE_NAMES))
    """Engine name or auto."""
    mode: str = field(default="balanced", metadata=_choice(*MODES))
    """Optimisation mode."""
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    engines: EnginesConfig = field(default_factory=EnginesConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    wyoming: WyomingConfig = field(default_factory=WyomingConfig)
    source: str = field(default="<defaults>", compare=False, metadata={"internal": True})
    """Where the config came from (not a key)."""

    def replace(self, **changes: Any) -> AppConfig:
        """Return a copy with top-level fields replaced."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of the effective settings (for `config` replies)."""
        data = dataclasses.asdict(self)
        data.pop("source", None)
        return data


def packaged_config_path() -> Path:
    """Path of the default config shipped in the package."""
    return Path(__file__).parent / "data" / "default.yaml"


def find_config_path(explicit: str | None, environ: typing.Mapping[str, str]) -> Path:
    """Resolve which config file to use: explicit, then XDG, then the packaged default.

    Raises:
        ConfigError: when an explicit path does not exist.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(explicit, "", "config file not found")
        return path
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    user = Path(xdg) / "autovoice" / "config.yaml"
    if user.is_file():
        return user
    return packaged_config_path()


def load_config(path: Path) -> AppConfig:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: unreadable file, bad YAML, unknown key, wrong type, or out-of-range value.
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "", f"cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(where, "", f"invalid YAML{line}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    config = build_dataclass(AppConfig, data, where, "")
    return dataclasses.replace(config, source=where)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> AppConfig:
    """Validate a plain dict as a config (used by tests and `config` overrides)."""
    return dataclasses.replace(build_dataclass(AppConfig, data, source, ""), source=source)


def build_dataclass(cls: type, data: Any, where: str, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, validating keys, types and ranges."""
    if not isinstance(data, dict):
        raise ConfigError(where, prefix or "", f"expected a mapping, got {_type_name(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            accepted = ", ".join(sorted(fields))
            raise ConfigError(where, _join(prefix, str(key)), f"unknown key (accepted: {accepted})")
    values: dict[str, Any] = {}
    for name, value in data.items():
        values[name] = _convert(fields[name], hints[name], value, where, _join(prefix, name))
    return cls(**values)


def _convert(f: dataclasses.Field, hint: Any, value: Any, where: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value if value is not None else {}, where, key)
    meta = f.metadata
    if meta.get("latency"):
        return _check_latency(value, where, key)
    allowed = _allowed_types(hint)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(where, key, f"must not be null (expected {_describe(allowed)})")
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(where, key, f"expected {_describe(allowed)}, got a boolean")
    original = value
    if type(value) is int and float in allowed and int not in allowed:
        value = float(value)
    if not isinstance(value, tuple(t for t in allowed if t is not type(None))):
        raise ConfigError(where, key, f"expected {_describe(allowed)}, got {_type_name(value)}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(where, key, f"{value!r} is not one of: {', '.join(meta['choices'])}")
    if "range" in meta and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = meta["range"]
        if not low <= value <= high:
            raise ConfigError(where, key, f"{original} is out of range (accepted: {low} .. {high})")
    return value


def _check_latency(value: Any, where: str, key: str) -> str | float:
    if value in ("low", "high"):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 2:
        return float(value)
    raise ConfigError(where, key, f"{value!r} is not accepted (low, high, or seconds in (0, 2])")


def _allowed_types(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(typing.get_args(hint))
    return (hint,)


def _describe(allowed: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "integer", float: "number", str: "string"}
    return " or ".join(names.get(t, "null" if t is type(None) else t.__name__) for t in allowed)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
