"""The native front-end's open streams: `speak` with `stream`, then `append` and `end`.

A stream belongs to the connection that opened it; only that connection may add to or end it.
It ends when its client sends `end`, when its client disconnects (what arrived is spoken, as
closing a connection never cancels its speech), or when no text came for `daemon.stream_idle_s`
(so an abandoned stream cannot hold the speaker forever). Its text, all appends together, is
bounded by `daemon.max_text_bytes`.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from autovoice.daemon import protocol as p
from autovoice.daemon.scheduler import Utterance
from autovoice.daemon.text_feed import TextFeed

__all__ = ["OpenStreams"]

_LOG = logging.getLogger(__name__)


@dataclass
class _Stream:
    utt: Utterance
    feed: TextFeed
    conn_id: int
    idle: asyncio.TimerHandle | None = None


class OpenStreams:
    """The open streams of every native connection, by utterance number.

    Args:
        idle_s: Returns `daemon.stream_idle_s` (read at each use: a reload may change it).
        max_text_bytes: Returns `daemon.max_text_bytes`.
    """

    def __init__(self, idle_s: Callable[[], float], max_text_bytes: Callable[[], int]) -> None:
        self._idle_s = idle_s
        self._max_text_bytes = max_text_bytes
        self._open: dict[int, _Stream] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, conn_id: int, utt: Utterance, feed: TextFeed) -> None:
        """Register a just queued stream of connection `conn_id`."""
        stream = _Stream(utt, feed, conn_id)
        self._open[utt.uid] = stream
        self._touch(stream)

    def append(
        self, conn_id: int, uid: int, text: str, received_s: float, request_id: str | int | None
    ) -> None:
        """Add `text` to stream `uid`.

        Raises:
            RequestError: `not_found` (no such open stream of this connection: never opened,
                ended, cancelled, finished), `text_too_long` (the stream's text would pass
                `max_text_bytes`; the stream stays open without it).
        """
        stream = self._get(conn_id, uid, request_id)
        limit = self._max_text_bytes()
        size = stream.feed.text_bytes + len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise p.RequestError(
                p.ErrorCode.TEXT_TOO_LONG,
                f"stream {uid} would hold {size} bytes of text; the limit is {limit}",
                request_id,
            )
        stream.feed.add(text, received_s)
        self._touch(stream)

    def end(self, conn_id: int, uid: int, request_id: str | int | None) -> None:
        """End stream `uid`: its text is complete.

        Raises:
            RequestError: `not_found`, as for `append`.
        """
        self._finish(self._get(conn_id, uid, request_id))

    def close_connection(self, conn_id: int) -> None:
        """Connection `conn_id` closed: end its open streams (their text is spoken)."""
        for stream in [s for s in self._open.values() if s.conn_id == conn_id]:
            self._finish(stream)

    def _get(self, conn_id: int, uid: int, request_id: str | int | None) -> _Stream:
        stream = self._open.get(uid)
        if stream is not None and stream.utt.settled:  # cancelled or failed meanwhile
            self._finish(stream)
            stream = None
        if stream is None or stream.conn_id != conn_id:
            raise p.RequestError(
                p.ErrorCode.NOT_FOUND,
                f"utterance {uid} is not an open stream of this connection",
                request_id,
            )
        return stream

    def _finish(self, stream: _Stream) -> None:
        if stream.idle is not None:
            stream.idle.cancel()
        self._open.pop(stream.utt.uid, None)
        stream.feed.end()

    def _touch(self, stream: _Stream) -> None:
        if stream.idle is not None:
            stream.idle.cancel()
        loop = asyncio.get_running_loop()
        stream.idle = loop.call_later(self._idle_s(), self._expire, stream)

    def _expire(self, stream: _Stream) -> None:
        if self._open.get(stream.utt.uid) is stream:
            _LOG.info("stream %d: no text for %.0f s; ending it", stream.utt.uid, self._idle_s())
            self._finish(stream)
