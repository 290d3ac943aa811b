"""The protocol's version, priorities, closed-enum error codes and the request error.

What both directions of the wire protocol (`requests`, `events`) share.

Thread: any (constants and immutable values). RT-safe: no.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from autovoice.errors import ProtocolError

__all__ = [
    "CANCEL_SCOPES",
    "DEFAULT_PRIORITY",
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "RETRYABLE_CODES",
    "ErrorCode",
    "RequestError",
    "message_dict",
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


def message_dict(message: Any, kind_key: str, kind: str) -> dict[str, Any]:
    """A request or event dataclass as a JSON-ready dict: the protocol version, `kind` under
    `kind_key` ("cmd" or "event"), and every field that is not None."""
    data: dict[str, Any] = {"v": PROTOCOL_VERSION, kind_key: kind}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if value is not None:
            data[f.name] = value
    return data


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
