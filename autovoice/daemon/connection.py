"""The native protocol front-end: one client connection's request lines read and answered.

Each connection has its own reader (lines are parsed and answered one by one) and its own
writer task fed by a bounded outbox (`autovoice.daemon.outbox.Connection`), so a slow or dead
client never blocks anyone else. The daemon (`autovoice.daemon.server`) accepts the connection
and hands it to `RequestHandler.read_loop`; the handler uses only the core API
(`autovoice.daemon.core.DaemonCore`).

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import logging
import time

from autovoice.daemon import protocol as p
from autovoice.daemon.core import DaemonCore
from autovoice.daemon.outbox import Connection
from autovoice.daemon.player_io import SpeakPayload
from autovoice.daemon.scheduler import Priority, Utterance
from autovoice.daemon.streams import OpenStreams
from autovoice.daemon.text_feed import TextFeed
from autovoice.engines import SpeakOptions

__all__ = ["Connection", "RequestHandler", "reply", "reply_error", "server_version"]

_LOG = logging.getLogger(__name__)

READ_SIZE = 1 << 16
"""Bytes read from a socket at a time."""
LINE_SLACK_BYTES = 1 << 16
"""Room in a request line beyond its text (fields, JSON escapes are counted separately)."""


def max_line_bytes(max_text_bytes: int) -> int:
    """Longest request line accepted: the text fully \\u-escaped (6 bytes a byte) plus slack."""
    return 6 * max_text_bytes + LINE_SLACK_BYTES


def server_version() -> str:
    """The installed autovoice version, or "dev"."""
    try:
        from importlib.metadata import version

        return version("autovoice")
    except Exception:
        return "dev"


def reply_error(conn: Connection, exc: p.RequestError) -> None:
    """Send `exc` as an `error` event."""
    conn.send(p.encode_event(p.Error.from_exception(exc, exc.request_id).to_event()))


def reply(conn: Connection, event: p.Event) -> None:
    """Send one reply event."""
    conn.send(p.encode_event(event.to_event()))


class RequestHandler:
    """Reads a connection's request lines (docs/PROTOCOL.md) and answers each one.

    Args:
        daemon: The running daemon (its config, scheduler, player, metrics and public API).
    """

    def __init__(self, daemon: DaemonCore) -> None:
        self.daemon = daemon
        self.streams = OpenStreams(
            lambda: daemon.config.daemon.stream_idle_s,
            lambda: daemon.config.daemon.max_text_bytes,
        )

    async def read_loop(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        """Answer `conn`'s lines until it closes; an unfinished or too long line gets an error.

        Thread: event loop.
        """
        try:
            await self._read_lines(conn, reader)
        finally:
            self.streams.close_connection(conn.id)

    async def _read_lines(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        scanned = 0
        discarding = False
        while not conn.closed:
            try:
                data = await reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return
            received_s = time.monotonic()
            if not data:
                if buf and not discarding:
                    reply_error(
                        conn,
                        p.RequestError(
                            p.ErrorCode.TRUNCATED_LINE,
                            f"connection closed in the middle of a line ({len(buf)} bytes "
                            "without a newline)",
                        ),
                    )
                return
            buf += data
            while True:
                nl = buf.find(b"\n", scanned)
                if nl < 0:
                    scanned = len(buf)
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                scanned = 0
                if discarding:
                    discarding = False
                    continue
                self._handle_line(conn, line, received_s)
            limit = max_line_bytes(self.daemon.config.daemon.max_text_bytes)
            if len(buf) > limit:
                if not discarding:
                    reply_error(
                        conn,
                        p.RequestError(
                            p.ErrorCode.LINE_TOO_LONG,
                            f"a request line may be at most {limit} bytes; skipping to the next "
                            "newline",
                        ),
                    )
                    discarding = True
                buf.clear()
                scanned = 0

    def _handle_line(self, conn: Connection, line: bytes, received_s: float) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return
        try:
            request = p.parse_request(line, self.daemon.config.daemon.max_text_bytes)
            self._dispatch_request(conn, request, received_s)
        except p.RequestError as exc:
            self.daemon.metrics.count("rejected")
            reply_error(conn, exc)
        except Exception as exc:  # a bug must not take the connection down silently
            _LOG.exception("request failed")
            reply_error(conn, p.RequestError(p.ErrorCode.INTERNAL, f"internal error: {exc}"))

    def _dispatch_request(self, conn: Connection, req: p.Request, received_s: float) -> None:
        daemon = self.daemon
        if isinstance(req, p.Speak):
            self._speak(conn, req, received_s)
        elif isinstance(req, p.Append):
            self.streams.append(conn.id, req.utterance, req.text, received_s, req.id)
        elif isinstance(req, p.End):
            if req.text:
                self.streams.append(conn.id, req.utterance, req.text, received_s, req.id)
            self.streams.end(conn.id, req.utterance, req.id)
            reply(conn, p.Ok(cmd="end", id=req.id, utterances=[req.utterance]))
        elif isinstance(req, p.Stop):
            done = daemon.apply(daemon.scheduler.stop())
            reply(conn, p.Ok(cmd="stop", id=req.id, utterances=done))
        elif isinstance(req, p.Cancel):
            client = conn.id if req.scope == "self" else None
            done = daemon.apply(daemon.scheduler.cancel(client_id=client, uid=req.utterance))
            if req.utterance is not None and not done:
                raise p.RequestError(
                    p.ErrorCode.NOT_FOUND,
                    f"utterance {req.utterance} is not queued or speaking",
                    req.id,
                )
            reply(conn, p.Ok(cmd="cancel", id=req.id, utterances=done))
        elif isinstance(req, p.Pause):
            daemon.scheduler.pause()
            if daemon.player is not None:
                daemon.player.pause()
            reply(conn, p.Ok(cmd="pause", id=req.id))
        elif isinstance(req, p.Resume):
            daemon.scheduler.resume()
            if daemon.player is not None:
                daemon.player.resume()
            reply(conn, p.Ok(cmd="resume", id=req.id))
        elif isinstance(req, p.Status):
            reply(conn, p.StatusReply(id=req.id, status=daemon.status()))
        elif isinstance(req, p.Voices):
            reply(conn, p.VoicesReply(id=req.id, voices=daemon.voices()))
        elif isinstance(req, p.Config):
            reply(
                conn,
                p.ConfigReply(
                    id=req.id, config=daemon.config.to_dict(), source=daemon.config.source
                ),
            )
        elif isinstance(req, p.Subscribe):
            conn.subscribed = True
            reply(conn, p.Ok(cmd="subscribe", id=req.id))
        elif isinstance(req, p.Ping):
            reply(conn, p.Pong(id=req.id, server=f"autovoice {server_version()}"))

    def _speak(self, conn: Connection, req: p.Speak, received_s: float) -> None:
        daemon = self.daemon
        if daemon.closing:
            raise p.RequestError(p.ErrorCode.SHUTTING_DOWN, "the daemon is shutting down", req.id)
        gain = None
        if req.volume is not None:
            gain = min(4.0, daemon.config.synthesis.gain * req.volume)
        options = SpeakOptions(rate=req.rate, gain=gain, speaker=req.speaker)
        priority = Priority(req.priority or p.DEFAULT_PRIORITY)
        feed = None
        if req.stream:
            feed = TextFeed()
            feed.add(req.text, received_s)
        utt = Utterance(
            uid=daemon.scheduler.new_uid(),
            text="" if feed is not None else req.text,
            priority=priority,
            client_id=conn.id,
            request_id=req.id,
            payload=SpeakPayload(req.voice, options, feed=feed),
            received_s=received_s,
        )
        try:
            decision = daemon.submit(utt)
        except OverflowError as exc:
            raise p.RequestError(p.ErrorCode.QUEUE_FULL, str(exc), req.id) from None
        except RuntimeError as exc:
            raise p.RequestError(p.ErrorCode.SHUTTING_DOWN, str(exc), req.id) from None
        if feed is not None:
            self.streams.open(conn.id, utt, feed)
        daemon.dispatch(
            utt,
            p.Queued(
                utterance=utt.uid,
                id=req.id,
                priority=priority.value,
                position=decision.position,
            ),
        )
        daemon.apply(decision)
