"""Reading Wyoming events so that bad input gets an answer, and the error codes we answer with.

The `wyoming` library's reader returns None both at the end of the stream and for a malformed
event, so a client that sends a bad line would just be dropped. `read_event` reads the same
framing (a JSON header line, then `data_length` bytes of JSON merged into its `data`, then
`payload_length` bytes of payload) and raises `MalformedEvent` instead; while the framing is
intact the connection goes on after an `error` reply. Events are the library's `Event`, and
everything we send is written by the library (`async_write_event`).

Thread: event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import enum
import json
from typing import Any

from wyoming.error import Error
from wyoming.event import Event

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_LINE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "ErrorCode",
    "MalformedEvent",
    "RequestRefused",
    "error_event",
    "read_event",
]

MAX_LINE_BYTES = 1 << 16
"""Longest header line read (asyncio's default stream limit, which the wyoming servers use);
texts travel in the `data_length` part, not in the line."""
MAX_DATA_BYTES = 8 << 20
"""Largest `data_length` accepted (texts are at most `daemon.max_text_bytes`)."""
MAX_PAYLOAD_BYTES = 16 << 20
"""Largest `payload_length` accepted (a TTS server is sent no audio)."""


class ErrorCode(str, enum.Enum):
    """The `code` of our `error` events (a closed set)."""

    MALFORMED_EVENT = "malformed-event"
    """Not a Wyoming event: bad JSON, no type, bad lengths."""
    UNKNOWN_EVENT = "unknown-event"
    """An event type a TTS server does not handle."""
    BAD_REQUEST = "bad-request"
    """A known event with missing or wrong fields (e.g. `synthesize` without text)."""
    UNEXPECTED_EVENT = "unexpected-event"
    """An event out of order (a `synthesize-chunk` outside a stream, a second start)."""
    UNKNOWN_VOICE = "unknown-voice"
    """A voice that `describe` does not list, or a speaker the voice does not have."""
    TEXT_TOO_LONG = "text-too-long"
    """More text than `daemon.max_text_bytes` in one request."""
    SYNTHESIS_FAILED = "synthesis-failed"
    """The voice failed to load or the engine failed."""
    SHUTTING_DOWN = "shutting-down"
    """The daemon is stopping."""


class RequestRefused(Exception):
    """A request that cannot be served (answered with an `error` event).

    Attributes:
        code: The error code.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class MalformedEvent(Exception):
    """The client sent something that is not a Wyoming event.

    Attributes:
        fatal: True when the framing is lost (the connection must close after the reply).
    """

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


def error_event(code: ErrorCode, text: str) -> Event:
    """The library's `error` event with our code."""
    return Error(text=text, code=code.value).event()


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at the end of the stream.

    Raises:
        MalformedEvent: the input is not a Wyoming event (`fatal` when what follows cannot be
            found any more).
        ConnectionError: the connection broke.
    """
    try:
        line = await reader.readline()
    except ValueError as exc:  # longer than the reader's limit: where the next event starts is lost
        raise MalformedEvent(f"header line longer than {MAX_LINE_BYTES} bytes", fatal=True) from exc
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the stream ended inside a line
    header = _parse_json(line, "header")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    data = header.get("data", {})
    if data is None:
        data = {}
    extra = await _read_exactly(reader, data_length)
    payload = await _read_exactly(reader, payload_length)
    if extra is None or payload is None:
        return None
    if not isinstance(data, dict):
        raise MalformedEvent("`data` must be an object")
    if extra:
        more = _parse_json(extra, "data")
        data = {**data, **more}
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("the header has no `type`")
    return Event(type=event_type, data=data, payload=payload or None)


def _parse_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"the {what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedEvent(f"the {what} must be a JSON object")
    return value


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"`{key}` must be a non-negative integer", fatal=True)
    if value > limit:
        raise MalformedEvent(f"`{key}` {value} is over the limit of {limit} bytes", fatal=True)
    return value


async def _read_exactly(reader: asyncio.StreamReader, size: int) -> bytes | None:
    """`size` bytes, or None if the stream ends first."""
    if size == 0:
        return b""
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
