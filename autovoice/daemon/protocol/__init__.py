"""The daemon's wire protocol: newline-delimited JSON requests and events (docs/PROTOCOL.md).

A request is one JSON object on one line naming its command in `cmd`; it may carry an `id`
that every reply and event about it echoes. Replies and events name themselves in `event` and
carry the protocol version in `v`. Each message is one small dataclass with `from_event` and
`to_event`; requests are validated strictly (unknown fields, wrong types and out-of-range values
are errors with a closed-enum code), events are read leniently (a newer daemon may add fields).

The package re-exports its modules' names, so `from autovoice.daemon import protocol as p`
gives `p.Speak`, `p.ErrorCode`, `p.encode_event`, ...: `codes` (version, priorities, error
codes, `RequestError`), `requests` (request messages and their parsing), `events` (reply and
event messages, their encoding and decoding).

Thread: any (pure functions and immutable dataclasses). RT-safe: no.
"""

from __future__ import annotations

from autovoice.daemon.protocol.codes import (
    CANCEL_SCOPES,
    DEFAULT_PRIORITY,
    PRIORITIES,
    PROTOCOL_VERSION,
    RETRYABLE_CODES,
    ErrorCode,
    RequestError,
)
from autovoice.daemon.protocol.events import (
    EVENTS,
    FINAL_EVENTS,
    Cancelled,
    ConfigReply,
    Done,
    Error,
    Event,
    FirstAudio,
    Ok,
    Pong,
    Queued,
    Started,
    StatusReply,
    VoicesReply,
    decode_event,
    encode_event,
)
from autovoice.daemon.protocol.requests import (
    REQUESTS,
    Append,
    Cancel,
    Config,
    End,
    Pause,
    Ping,
    Request,
    Resume,
    Speak,
    Status,
    Stop,
    Subscribe,
    Voices,
    check_text,
    parse_request,
)

__all__ = [
    "CANCEL_SCOPES",
    "DEFAULT_PRIORITY",
    "EVENTS",
    "FINAL_EVENTS",
    "PRIORITIES",
    "PROTOCOL_VERSION",
    "REQUESTS",
    "RETRYABLE_CODES",
    "Append",
    "Cancel",
    "Cancelled",
    "Config",
    "ConfigReply",
    "Done",
    "End",
    "Error",
    "ErrorCode",
    "Event",
    "FirstAudio",
    "Ok",
    "Pause",
    "Ping",
    "Pong",
    "Queued",
    "Request",
    "RequestError",
    "Resume",
    "Speak",
    "Started",
    "Status",
    "StatusReply",
    "Stop",
    "Subscribe",
    "Voices",
    "VoicesReply",
    "check_text",
    "decode_event",
    "encode_event",
    "parse_request",
]
