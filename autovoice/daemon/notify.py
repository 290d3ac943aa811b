"""The service manager's notification protocol (sd_notify), written out: one datagram per
message to the Unix socket `$NOTIFY_SOCKET` names (a path, or `@name` for an abstract socket),
with newline-separated `KEY=value` fields (`READY=1`, `STATUS=...`, `RELOADING=1`,
`STOPPING=1`, `WATCHDOG=1`).

Without `NOTIFY_SOCKET` (started by hand) every call does nothing. A message that cannot be
sent is logged once at debug level and dropped: the service manager's absence never stops the
daemon. The watchdog (`WATCHDOG_USEC`, for `WatchdogSec=`) pings at half its interval while a
health check passes, so a hung player thread gets the service restarted.

Thread: the event loop (`watchdog` runs there too); `send` is safe from any thread. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Notifier"]

_LOG = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


def _address(name: str) -> str | bytes | None:
    """The socket address `$NOTIFY_SOCKET` names (None: not a Unix socket we can reach)."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()  # an abstract socket: no file
    if name.startswith("/"):
        return name
    return None  # e.g. systemd's vsock: addresses (virtual machines): not supported


def _watchdog_s(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval in seconds, when it is set for this process."""
    usec = environ.get(ENV_WATCHDOG_USEC, "")
    watched = environ.get(ENV_WATCHDOG_PID, "")
    if not usec.isdigit() or int(usec) == 0 or (watched and watched != str(pid)):
        return None
    return int(usec) / 1e6


@dataclass
class Notifier:
    """A client of the service manager's notification socket.

    Attributes:
        address: The socket's address (None: do nothing).
        watchdog_s: The watchdog interval (None: no watchdog asked for).
    """

    address: str | bytes | None = None
    watchdog_s: float | None = None
    _status: str | None = field(default=None, repr=False)
    _failed: bool = field(default=False, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int | None = None) -> Notifier:
        """The notifier `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`/`$WATCHDOG_PID` ask for."""
        name = environ.get(ENV_SOCKET, "")
        address = _address(name) if name else None
        if name and address is None:
            _LOG.warning("%s=%r is not a Unix socket; not notifying", ENV_SOCKET, name)
        watchdog = _watchdog_s(environ, os.getpid() if pid is None else pid)
        return cls(address, watchdog if address is not None else None)

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send one message of `KEY=value` fields. Returns whether it was sent."""
        if self.address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:
                _LOG.debug("cannot notify the service manager: %s", exc)
                self._failed = True
            return False
        return True

    def status(self, text: str) -> None:
        """`STATUS=text`, unless it is the status already sent."""
        if self.address is not None and text != self._status:
            self._status = text
            self.send(f"STATUS={_one_line(text)}")

    def ready(self, status: str) -> None:
        """`READY=1` with a status: start-up (or a reload) is done."""
        self._status = status
        self.send("READY=1", f"STATUS={_one_line(status)}")

    def reloading(self, status: str) -> None:
        """`RELOADING=1` (with the monotonic time systemd 253+ asks for) and a status."""
        self._status = status
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={_one_line(status)}")

    def stopping(self, status: str = "stopping") -> None:
        """`STOPPING=1`: shutdown has begun."""
        self._status = status
        self.send("STOPPING=1", f"STATUS={_one_line(status)}")

    async def watchdog(self, healthy: Callable[[], str | None]) -> None:
        """Ping `WATCHDOG=1` every half interval while `healthy()` returns None (it returns
        why not otherwise: the pings stop, and the service manager restarts the service after
        its `WatchdogSec`). Runs until cancelled; does nothing without a watchdog."""
        if self.watchdog_s is None or self.address is None:
            return
        status_before: str | None = None  # the status line while unhealthy (None: healthy)
        while True:
            problem = healthy()
            if problem is None:
                if status_before is not None:
                    _LOG.info("healthy again; pinging the watchdog")
                    self.status(status_before)
                    status_before = None
                self.send("WATCHDOG=1")
            elif status_before is None:
                _LOG.error("not pinging the watchdog: %s", problem)
                status_before = self._status or ""
                self.status(f"unhealthy: {problem}")
            await asyncio.sleep(self.watchdog_s / 2)


def _one_line(text: str) -> str:
    return " ".join(text.split())
