"""A raw SSIP client for tests and debugging: send command lines, read whole replies, and keep
the 7xx events apart.

>>> conn = SsipConnection.connect("/run/user/1000/speech-dispatcher/speechd.sock")  # doctest: +SKIP
>>> conn.command("SET SELF NOTIFICATION all on").code  # doctest: +SKIP
220
>>> conn.speak("Hello").lines  # doctest: +SKIP
['7']
>>> [e.kind for e in conn.events_of(7, until="END")]  # doctest: +SKIP
['BEGIN', 'END']

Thread: one thread per object. RT-safe: no.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

__all__ = ["SsipConnection", "SsipEvent", "SsipReply"]


@dataclass(frozen=True)
class SsipReply:
    """One reply: its code, its data lines (`NNN-...`) and its final text."""

    code: int
    lines: list[str]
    text: str

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.code < 300


@dataclass(frozen=True)
class SsipEvent:
    """One 7xx event: message id, client id, kind (BEGIN, END, INDEX MARK ...), mark name."""

    code: int
    msg_id: int
    client_id: int
    kind: str
    mark: str | None = None
    received_s: float = 0.0


class SsipConnection:
    """A raw SSIP connection with timeouts on every read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._pending: list[str] = []
        self.replies: list[SsipReply] = []
        self.events: list[SsipEvent] = []

    @classmethod
    def connect(cls, path: str | os.PathLike[str], timeout_s: float = 5.0) -> SsipConnection:
        """Connect to an SSIP Unix socket."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        return cls(sock)

    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.sock.sendall(data)

    def command(self, line: str | bytes, timeout_s: float = 5.0) -> SsipReply:
        """Send one command line (CRLF added) and return its reply."""
        data = line if isinstance(line, bytes) else line.encode("utf-8")
        self.send(data + b"\r\n")
        return self.reply(timeout_s)

    def speak(self, text: str, timeout_s: float = 5.0) -> SsipReply:
        """`SPEAK`, the dot-escaped text, `.`; returns the final reply (225 with the id)."""
        first = self.command("SPEAK", timeout_s)
        if first.code != 230:
            return first
        lines = text.replace("\r\n", "\n").split("\n")
        body = "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines)
        self.send(body.encode("utf-8") + b".\r\n")
        return self.reply(timeout_s)

    def reply(self, timeout_s: float = 5.0) -> SsipReply:
        """The next reply (events read on the way are kept in `events`).

        Raises:
            TimeoutError: none in time. ConnectionError: the server closed the connection.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self.replies:
                return self.replies.pop(0)
            self._read_some(deadline)

    def next_event(self, timeout_s: float = 10.0) -> SsipEvent:
        """The next event not yet returned (removed from `events`)."""
        deadline = time.monotonic() + timeout_s
        while not self.events:
            self._read_some(deadline)
        return self.events.pop(0)

    def events_of(self, msg_id: int, until: str = "END", timeout_s: float = 30.0):
        """Events of message `msg_id` up to one of kind `until` (or CANCELED), in order.

        Events of other messages stay in `events`.
        """
        deadline = time.monotonic() + timeout_s
        out: list[SsipEvent] = []
        while True:
            for ev in list(self.events):
                if ev.msg_id == msg_id:
                    self.events.remove(ev)
                    out.append(ev)
                    if ev.kind in (until, "CANCELED"):
                        return out
            self._read_some(deadline)

    def read_all(self, quiet_s: float = 0.3) -> bytes:
        """Raw bytes until nothing arrives for `quiet_s` (for inspecting exact bytes)."""
        out = bytes(self._buf)
        self._buf.clear()
        self.sock.settimeout(quiet_s)
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                return out
            if not data:
                return out
            out += data

    def _read_some(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no SSIP reply in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            raise TimeoutError("no SSIP reply in time") from None
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buf += data
        while True:
            nl = self._buf.find(b"\r\n")
            if nl < 0:
                return
            line = self._buf[:nl].decode("utf-8", "replace")
            del self._buf[: nl + 2]
            self._line(line)

    def _line(self, line: str) -> None:
        if len(line) >= 4 and line[3] == "-":
            self._pending.append(line)
            return
        code = int(line[:3])
        data = [ln[4:] for ln in self._pending if ln[:3] == line[:3]]
        self._pending = [ln for ln in self._pending if ln[:3] != line[:3]]
        if 700 <= code < 800:
            mark = data[2] if code == 700 and len(data) > 2 else None
            self.events.append(
                SsipEvent(code, int(data[0]), int(data[1]), line[4:], mark, time.monotonic())
            )
        else:
            self.replies.append(SsipReply(code, data, line[4:]))

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> SsipConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
