"""Request messages (client to daemon) and their strict parsing and validation.

A request is one JSON object on one line naming its command in `cmd`; it may carry an `id`
that every reply and event about it echoes. Each request is one small frozen dataclass with
`from_event` and `to_event`; unknown fields, wrong types and out-of-range values are errors
with a closed-enum code (`RequestError`).

Thread: any (pure functions and immutable dataclasses). RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autovoice.daemon.protocol.codes import (
    CANCEL_SCOPES,
    PRIORITIES,
    PROTOCOL_VERSION,
    ErrorCode,
    RequestError,
    message_dict,
)

__all__ = [
    "REQUESTS",
    "Append",
    "Cancel",
    "Config",
    "End",
    "Pause",
    "Ping",
    "Request",
    "Resume",
    "Speak",
    "Status",
    "Stop",
    "Subscribe",
    "Voices",
    "check_text",
    "parse_request",
]

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
        return message_dict(self, "cmd", self._type)


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
    autovoice.daemon.protocol.codes.RequestError: unknown_command: unknown command 'dance' ...
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
