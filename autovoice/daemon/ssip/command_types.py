"""What the SSIP command handlers share: the `Backend` they act through (the daemon's scheduler
and voices; a fake one in unit tests), the `Outcome` they return, and `_Fail`, which answers a
command with an error reply from anywhere in its handler.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.session import Session
from autovoice.daemon.ssip.ssml import Message

# `_Fail` is private to the ssip package: `commands` and `set_command` raise it.
__all__ = ["Backend", "Outcome", "Target", "VoiceEntry"]

Target = str | int
"""`all`, `self`, or a message / client number."""


@dataclass(frozen=True)
class VoiceEntry:
    """One line of `LIST SYNTHESIS_VOICES`: name, language (BCP 47), variant."""

    name: str
    language: str
    variant: str = "none"


@dataclass(frozen=True)
class Outcome:
    """What the connection does after a command.

    Attributes:
        reply: Bytes to send (one complete reply).
        receive_data: Switch to reading a `SPEAK` data block.
        close: Close the connection after sending `reply` (QUIT).
    """

    reply: bytes
    receive_data: bool = False
    close: bool = False


class Backend(Protocol):
    """What SSIP commands need of the daemon."""

    def new_id(self) -> int:
        """A fresh message number (daemon-wide, shared with native utterances)."""
        ...

    def speak(self, session: Session, message: Message, msg_id: int | None = None) -> int:
        """Queue `message` with the session's priority and settings; return its message id.

        Raises:
            OverflowError: the queue is full. RuntimeError: the daemon is shutting down.
        """
        ...

    def stop(self, session: Session, target: Target) -> None: ...
    def cancel(self, session: Session, target: Target) -> None: ...
    def pause(self, session: Session, target: Target) -> None: ...
    def resume(self, session: Session, target: Target) -> None: ...
    def voices(self) -> list[VoiceEntry]: ...
    def sessions(self) -> dict[int, Session]: ...


class _Fail(Exception):
    """Internal: answer with this reply."""

    def __init__(self, reply: r.Reply) -> None:
        super().__init__(reply[1])
        self.reply = reply
