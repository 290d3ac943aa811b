"""Python client of the daemon: `Client` (blocking) and `AsyncClient` (asyncio).

>>> from autovoice.daemon.client import Client
>>> with Client() as tts:                                       # doctest: +SKIP
...     result = tts.speak("Hello there.", wait=True)
...     result.ok, result.first_audio_ms
(True, 41.7)

Both speak the protocol in docs/PROTOCOL.md over one connection. A refused request raises
`ProtocolError` (code, message, retryable); no daemon on the socket raises `DaemonUnavailable`.

Thread: a client is used by one thread (or one event loop) at a time. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autovoice.daemon import protocol as p
from autovoice.daemon.paths import default_socket_path
from autovoice.errors import AutoVoiceError, ProtocolError

__all__ = ["AsyncClient", "Client", "DaemonUnavailable", "SpeakResult"]

DEFAULT_TIMEOUT_S = 30.0
"""How long a request waits for its reply."""
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


class _Core:
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


def _speak_request(
    text: str,
    voice: str | None,
    speaker: int | str | None,
    rate: float | None,
    volume: float | None,
    priority: str | None,
) -> p.Speak:
    return p.Speak(
        text=text, voice=voice, speaker=speaker, rate=rate, volume=volume, priority=priority
    )


class Client:
    """Blocking client. Connects on first use; use as a context manager or call `close()`.

    Args:
        socket_path: The daemon's socket; None = `$AUTOVOICE_SOCKET`, else
            `$XDG_RUNTIME_DIR/autovoice/autovoice.sock` (the daemon's own default).
        timeout_s: How long to wait for a reply.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.socket_path = Path(socket_path) if socket_path else default_socket_path(os.environ)
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._core = _Core()

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> Client:
        """Open the connection (done automatically by the first request).

        Raises:
            DaemonUnavailable: nothing listens on the socket.
        """
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            sock.close()
            raise DaemonUnavailable(str(self.socket_path), exc.strerror or str(exc)) from None
        except PermissionError as exc:
            sock.close()
            raise DaemonUnavailable(str(self.socket_path), f"permission denied: {exc}") from None
        self._sock = sock
        return self

    def close(self) -> None:
        """Close the connection (queued speech goes on)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------

    def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        speaker: int | str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        priority: str | None = None,
        wait: bool = False,
        on_event: Callable[[p.Event], None] | None = None,
        timeout_s: float | None = None,
    ) -> SpeakResult:
        """Queue text; with `wait`, return once it was played, cancelled or failed.

        Args:
            text: What to say.
            voice, speaker, rate, volume, priority: See docs/PROTOCOL.md (`speak`).
            wait: Wait for the final event.
            on_event: Called with each event of this utterance as it arrives.
            timeout_s: Limit for `wait` (None = no limit).

        Raises:
            ProtocolError: the daemon refused the request.
            DaemonUnavailable: no daemon.
            TimeoutError: no reply, or `wait` took longer than `timeout_s`.
        """
        req = _speak_request(text, voice, speaker, rate, volume, priority)
        queued = self._request(req)
        assert isinstance(queued, p.Queued)
        result = SpeakResult(queued.utterance, [queued])
        if on_event is not None:
            on_event(queued)
        if wait:
            self.wait(result, timeout_s=timeout_s, on_event=on_event)
        return result

    def wait(
        self,
        result: SpeakResult,
        timeout_s: float | None = None,
        on_event: Callable[[p.Event], None] | None = None,
    ) -> SpeakResult:
        """Collect an utterance's events until its final one (or `timeout_s`: TimeoutError)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        stash = self._core.by_utterance[result.utterance]
        while result.final is None:
            while stash and result.final is None:
                event = stash.popleft()
                result.events.append(event)
                if on_event is not None:
                    on_event(event)
            if result.final is not None:
                break
            self._core.route(self._read_event(deadline), None)
        self._core.by_utterance.pop(result.utterance, None)
        return result

    def stop(self) -> list[int]:
        """Stop the utterance being spoken. Returns the utterances stopped."""
        return self._request(p.Stop()).utterances or []

    def cancel(self, utterance: int | None = None, mine: bool = False) -> list[int]:
        """Cancel current and queued utterances: all, only this connection's, or one."""
        req = p.Cancel(utterance=utterance, scope="self" if mine else None)
        return self._request(req).utterances or []

    def pause(self) -> None:
        """Hold playback."""
        self._request(p.Pause())

    def resume(self) -> None:
        """Continue playback."""
        self._request(p.Resume())

    def status(self) -> dict[str, Any]:
        """The daemon's status (see docs/PROTOCOL.md)."""
        return self._request(p.Status()).status

    def voices(self) -> list[dict[str, Any]]:
        """The voices the daemon can use."""
        return self._request(p.Voices()).voices

    def config(self) -> dict[str, Any]:
        """The daemon's effective configuration."""
        return self._request(p.Config()).config

    def ping(self) -> p.Pong:
        """Check the daemon answers."""
        return self._request(p.Ping())

    def events(self, timeout_s: float | None = None) -> Iterator[p.Event]:
        """Subscribe and yield every utterance event of every client (until `timeout_s`)."""
        self._request(p.Subscribe())
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                yield self._read_event(deadline)
            except TimeoutError:
                return

    # -- I/O ---------------------------------------------------------------------------------

    def _request(self, req: p.Request) -> Any:
        self.connect()
        assert self._sock is not None
        rid, data = self._core.request(req)
        try:
            self._sock.settimeout(self.timeout_s)
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise DaemonUnavailable(str(self.socket_path), f"send failed: {exc}") from None
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._core.route(self._read_event(deadline), rid)
            if reply is not None:
                return self._core.check(reply)

    def _read_event(self, deadline: float | None) -> p.Event:
        assert self._sock is not None
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return p.decode_event(line)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no reply from the daemon in time")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError:
                raise TimeoutError("no reply from the daemon in time") from None
            except OSError as exc:
                self.close()
                raise DaemonUnavailable(str(self.socket_path), f"connection lost: {exc}") from None
            if not data:
                self.close()
                raise DaemonUnavailable(str(self.socket_path), "the daemon closed the connection")
            self._buf += data


class AsyncClient:
    """asyncio client with the same methods as `Client` (awaitable).

    Args:
        socket_path: The daemon's socket; None = the default (see `Client`).
        timeout_s: How long to wait for a reply.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.socket_path = Path(socket_path) if socket_path else default_socket_path(os.environ)
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._core = _Core()

    async def connect(self) -> AsyncClient:
        """Open the connection. Raises DaemonUnavailable."""
        if self._writer is not None:
            return self
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                str(self.socket_path), limit=1 << 24
            )
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise DaemonUnavailable(str(self.socket_path), exc.strerror or str(exc)) from None
        return self

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def __aenter__(self) -> AsyncClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        speaker: int | str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        priority: str | None = None,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> SpeakResult:
        """See `Client.speak`."""
        queued = await self._request(_speak_request(text, voice, speaker, rate, volume, priority))
        result = SpeakResult(queued.utterance, [queued])
        if wait:
            await self.wait(result, timeout_s)
        return result

    async def wait(self, result: SpeakResult, timeout_s: float | None = None) -> SpeakResult:
        """See `Client.wait`."""
        stash = self._core.by_utterance[result.utterance]

        async def collect() -> None:
            while result.final is None:
                while stash and result.final is None:
                    result.events.append(stash.popleft())
                if result.final is None:
                    self._core.route(await self._read_event(), None)

        await asyncio.wait_for(collect(), timeout_s)
        self._core.by_utterance.pop(result.utterance, None)
        return result

    async def stop(self) -> list[int]:
        """See `Client.stop`."""
        return (await self._request(p.Stop())).utterances or []

    async def cancel(self, utterance: int | None = None, mine: bool = False) -> list[int]:
        """See `Client.cancel`."""
        req = p.Cancel(utterance=utterance, scope="self" if mine else None)
        return (await self._request(req)).utterances or []

    async def pause(self) -> None:
        """See `Client.pause`."""
        await self._request(p.Pause())

    async def resume(self) -> None:
        """See `Client.resume`."""
        await self._request(p.Resume())

    async def status(self) -> dict[str, Any]:
        """See `Client.status`."""
        return (await self._request(p.Status())).status

    async def voices(self) -> list[dict[str, Any]]:
        """See `Client.voices`."""
        return (await self._request(p.Voices())).voices

    async def config(self) -> dict[str, Any]:
        """See `Client.config`."""
        return (await self._request(p.Config())).config

    async def ping(self) -> p.Pong:
        """See `Client.ping`."""
        return await self._request(p.Ping())

    async def events(self) -> AsyncIterator[p.Event]:
        """Subscribe and yield every utterance event of every client."""
        await self._request(p.Subscribe())
        while True:
            yield await self._read_event()

    async def _request(self, req: p.Request) -> Any:
        await self.connect()
        assert self._writer is not None
        rid, data = self._core.request(req)
        self._writer.write(data)
        await self._writer.drain()

        async def reply() -> p.Event:
            while True:
                event = self._core.route(await self._read_event(), rid)
                if event is not None:
                    return self._core.check(event)

        return await asyncio.wait_for(reply(), self.timeout_s)

    async def _read_event(self) -> p.Event:
        assert self._reader is not None
        line = await self._reader.readline()
        if not line:
            raise DaemonUnavailable(str(self.socket_path), "the daemon closed the connection")
        return p.decode_event(line.rstrip(b"\n"))
