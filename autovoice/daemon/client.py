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
import dataclasses
import os
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from autovoice.daemon import protocol as p
from autovoice.daemon.client_core import (
    ClientCore,
    DaemonUnavailable,
    SpeakResult,
    check_piece,
    speak_request,
    stop_task,
)
from autovoice.daemon.paths import default_socket_path
from autovoice.errors import AutoVoiceError, ProtocolError

__all__ = ["AsyncClient", "Client", "DaemonUnavailable", "SpeakResult"]

DEFAULT_TIMEOUT_S = 30.0
"""How long a request waits for its reply."""


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
        self._core = ClientCore()

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
        text: str | Iterable[str],
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
            text: What to say; or an iterable of text pieces split anywhere (an LLM's
                deltas), sent as they are produced on one open stream (docs/PROTOCOL.md,
                "Streams"): speech starts with the first speakable piece. The stream ends when
                the iterable does; if the iterable raises, the utterance is cancelled and the
                exception propagates; a piece the daemon refuses (`text_too_long`) raises its
                `ProtocolError` likewise. Once the utterance ended early (stopped, cancelled),
                the rest of the iterable is not read.
            voice, speaker, rate, volume, priority: See docs/PROTOCOL.md (`speak`).
            wait: Wait for the final event.
            on_event: Called with each event of this utterance as it arrives.
            timeout_s: Limit for `wait` (None = no limit).

        Raises:
            ProtocolError: the daemon refused the request (or one of a stream's pieces).
            DaemonUnavailable: no daemon.
            TimeoutError: no reply, or `wait` took longer than `timeout_s`.
            TypeError: a piece is not a str.
        """
        streaming = not isinstance(text, str)
        req = speak_request("" if streaming else text, voice, speaker, rate, volume, priority)
        if streaming:
            req = dataclasses.replace(req, stream=True)
        queued = self._request(req)
        assert isinstance(queued, p.Queued)
        result = SpeakResult(queued.utterance, [queued])
        if on_event is not None:
            on_event(queued)
        if streaming:
            self._feed(result, text, on_event)  # type: ignore[arg-type]
        if wait:
            self.wait(result, timeout_s=timeout_s, on_event=on_event)
        return result

    def _feed(
        self,
        result: SpeakResult,
        pieces: Iterable[str],
        on_event: Callable[[p.Event], None] | None,
    ) -> None:
        """Send a stream's pieces as `append`s, then `end` (cancel if `pieces` raises)."""
        uid, appends = result.utterance, set()
        try:
            for piece in pieces:
                if check_piece(piece):
                    appends.add(self._send(p.Append(utterance=uid, text=piece)))
                self._pump(result, on_event)
                error = self._core.append_error(appends, result)
                if error is not None:
                    raise error
                if result.final is not None:
                    return
        except BaseException:
            with contextlib.suppress(AutoVoiceError, OSError):
                self._request(p.Cancel(utterance=uid))
            raise
        try:
            self._request(p.End(utterance=uid))
        except ProtocolError as exc:
            if exc.code != p.ErrorCode.NOT_FOUND.value:  # not_found: it ended meanwhile
                raise
        self._core.deliver(result, on_event)
        error = self._core.append_error(appends, result)  # replies come in order: all are here
        if error is not None:
            raise error

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

    def _send(self, req: p.Request) -> int:
        """Send one request without waiting for a reply; returns its id."""
        self.connect()
        assert self._sock is not None
        rid, data = self._core.request(req)
        try:
            self._sock.settimeout(self.timeout_s)
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise DaemonUnavailable(str(self.socket_path), f"send failed: {exc}") from None
        return rid

    def _pump(self, result: SpeakResult, on_event: Callable[[p.Event], None] | None) -> None:
        """File the events already received (without blocking); pass `result`'s on."""
        while True:
            try:
                event = self._read_event(time.monotonic())
            except TimeoutError:
                break
            self._core.route(event, None)
        self._core.deliver(result, on_event)

    def _request(self, req: p.Request) -> Any:
        rid = self._send(req)
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
            # Past the deadline: one look at what has already arrived (non-blocking).
            self._sock.settimeout(None if remaining is None else max(0.0, remaining))
            try:
                data = self._sock.recv(1 << 16)
            except (TimeoutError, BlockingIOError):
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
        self._core = ClientCore()

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
        text: str | Iterable[str] | AsyncIterable[str],
        *,
        voice: str | None = None,
        speaker: int | str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        priority: str | None = None,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> SpeakResult:
        """See `Client.speak`; `text` may also be an async iterable of pieces."""
        streaming = not isinstance(text, str)
        req = speak_request(
            "" if streaming else text, voice, speaker, rate, volume, priority, streaming
        )
        queued = await self._request(req)
        result = SpeakResult(queued.utterance, [queued])
        if streaming:
            await self._feed(result, text)  # type: ignore[arg-type]
        if wait:
            await self.wait(result, timeout_s)
        return result

    async def _feed(self, result: SpeakResult, pieces: Iterable[str] | AsyncIterable[str]) -> None:
        """See `Client._feed`; events are read meanwhile by a task of this client."""
        uid, appends = result.utterance, set()

        async def pump() -> None:
            while True:
                self._core.route(await self._read_event(), None)
                self._core.deliver(result, None)

        async def each() -> AsyncIterator[str]:
            if isinstance(pieces, AsyncIterable):
                async for piece in pieces:
                    yield piece
            else:
                for piece in pieces:
                    yield piece

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            async for piece in each():
                if check_piece(piece):
                    appends.add(await self._send(p.Append(utterance=uid, text=piece)))
                error = self._core.append_error(appends, result)
                if error is not None:
                    raise error
                if result.final is not None or reader.done():
                    break
        except BaseException:
            await stop_task(reader)
            with contextlib.suppress(AutoVoiceError, OSError):
                await self._request(p.Cancel(utterance=uid))
            raise
        await stop_task(reader)
        if result.final is None:
            try:
                await self._request(p.End(utterance=uid))
            except ProtocolError as exc:
                if exc.code != p.ErrorCode.NOT_FOUND.value:
                    raise
        self._core.deliver(result, None)
        error = self._core.append_error(appends, result)  # replies come in order: all are here
        if error is not None:
            raise error

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

    async def _send(self, req: p.Request) -> int:
        """Send one request without waiting for a reply; returns its id."""
        await self.connect()
        assert self._writer is not None
        rid, data = self._core.request(req)
        self._writer.write(data)
        await self._writer.drain()
        return rid

    async def _request(self, req: p.Request) -> Any:
        rid = await self._send(req)

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
