"""A client connection's outbox: encoded events queued and written by the connection's own task.

Shared by the protocol front-ends (native, SSIP). The outbox is bounded, so a slow or dead
client never blocks anyone else: when a client stops reading and its outbox fills, that client
alone is disconnected.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

__all__ = ["OUTBOX_EVENTS", "Connection"]

_LOG = logging.getLogger(__name__)

OUTBOX_EVENTS = 4096
"""Events waiting for a slow client at most; beyond that the client is disconnected."""


class Connection:
    """One client connection: its id, peer, outbox and writer task."""

    def __init__(self, cid: int, writer: asyncio.StreamWriter, peer_pid: int) -> None:
        self.id = cid
        self.peer_pid = peer_pid
        self.writer = writer
        self.subscribed = False
        self.closed = False
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(OUTBOX_EVENTS)
        self.task = asyncio.get_running_loop().create_task(self._drain())

    def send(self, data: bytes) -> None:
        """Queue one encoded event; a client too slow to take it is disconnected."""
        if self.closed:
            return
        try:
            self.outbox.put_nowait(data)
        except asyncio.QueueFull:
            _LOG.warning(
                "client %d (pid %d) is not reading; disconnecting it", self.id, self.peer_pid
            )
            self.abort()

    async def _drain(self) -> None:
        try:
            while True:
                data = await self.outbox.get()
                if data is None:
                    break
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.abort()

    async def flush_and_close(self, timeout_s: float) -> None:
        """Send what is queued (up to `timeout_s`), then close."""
        if not self.closed:
            with contextlib.suppress(asyncio.QueueFull):
                self.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        self.abort()

    def abort(self) -> None:
        """Close at once."""
        if self.closed:
            return
        self.closed = True
        if not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        with contextlib.suppress(Exception):
            self.writer.transport.abort()
