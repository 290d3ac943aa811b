"""What an utterance is, from queueing to its final event: its priority, why it was cancelled,
and what a command or an arrival cancelled (`Cancellation`).

The scheduler (`autovoice.daemon.scheduler`) decides the order; the player and the servers read
and settle utterances. `Utterance.resume_state` and `payload` are the player's, opaque here.

Thread: any (an utterance's events and `settle` are thread-safe). RT-safe: no.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CancelReason", "Cancellation", "Priority", "Utterance"]


class Priority(str, enum.Enum):
    """Speech Dispatcher's message priorities, highest first."""

    IMPORTANT = "important"
    MESSAGE = "message"
    TEXT = "text"
    NOTIFICATION = "notification"
    PROGRESS = "progress"


class CancelReason(str, enum.Enum):
    """Why an utterance ended without being played to its end."""

    STOP = "stop"
    CANCEL = "cancel"
    PRIORITY = "priority"
    SHUTDOWN = "shutdown"


@dataclass(eq=False)
class Utterance:
    """One accepted speak request, from queueing to its final event.

    Attributes:
        uid: Daemon-wide number (positive, increasing).
        text: What to say.
        priority: Its priority as requested.
        client_id: The connection that sent it.
        request_id: The client's `id`, echoed in its events.
        payload: What the player needs (voice, options); opaque to the scheduler.
        received_s: `time.monotonic()` when the request arrived.
        cancel_event: Set when it is stopped or cancelled; the player checks it between chunks.
        cancel_reason: Why it was cancelled (set with `cancel_event`).
        hold_event: Set when its client paused while it was current: the player takes it off
            the output and calls `Scheduler.park`.
        resume_state: The player's state of a held utterance (where it continues); opaque to
            the scheduler, dropped when the utterance is cancelled.
    """

    uid: int
    text: str
    priority: Priority
    client_id: int = 0
    request_id: str | int | None = None
    payload: Any = None
    received_s: float = field(default_factory=time.monotonic)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: CancelReason | None = None
    hold_event: threading.Event = field(default_factory=threading.Event)
    resume_state: Any = None
    effective: Priority | None = None
    """Priority it is scheduled with (a held progress is spoken as message)."""
    _settled: bool = False
    _settle_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.effective is None:
            self.effective = self.priority

    def settle(self) -> bool:
        """Claim the right to send this utterance's final event: True exactly once.

        Thread: any. RT-safe: no.
        """
        with self._settle_lock:
            if self._settled:
                return False
            self._settled = True
            return True

    @property
    def settled(self) -> bool:
        """Whether its final event was claimed."""
        return self._settled

    def _cancel(self, reason: CancelReason) -> None:
        if not self.cancel_event.is_set():
            self.cancel_reason = reason
            self.cancel_event.set()


@dataclass
class Cancellation:
    """Utterances a command or an arrival cancelled.

    Attributes:
        interrupted: The current utterance, if it was cancelled: its `cancel_event` is set and
            the player ends it (and sends its final event).
        removed: Utterances taken out of the queue (or dropped on arrival): nobody will play
            them; the caller sends their final events.
        position: For `submit`: utterances ahead of the new one when it was queued.
    """

    interrupted: Utterance | None = None
    removed: list[Utterance] = field(default_factory=list)
    position: int = 0

    @property
    def all(self) -> list[Utterance]:
        """Every cancelled utterance, the interrupted one first."""
        return ([self.interrupted] if self.interrupted else []) + self.removed
