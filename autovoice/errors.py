"""The error types of AutoVoice: one base, one subclass per boundary."""

from __future__ import annotations

__all__ = [
    "AudioDeviceError",
    "AutoVoiceError",
    "CatalogueError",
    "ConfigError",
    "EngineError",
    "EngineUnavailable",
    "ProtocolError",
    "VoiceError",
]


class AutoVoiceError(Exception):
    """Base of every error AutoVoice raises on purpose; `str()` is one readable line."""


class ConfigError(AutoVoiceError):
    """A configuration file or option is wrong.

    Attributes:
        path: The file (or "command line") the bad value came from.
        key: Dotted key of the bad value, or "" for the whole file.
        problem: What is wrong and what is accepted.
    """

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")


class VoiceError(AutoVoiceError):
    """A voice cannot be found or loaded.

    Attributes:
        voice: The path or name of the voice.
    """

    def __init__(self, voice: str, problem: str) -> None:
        self.voice = voice
        self.problem = problem
        super().__init__(f"voice {voice}: {problem}")


class CatalogueError(AutoVoiceError):
    """The voice catalogue cannot be fetched or read, or a voice cannot be downloaded or
    installed (network, HTTP status, checksum, disk); `str()` says which and where."""


class EngineError(AutoVoiceError):
    """An inference engine failed to load or to run.

    Attributes:
        engine: Engine name, e.g. "onnx" or "torch".
    """

    def __init__(self, engine: str, problem: str) -> None:
        self.engine = engine
        self.problem = problem
        super().__init__(f"engine {engine}: {problem}")


class EngineUnavailable(EngineError):
    """An engine cannot run on this machine (missing library, no GPU); the reason says which."""


class AudioDeviceError(AutoVoiceError):
    """An audio device or library is missing or failed.

    Attributes:
        device: The device name or index asked for, or None for the default.
    """

    def __init__(self, device: str | int | None, problem: str) -> None:
        self.device = device
        self.problem = problem
        what = "default audio device" if device is None else f"audio device {device!r}"
        super().__init__(f"{what}: {problem}")


class ProtocolError(AutoVoiceError):
    """A client message is malformed or not allowed.

    Attributes:
        code: A closed-enum error code (see docs/PROTOCOL.md).
        retryable: Whether sending again (unchanged) may succeed.
    """

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        super().__init__(f"{code}: {message}")
