"""Reply and event messages (daemon to client): encoding, and lenient decoding on the client.

Replies and events name themselves in `event` and carry the protocol version in `v`. Each is
one small frozen dataclass with `from_event` and `to_event`; events are read leniently (a newer
daemon may add fields).

Thread: any (pure functions and immutable dataclasses). RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autovoice.daemon.protocol.codes import (
    DEFAULT_PRIORITY,
    PROTOCOL_VERSION,
    ErrorCode,
    message_dict,
)
from autovoice.errors import ProtocolError

__all__ = [
    "EVENTS",
    "FINAL_EVENTS",
    "Cancelled",
    "ConfigReply",
    "Done",
    "Error",
    "Event",
    "FirstAudio",
    "Ok",
    "Pong",
    "Queued",
    "Started",
    "StatusReply",
    "VoicesReply",
    "decode_event",
    "encode_event",
]

# --------------------------------------------------------------------------------------------
# Events


def encode_event(event: dict[str, Any]) -> bytes:
    """Serialise one event dict as a UTF-8 JSON line (with the newline)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class Event:
    """Base of reply and event messages: lenient `from_event`, `to_event` with `v` and `event`."""

    _type: ClassVar[str] = ""

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Event:
        """Build from a decoded event, ignoring fields this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_event(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (None fields left out)."""
        return message_dict(self, "event", self._type)


@dataclass(frozen=True)
class Queued(Event):
    """A `speak` was accepted: `utterance` is its daemon-wide number."""

    _type: ClassVar[str] = "queued"
    utterance: int = 0
    id: str | int | None = None
    priority: str = DEFAULT_PRIORITY
    position: int = 0
    """Utterances ahead of it when it was queued (0 = next)."""


@dataclass(frozen=True)
class Started(Event):
    """The inference thread began this utterance."""

    _type: ClassVar[str] = "started"
    utterance: int = 0
    id: str | int | None = None
    voice: str = ""
    cached: bool = False
    wait_ms: float = 0.0
    """Time spent queued, from request receipt to start."""


@dataclass(frozen=True)
class FirstAudio(Event):
    """The first audible sample (|x| > 1e-3) of this utterance was handed to the audio device."""

    _type: ClassVar[str] = "first_audio"
    utterance: int = 0
    id: str | int | None = None
    latency_ms: float = 0.0
    """From request receipt to the first audible sample (|x| > 1e-3) handed to the device."""
    at_s: float | None = None
    """`time.monotonic()` (CLOCK_MONOTONIC, shared by local processes) of that moment."""
    output_latency_ms: float = 0.0
    """The stream's reported output latency (device to speaker)."""
    heard_ms: float = 0.0
    """latency_ms + output_latency_ms: when a listener hears it."""


@dataclass(frozen=True)
class Done(Event):
    """The utterance was played to its end."""

    _type: ClassVar[str] = "done"
    utterance: int = 0
    id: str | int | None = None
    audio_s: float = 0.0
    compute_s: float = 0.0
    rtf: float | None = None
    """compute_s / audio_s (None when nothing was synthesised, e.g. a cache hit)."""


@dataclass(frozen=True)
class Cancelled(Event):
    """The utterance ended early. `reason`: stop, cancel, priority, shutdown."""

    _type: ClassVar[str] = "cancelled"
    utterance: int = 0
    id: str | int | None = None
    reason: str = "cancel"
    silenced_s: float | None = None
    """`time.monotonic()` when the device went silent, if it was playing this utterance."""


@dataclass(frozen=True)
class Error(Event):
    """A request was refused (no `utterance`) or an accepted utterance failed (`utterance`)."""

    _type: ClassVar[str] = "error"
    code: str = ErrorCode.INTERNAL.value
    message: str = ""
    retryable: bool = False
    id: str | int | None = None
    utterance: int | None = None

    @classmethod
    def from_exception(
        cls,
        exc: ProtocolError,
        request_id: str | int | None = None,
        utterance: int | None = None,
    ) -> Error:
        """The error event for a ProtocolError."""
        return cls(
            code=exc.code,
            message=exc.message,
            retryable=exc.retryable,
            id=request_id,
            utterance=utterance,
        )


@dataclass(frozen=True)
class Ok(Event):
    """A control command (stop, cancel, pause, resume, subscribe) was done.

    Attributes:
        cmd: The command this answers.
        utterances: Utterance numbers it affected (stop/cancel).
    """

    _type: ClassVar[str] = "ok"
    cmd: str = ""
    id: str | int | None = None
    utterances: list[int] | None = None


@dataclass(frozen=True)
class Pong(Event):
    """Reply to `ping`."""

    _type: ClassVar[str] = "pong"
    id: str | int | None = None
    protocol: int = PROTOCOL_VERSION
    server: str = ""


@dataclass(frozen=True)
class StatusReply(Event):
    """Reply to `status`: a flat summary plus nested metrics (see docs/PROTOCOL.md)."""

    _type: ClassVar[str] = "status"
    id: str | int | None = None
    status: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VoicesReply(Event):
    """Reply to `voices`: one dict per voice (name, language, sample_rate_hz, ...)."""

    _type: ClassVar[str] = "voices"
    id: str | int | None = None
    voices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ConfigReply(Event):
    """Reply to `config`: the effective settings."""

    _type: ClassVar[str] = "config"
    id: str | int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""


EVENTS: dict[str, type[Event]] = {
    cls._type: cls
    for cls in (
        Queued,
        Started,
        FirstAudio,
        Done,
        Cancelled,
        Error,
        Ok,
        Pong,
        StatusReply,
        VoicesReply,
        ConfigReply,
    )
}
"""Event classes by `event` name."""

FINAL_EVENTS = ("done", "cancelled", "error")
"""Every accepted `speak` ends in exactly one of these."""


def decode_event(line: bytes) -> Event:
    """Parse one event line from the daemon (client side).

    Raises:
        ProtocolError: code `bad_json` when the line is not an event this client understands.
    """
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON.value, f"daemon sent malformed JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        raise ProtocolError(
            ErrorCode.BAD_JSON.value, f"daemon sent an unknown event: {line[:80]!r}"
        )
    return EVENTS[data["event"]].from_event(data)
