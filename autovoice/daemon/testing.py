"""A harness for driving a real daemon: start `autovoice serve` as a subprocess, talk raw protocol
lines to it, and assert the sequence of event types that comes back.

Used by the daemon's tests, and meant for the SSIP tests and the benchmark too.

>>> conn = RawConnection.connect("/run/user/1000/autovoice/autovoice.sock")   # doctest: +SKIP
>>> conn.send({"cmd": "speak", "text": "Hi", "id": 1})                         # doctest: +SKIP
>>> [e["event"] for e in conn.until_final(1, timeout_s=10)]                    # doctest: +SKIP
['queued', 'started', 'first_audio', 'done']

Thread: one thread per object. RT-safe: no.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DaemonProcess", "RawConnection"]

FINAL = ("done", "cancelled", "error")


class DaemonProcess:
    """`python -m autovoice serve --socket PATH ...` in a subprocess, with its stderr collected.

    Args:
        socket_path: Where it listens.
        args: More `serve` arguments (e.g. ["--device", "null"]).
        env: Environment of the child (None: this process's).
        cwd: Working directory of the child.
        pass_socket: Give `--socket socket_path` (False: the daemon finds its default path,
            which must then be `socket_path`).
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        pass_socket: bool = True,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.pass_socket = pass_socket
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.ready_s: float | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def log(self) -> str:
        """Everything the daemon wrote on stderr so far."""
        return "\n".join(self.lines)

    def start(self, timeout_s: float = 120.0) -> DaemonProcess:
        """Start and wait for the `ready` line.

        Raises:
            RuntimeError: it exited or was not ready in time (its log is in the message).
        """
        started = time.monotonic()
        cmd = [sys.executable, "-m", "autovoice", "serve"]
        if self.pass_socket:
            cmd += ["--socket", str(self.socket_path)]
        self.proc = subprocess.Popen(
            [*cmd, *self.args],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="daemon-log", daemon=True)
        self._reader.start()
        deadline = started + timeout_s
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(1.0)
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"daemon not ready in {timeout_s} s:\n{self.log}")
        self.ready_s = time.monotonic() - started
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("ready "):
                self._ready.set()

    def signal(self, sig: int) -> None:
        """Send a signal to the daemon."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGTERM and wait; returns the exit code (kills it after `timeout_s`)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            self._reader.join(1.0)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (leaves a stale socket behind, like a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5.0)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawConnection:
    """A raw protocol connection: send JSON (or any bytes), read event dicts with timeouts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self.received: list[dict[str, Any]] = []

    @classmethod
    def connect(cls, path: str | os.PathLike[str], timeout_s: float = 5.0) -> RawConnection:
        """Connect to a daemon socket."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        return cls(sock)

    def send(self, message: dict[str, Any] | bytes) -> None:
        """Send a request dict as one JSON line, or raw bytes as they are."""
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.sock.sendall(data)

    def request(self, message: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a request with an `id` and return its reply (events of others are kept)."""
        self.send(message)
        rid = message.get("id")

        def is_reply(event: dict[str, Any]) -> bool:
            return event.get("id") == rid and (
                event.get("event") == "queued" or "utterance" not in event
            )

        return self.next(is_reply, timeout_s)

    def read(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next event.

        Raises:
            TimeoutError: none in time.
            ConnectionError: the daemon closed the connection.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                event = json.loads(line)
                self.received.append(event)
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no event in {timeout_s} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                raise TimeoutError(f"no event in {timeout_s} s") from None
            if not data:
                raise ConnectionError("the daemon closed the connection")
            self._buf += data

    def next(self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0):
        """The next event for which `match(event)` is true (earlier ones are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            event = self.read(max(0.0, deadline - time.monotonic()))
            if match(event):
                return event

    def until_final(self, request_id: Any, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Events of the utterance with `id == request_id`, up to its final event."""
        deadline = time.monotonic() + timeout_s
        events: list[dict[str, Any]] = [
            e for e in self.received if e.get("id") == request_id and "utterance" in e
        ]
        while not events or events[-1]["event"] not in FINAL:
            event = self.read(max(0.0, deadline - time.monotonic()))
            if event.get("id") == request_id and "utterance" in event:
                events.append(event)
        return events

    def expect_types(
        self, request_id: Any, types: Sequence[str], timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """Assert the event types of utterance `request_id`, in order, up to its final one."""
        events = self.until_final(request_id, timeout_s)
        got = [e["event"] for e in events]
        if got != list(types):
            raise AssertionError(f"expected events {list(types)}, got {got}: {events}")
        return events

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
