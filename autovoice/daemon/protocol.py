"""The daemon's wire protocol: newline-delimited JSON requests and events (docs/PROTOCOL.md).

A request is one JSON object on one line naming its command in `cmd`; it may carry an `id`
that every reply and event about it echoes. Replies and events name themselves in `event` and
carry the protocol version in `v`. Each message is one small dataclass with `from_event` and
`to_event`; requests are validated strictly (unknown fields, wrong types and out-of-range values
are errors with a closed-enum code), events are read leniently (a newer daemon may add fields).

Thread: any (pure functions and immutable dataclasses). RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autovoice.errors import ProtocolError

__all__ = [
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "Request",
    "RequestError",
    "encode_event",
    "parse_request",
]

PROTOCOL_VERSION = 1
"""Major version of the protocol; bumped on any incompatible change."""

PRIORITIES = ("important", "message", "text", "notification", "progress")
"""Speech Dispatcher's priorities, highest first (see the scheduler's interaction table)."""

DEFAULT_PRIORITY = "message"
"""Priority of a `speak` without one: queued in order, never interrupting or interrupted by
its own kind."""

CANCEL_SCOPES = ("all", "self")
"""`cancel` targets: every client's utterances, or only this connection's."""


class ErrorCode(str, enum.Enum):
    """Closed set of error codes sent in `error` events (see docs/PROTOCOL.md)."""

    INVALID_UTF8 = "invalid_utf8"
    BAD_JSON = "bad_json"
    BAD_REQUEST = "bad_request"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_VALUE = "bad_value"
    TEXT_TOO_LONG = "text_too_long"
    LINE_TOO_LONG = "line_too_long"
    TRUNCATED_LINE = "truncated_line"
    UNSUPPORTED_VERSION = "unsupported_version"
    PERMISSION_DENIED = "permission_denied"
    QUEUE_FULL = "queue_full"
    NOT_FOUND = "not_found"
    NOT_PAUSED = "not_paused"
    UNKNOWN_VOICE = "unknown_voice"
    ENGINE_ERROR = "engine_error"
    AUDIO_ERROR = "audio_error"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


RETRYABLE_CODES = frozenset({ErrorCode.QUEUE_FULL, ErrorCode.SHUTTING_DOWN, ErrorCode.INTERNAL})
"""Codes for which sending the same request again later may succeed."""


class RequestError(ProtocolError):
    """A request that cannot be accepted, with the `id` it carried (if one could be read).

    Attributes:
        code: An `ErrorCode` value.
        request_id: The request's `id` (str or int), or None.
    """

    def __init__(self, code: ErrorCode, message: str, request_id: str | int | None = None):
        super().__init__(code.value, message, code in RETRYABLE_CODES)
        self.request_id = request_id


# --------------------------------------------------------------------------------------------
# Field validation


def _spec(
    types: tuple[type, ...],
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    return {"types": types, "low": low, "high": high, "choices": choices}


_ID = _spec((str, int))
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "true/false", list: "list"}


def _check_field(name: str, value: Any, meta: dict[str, Any], request_id: Any) -> Any:
    types: tuple[type, ...] = meta["types"]
    if value is None:
        return None
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        got = "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)
        raise RequestError(ErrorCode.BAD_TYPE, f"{name}: expected {wanted}, got {got}", request_id)
    if meta["choices"] is not None and value not in meta["choices"]:
        accepted = ", ".join(meta["choices"])
        raise RequestError(
            ErrorCode.BAD_VALUE, f"{name}: {value!r} is not one of: {accepted}", request_id
        )
    low, high = meta["low"], meta["high"]
    if low is not None and isinstance(value, (int, float)) and not low <= value <= high:
        raise RequestError(
            ErrorCode.BAD_VALUE, f"{name}: {value} is out of range ({low} .. {high})", request_id
        )
    return value


class Request:
    """Base of request messages: strict construction from a decoded JSON object."""

    _type: ClassVar[str] = ""
    _required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Request:
        """Validate a decoded request object (with `cmd`, optional `v`) into this dataclass.

        Raises:
            RequestError: unknown or missing field, wrong type, or out-of-range value.
        """
        request_id = data.get("id") if isinstance(data.get("id"), (str, int)) else None
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("cmd", "v"):
                continue
            if key not in fields:
                accepted = ", ".join(["cmd", "v", *sorted(fields)])
                raise RequestError(
                    ErrorCode.UNKNOWN_FIELD,
                    f"unknown field {key!r} for {cls._type} (accepted: {accepted})",
                    request_id,
                )
            values[key] = _check_field(key, value, fields[key].metadata, request_id)
        for key in cls._required:
            if values.get(key) is None:
                raise RequestError(
                    ErrorCode.MISSING_FIELD, f"{cls._type} needs field {key!r}", request_id
                )
        return cls(**values)

    def to_event(self) -> dict[str, Any]:
        """The request as a JSON-ready dict (what a client sends)."""
        data: dict[str, Any] = {"v": PROTOCOL_VERSION, "cmd": self._type}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                data[f.name] = value
        return data


@dataclass(frozen=True)
class Speak(Request):
    """Queue `text` for speaking.

    Attributes:
        text: What to say (UTF-8, at most the daemon's `max_text_bytes`); required unless
            `stream` (then the stream's first text, default none).
        id: Client's tag, echoed in every event about this utterance.
        voice: Voice name or path; None = the daemon's voice.
        speaker: Speaker id or name of a multi-speaker voice.
        rate: Speaking rate multiplier, 0.1 .. 10.
        volume: Linear volume multiplier on the configured gain, 0 .. 4.
        priority: One of `PRIORITIES`; None = `DEFAULT_PRIORITY`.
        stream: True: the utterance stays open for more text (`append`) until `end`.
    """

    _type: ClassVar[str] = "speak"

    text: str = field(default="", metadata=_spec((str,)))
    id: str | int | None = field(default=None, metadata=_ID)
    voice: str | None = field(default=None, metadata=_spec((str,)))
    speaker: int | str | None = field(default=None, metadata=_spec((int, str)))
    rate: float | None = field(default=None, metadata=_spec((float,), 0.1, 10.0))
    volume: float | None = field(default=None, metadata=_spec((float,), 0.0, 4.0))
    priority: str | None = field(default=None, metadata=_spec((str,), choices=PRIORITIES))
    stream: bool | None = field(default=None, metadata=_spec((bool,)))


@dataclass(frozen=True)
class Append(Request):
    """Add text to this connection's open stream (a `speak` with `stream`).

    Attributes:
        utterance: The stream's utterance number (from `queued`).
        text: More text, split anywhere (mid-word is fine).
        id: Client's tag, echoed in an error about this request.
    """

    _type: ClassVar[str] = "append"
    _required: ClassVar[tuple[str, ...]] = ("utterance", "text")

    utterance: int = field(default=0, metadata=_spec((int,), 1, 2**63))
    text: str = field(default="", metadata=_spec((str,)))
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class End(Request):
    """End this connection's open stream: what it holds is spoken, then `done`.

    Attributes:
        utterance: The stream's utterance number (from `queued`).
        text: Last text to add first (optional).
        id: Client's tag, echoed in the `ok` reply.
    """

    _type: ClassVar[str] = "end"
    _required: ClassVar[tuple[str, ...]] = ("utterance",)

    utterance: int = field(default=0, metadata=_spec((int,), 1, 2**63))
    text: str | None = field(default=None, metadata=_spec((str,)))
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Stop(Request):
    """Stop the utterance being spoken now (queued ones go on)."""

    _type: ClassVar[str] = "stop"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Cancel(Request):
    """Cancel the current and queued utterances: all, this connection's, or one.

    Attributes:
        utterance: Daemon-assigned utterance number (from `queued`) to cancel alone.
        scope: "all" (default) or "self" (only this connection's utterances).
    """

    _type: ClassVar[str] = "cancel"
    id: str | int | None = field(default=None, metadata=_ID)
    utterance: int | None = field(default=None, metadata=_spec((int,), 1, 2**63))
    scope: str | None = field(default=None, metadata=_spec((str,), choices=CANCEL_SCOPES))


@dataclass(frozen=True)
class Pause(Request):
    """Hold playback where it is; nothing is dropped."""

    _type: ClassVar[str] = "pause"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Resume(Request):
    """Continue playback after `pause`."""

    _type: ClassVar[str] = "resume"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Status(Request):
    """Ask for the daemon's status and metrics."""

    _type: ClassVar[str] = "status"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Voices(Request):
    """List the voices the daemon can use."""

    _type: ClassVar[str] = "voices"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Config(Request):
    """Read the effective configuration."""

    _type: ClassVar[str] = "config"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Subscribe(Request):
    """Receive the events of every client's utterances on this connection."""

    _type: ClassVar[str] = "subscribe"
    id: str | int | None = field(default=None, metadata=_ID)


@dataclass(frozen=True)
class Ping(Request):
    """Check the daemon is alive; replies `pong` with the protocol version."""

    _type: ClassVar[str] = "ping"
    id: str | int | None = field(default=None, metadata=_ID)


REQUESTS: dict[str, type[Request]] = {
    cls._type: cls
    for cls in (
        Speak,
        Append,
        End,
        Stop,
        Cancel,
        Pause,
        Resume,
        Status,
        Voices,
        Config,
        Subscribe,
        Ping,
    )
}
"""Request classes by command name."""


def parse_request(line: bytes, max_text_bytes: int) -> Request:
    """Decode one request line (without its newline) into its dataclass.

    Args:
        line: The raw bytes of one line.
        max_text_bytes: Largest `text` accepted, in UTF-8 bytes.

    Returns:
        The validated request.

    Raises:
        RequestError: with the code of the first problem found.

    >>> parse_request(b'{"cmd": "speak", "text": "Hi", "id": 7}', 100)
    Speak(text='Hi', id=7, voice=None, speaker=None, rate=None, volume=None, priority=None, \
stream=None)
    >>> parse_request(b'{"cmd": "dance"}', 100)
    Traceback (most recent call last):
    ...
    autovoice.daemon.protocol.RequestError: unknown_command: unknown command 'dance' (accepted: ...)
    """
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            ErrorCode.INVALID_UTF8, f"request is not valid UTF-8 (byte {exc.start})"
        ) from exc
    try:
        data = json.loads(decoded)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(ErrorCode.BAD_JSON, f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, "a request must be a JSON object")
    request_id = data.get("id") if isinstance(data.get("id"), (str, int)) else None
    version = data.get("v", PROTOCOL_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise RequestError(ErrorCode.BAD_TYPE, "v: expected integer", request_id)
    if version != PROTOCOL_VERSION:
        raise RequestError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported (this daemon speaks {PROTOCOL_VERSION})",
            request_id,
        )
    cmd = data.get("cmd")
    if cmd is None:
        raise RequestError(ErrorCode.MISSING_FIELD, "request needs field 'cmd'", request_id)
    accepted = ", ".join(REQUESTS)
    if not isinstance(cmd, str) or cmd not in REQUESTS:
        raise RequestError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command {cmd!r} (accepted: {accepted})",
            request_id,
        )
    request = REQUESTS[cmd].from_event(data)
    if isinstance(request, Speak) and data.get("text") is None:
        if not request.stream:
            raise RequestError(ErrorCode.MISSING_FIELD, "speak needs field 'text'", request_id)
        request = dataclasses.replace(request, text="")
    text = getattr(request, "text", None)
    if isinstance(text, str):
        check_text(text, max_text_bytes, request_id)
    return request


def check_text(text: str, max_text_bytes: int, request_id: str | int | None = None) -> None:
    """Refuse text longer than `max_text_bytes` UTF-8 bytes or holding unpaired surrogates.

    Raises:
        RequestError: `text_too_long` or `invalid_utf8`.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_text_bytes:
        raise RequestError(
            ErrorCode.TEXT_TOO_LONG,
            f"text is {size} bytes; the limit is {max_text_bytes}",
            request_id,
        )
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise RequestError(
            ErrorCode.INVALID_UTF8, "text holds an unpaired surrogate escape", request_id
        )


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
        data: dict[str, Any] = {"v": PROTOCOL_VERSION, "event": self._type}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                data[f.name] = value
        return data


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
