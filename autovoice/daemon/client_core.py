"""What both daemon clients share, without I/O: results, errors, routing events to requests.

`autovoice.daemon.client` (`Client`, `AsyncClient`) does the I/O.

Thread: one client's thread or event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from autovoice.daemon import protocol as p
from autovoice.errors import AutoVoiceError, ProtocolError

__all__ = [
    "ClientCore",
    "DaemonUnavailable",
    "SpeakResult",
    "check_piece",
    "speak_request",
    "stop_task",
]

_REPLIES = (p.Queued, p.Ok, p.Pong, p.StatusReply, p.VoicesReply, p.ConfigReply)


class DaemonUnavailable(AutoVoiceError):
    """No daemon answers on the socket.

    Attributes:
        path: The socket tried.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"no AutoVoice daemon on {path} ({problem}); start one with `autovoice serve` "
            "(or `systemctl --user start autovoice`)"
        )


@dataclass
class SpeakResult:
    """What is known about one spoken utterance.

    Attributes:
        utterance: The daemon's number for it.
        events: Its events so far, in order (queued first).
    """

    utterance: int
    events: list[p.Event] = field(default_factory=list)

    @property
    def final(self) -> p.Event | None:
        """The done / cancelled / error event, once it came."""
        last = self.events[-1] if self.events else None
        return last if last is not None and last._type in p.FINAL_EVENTS else None

    @property
    def ok(self) -> bool:
        """True when it was played to its end."""
        return isinstance(self.final, p.Done)

    @property
    def first_audio_ms(self) -> float | None:
        """Latency from request to first audio at the device, if it got that far."""
        for event in self.events:
            if isinstance(event, p.FirstAudio):
                return event.latency_ms
        return None


class ClientCore:
    """Protocol bookkeeping shared by both clients (no I/O)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.by_utterance: dict[int, deque[p.Event]] = defaultdict(deque)
        self.unsolicited: deque[p.Event] = deque()

    def request(self, req: p.Request) -> tuple[int, bytes]:
        rid = next(self._ids)
        data = req.to_event()
        data["id"] = rid
        return rid, p.encode_event(data)

    def route(self, event: p.Event, rid: int | None) -> p.Event | None:
        """Return `event` if it answers request `rid`; else file it for later."""
        ev_id = getattr(event, "id", None)
        utt = getattr(event, "utterance", None)
        is_reply = isinstance(event, _REPLIES) or (isinstance(event, p.Error) and utt is None)
        if rid is not None and ev_id == rid and is_reply:
            return event
        if isinstance(event, p.Error) and utt is None and ev_id is None:
            return event  # a connection-level error (e.g. permission_denied)
        if utt is not None:
            self.by_utterance[utt].append(event)
        else:
            self.unsolicited.append(event)
        return None

    @staticmethod
    def check(event: p.Event) -> p.Event:
        if isinstance(event, p.Error):
            raise ProtocolError(event.code, event.message, event.retryable)
        return event

    def deliver(self, result: SpeakResult, on_event: Callable[[p.Event], None] | None) -> None:
        """Move `result`'s events received so far into it (up to its final one)."""
        stash = self.by_utterance[result.utterance]
        while stash and result.final is None:
            event = stash.popleft()
            result.events.append(event)
            if on_event is not None:
                on_event(event)

    def append_error(self, appends: set[int], result: SpeakResult) -> ProtocolError | None:
        """The first error reply to one of a stream's `append`s (None: none). Once the stream
        has ended (cancelled, stopped) its appends' `not_found` errors are expected: dropped."""
        found = None
        for event in [e for e in self.unsolicited if getattr(e, "id", None) in appends]:
            self.unsolicited.remove(event)
            if found is None and isinstance(event, p.Error) and result.final is None:
                found = ProtocolError(event.code, event.message, event.retryable)
        return found


def speak_request(
    text: str,
    voice: str | None,
    speaker: int | str | None,
    rate: float | None,
    volume: float | None,
    priority: str | None,
    stream: bool = False,
) -> p.Speak:
    return p.Speak(
        text=text,
        voice=voice,
        speaker=speaker,
        rate=rate,
        volume=volume,
        priority=priority,
        stream=stream or None,
    )


def check_piece(piece: object) -> str:
    if not isinstance(piece, str):
        raise TypeError(f"text pieces must be str, got {type(piece).__name__}")
    return piece


async def stop_task(task: asyncio.Task) -> None:
    """Cancel a reader task and wait for it (StreamReader.readline keeps a partial line)."""
    if task.done():
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
