"""The SSIP listener: Speech Dispatcher's protocol on a second Unix socket of the same daemon.

SSIP messages become utterances of the daemon's one scheduler (same priorities, same player and
audio device as the native protocol); their events come back through the utterance's payload
(`SsipPayload.listener`) and are translated into SSIP's 7xx events for the client that sent the
message, if it switched that event type on.

Index marks are timed by `autovoice.daemon.ssip.marks` (at their word's audio when the engine
reports word starts, else estimated). Marks always arrive in order, after `701 BEGIN` and before
`702 END`; marks not yet reached when a message is cancelled are not sent.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autovoice.daemon import protocol as p
from autovoice.daemon.core import DaemonCore
from autovoice.daemon.listeners import BACKLOG, Listener
from autovoice.daemon.outbox import Connection
from autovoice.daemon.playback import Anchor, Continued, MarkSamples
from autovoice.daemon.player_io import SpeakPayload
from autovoice.daemon.scheduler import Utterance
from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.codec import DataBlock, LineSplitter, Overflow
from autovoice.daemon.ssip.commands import Commands, Target, VoiceEntry, pick_voice
from autovoice.daemon.ssip.marks import MarkTimer, Track
from autovoice.daemon.ssip.session import Session, pitch_factor, rate_multiplier, volume_factor
from autovoice.daemon.ssip.ssml import Message
from autovoice.engines import SpeakOptions

__all__ = ["SsipPayload", "SsipServer"]

_LOG = logging.getLogger(__name__)

READ_SIZE = 1 << 16
"""Bytes read from a socket at a time."""
NO_DEFAULT_LANGUAGES = ("c", "posix", "")
"""Locale names that do not ask for a language (spd-say sends `C` under LANG=C.UTF-8)."""


@dataclass(frozen=True)
class SsipPayload(SpeakPayload):
    """A `SpeakPayload` whose events are also handed to `listener(utterance, event)`.

    The daemon's event dispatch calls the listener on the event loop for every event of the
    utterance (queued, started, first_audio, done, cancelled, error, and the player's internal
    `Continued` after a per-client pause).
    """

    listener: Callable[[Utterance, Any], None] | None = field(default=None, compare=False)


class SsipServer:
    """SSIP on a Unix socket, feeding `daemon`'s scheduler and player.

    Args:
        daemon: The running daemon (its scheduler, player, config, metrics, id counter).
    """

    def __init__(self, daemon: DaemonCore) -> None:
        self.daemon = daemon
        self.commands = Commands(self, daemon.config.daemon.max_text_bytes)
        self.path: Path | None = None
        self._server: asyncio.AbstractServer | None = None
        self._listener: Listener | None = None
        self._sessions: dict[int, Session] = {}
        self._conns: dict[int, Connection] = {}
        self._tracks: dict[int, Track] = {}
        self._marks = MarkTimer(self._tracks.get, self._send_mark)
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        """Serve on `listener` (bound by `listeners.bind`, or inherited); `close` closes it."""
        self._loop = self._marks.loop = asyncio.get_running_loop()
        self._server = await asyncio.start_unix_server(
            self._on_connect, sock=listener.sock, limit=READ_SIZE, backlog=BACKLOG
        )
        self._listener, self.path = listener, listener.path
        _LOG.info("SSIP (Speech Dispatcher protocol) listening on %s", listener.path)

    async def close(self) -> None:
        """Stop listening, close the SSIP connections, remove the socket."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for track in self._tracks.values():
            self._marks.stop(track)
        conns = list(self._conns.values())
        if conns:
            await asyncio.gather(*(c.flush_and_close(0.2) for c in conns))
        self._conns.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- connections -------------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        sock = writer.get_extra_info("socket")
        pid, uid = 0, -1
        with contextlib.suppress(OSError, AttributeError):
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
        conn = Connection(self.daemon.new_connection_id(), writer, pid)
        if uid != os.getuid() or self.daemon.closing:
            if uid != os.getuid():
                _LOG.warning("SSIP: refused a connection from uid %d (pid %d)", uid, pid)
            conn.send(r.encode(r.ERR_INTERNAL))
            await conn.flush_and_close(1.0)
            return
        session = Session(conn.id, language=self._default_language())
        self._sessions[conn.id] = session
        self._conns[conn.id] = conn
        try:
            await self._read_loop(conn, session, reader)
        finally:
            self._sessions.pop(conn.id, None)
            self._conns.pop(conn.id, None)
            self._forget(conn.id)
            await conn.flush_and_close(1.0)

    async def _read_loop(
        self, conn: Connection, session: Session, reader: asyncio.StreamReader
    ) -> None:
        max_text = self.daemon.config.daemon.max_text_bytes
        splitter = LineSplitter(max_text + 2)
        block: DataBlock | None = None
        while not conn.closed:
            try:
                data = await reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            for line in splitter.feed(data):
                if block is not None:
                    if block.add(line):
                        text = None if block.too_long else b"\n".join(block.lines)
                        block = None
                        conn.send(self.commands.finish_speak(session, text))
                    continue
                if isinstance(line, Overflow):
                    conn.send(r.encode(r.ERR_INVALID_COMMAND))
                    continue
                outcome = self.commands.handle(session, line)
                conn.send(outcome.reply)
                if outcome.receive_data:
                    block = DataBlock(max_text)
                if outcome.close:
                    return

    # -- Backend: what the commands need -----------------------------------------------------

    def new_id(self) -> int:
        """A fresh message id (the scheduler's utterance numbers)."""
        return self.daemon.scheduler.new_uid()

    def sessions(self) -> dict[int, Session]:
        """Connected SSIP sessions by client id."""
        return dict(self._sessions)

    def voices(self) -> list[VoiceEntry]:
        """The daemon's voices (its configured one first) as SSIP lists them."""
        current = self.daemon.player.info().get("voice") if self.daemon.player else None
        found = [
            VoiceEntry(v.name, v.language.replace("_", "-"), "none")
            for v in self.daemon.voice_registry().voices()  # rescans only when files changed
        ]
        found.sort(key=lambda v: v.name != current)
        return found

    def _default_language(self) -> str:
        voices = self.voices()
        return voices[0].language if voices else "en-US"

    def speak(self, session: Session, message: Message, msg_id: int | None = None) -> int:
        """Queue a message with the session's priority and settings; return its id."""
        d = self.daemon
        if d.closing:
            raise RuntimeError("the daemon is shutting down")
        config = d.config.synthesis
        rate = config.rate * rate_multiplier(session.rate) * (message.rate or 1.0)
        rate = min(10.0, max(0.1, rate))
        gain = min(4.0, max(0.0, config.gain * volume_factor(session.volume)))
        options = SpeakOptions(rate=rate, gain=gain)
        text = message.text
        utt = Utterance(
            uid=msg_id if msg_id is not None else d.scheduler.new_uid(),
            text=text,
            priority=session.priority,
            client_id=session.client_id,
            payload=SsipPayload(
                self._voice(session),
                options,
                pitch=pitch_factor(session.pitch),
                marks=tuple(offset for offset, _ in message.marks),
                listener=self._on_event,
            ),
        )
        self._tracks[utt.uid] = Track(session, message.marks, len(text), rate)
        try:
            decision = d.submit(utt)
        except BaseException:
            self._tracks.pop(utt.uid, None)
            raise
        d.dispatch(
            utt,
            p.Queued(utterance=utt.uid, priority=utt.priority.value, position=decision.position),
        )
        d.apply(decision)
        return utt.uid

    def _voice(self, session: Session) -> str | None:
        if session.synthesis_voice:
            return session.synthesis_voice
        language = session.language.lower()
        voices = self.voices()
        if language in NO_DEFAULT_LANGUAGES or not voices:
            return None
        picked = pick_voice(voices, language)
        if picked is None or picked == voices[0].name:
            return None
        return picked

    def stop(self, session: Session, target: Target) -> None:
        """`STOP all|self|client-id`: end the current message (if it matches); for a client,
        also its message that its pause took off the output."""
        self.daemon.apply(self.daemon.scheduler.stop(client_id=self._client(session, target)))

    def cancel(self, session: Session, target: Target) -> None:
        """`CANCEL all|self|client-id`: end the current message and drop the queued and held
        ones."""
        self.daemon.apply(self.daemon.scheduler.cancel(client_id=self._client(session, target)))

    def pause(self, session: Session, target: Target) -> None:
        """`PAUSE all`: hold playback daemon-wide where it is (the native `pause`).
        `PAUSE self|<client id>`: hold that client's messages only (Speech Dispatcher's
        per-client pause): its message being spoken is taken off the output at once, its queued
        ones are skipped, and every other client goes on being spoken."""
        client = self._client(session, target)
        d = self.daemon
        if client is None:
            if d.scheduler.pause():
                if d.player is not None:
                    d.player.pause()
                self._later(self._pause_event, True)
            return
        if client not in self._sessions or d.scheduler.client_paused(client):
            return
        utt = d.pause_client(client)
        if utt is not None:
            self._later(self._taken_off, utt.uid)

    def resume(self, session: Session, target: Target) -> None:
        """`RESUME all`: end the daemon-wide pause and every client's pause.
        `RESUME self|<client id>`: put that client's held messages back in the queue; the one a
        pause took off the output continues from the start of the clause it was in (705 when
        its audio is heard again)."""
        client = self._client(session, target)
        d = self.daemon
        d.scheduler.resume_clients(client)
        if client is None and d.scheduler.resume():
            if d.player is not None:
                d.player.resume()
            self._later(self._pause_event, False)

    def _forget(self, client_id: int) -> None:
        """A client disconnected: if it was paused, its held messages are dropped (they belong
        to the connection, and nobody can resume them)."""
        d = self.daemon
        if d.scheduler.client_paused(client_id):
            d.apply(d.scheduler.cancel(client_id=client_id))
            d.scheduler.resume_clients(client_id)

    @staticmethod
    def _client(session: Session, target: Target) -> int | None:
        if target == "all":
            return None
        return session.client_id if target == "self" else int(target)

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, utt: Utterance, event: Any) -> None:
        # Deferred so that events always follow the reply of the command that caused them.
        self._later(self._handle_event, utt, event)

    def _later(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon(fn, *args)

    def _handle_event(self, utt: Utterance, event: Any) -> None:
        track = self._tracks.get(utt.uid)
        if track is None:
            return
        if isinstance(event, Anchor):
            self._marks.anchor(utt.uid, track, event)
        elif isinstance(event, MarkSamples):
            self._marks.samples(utt.uid, track, event)
        elif isinstance(event, p.FirstAudio):
            self._begin(utt.uid, track)
            scheduler = self.daemon.scheduler
            if scheduler.paused or scheduler.client_paused(utt.client_id):
                self._paused(utt.uid, track)  # paused just as it began
        elif isinstance(event, Continued):
            if track.paused_sent:
                self._resumed(utt.uid, track)
        elif isinstance(event, p.Done):
            self._tracks.pop(utt.uid, None)
            self._begin(utt.uid, track, schedule=False)
            if track.paused_sent:  # what was left after its pause held no sound
                self._resumed(utt.uid, track)
            self._marks.finish(utt.uid, track, event.audio_s)
            self._send(track, "end", r.EVENT_END, utt.uid)
        elif isinstance(event, (p.Cancelled, p.Error)):
            self._tracks.pop(utt.uid, None)
            self._marks.stop(track)
            self._send(track, "cancel", r.EVENT_CANCELED, utt.uid)

    def _begin(self, uid: int, track: Track, schedule: bool = True) -> None:
        if track.begun:
            return
        track.begun = True
        self._send(track, "begin", r.EVENT_BEGIN, uid)
        if schedule:
            self._marks.begin(uid, track)

    def _send_mark(self, uid: int, track: Track, name: str) -> None:
        self._send(track, "index_marks", r.EVENT_INDEX_MARK, uid, name)

    def _pause_event(self, paused: bool) -> None:
        # The daemon-wide pause: 704/705 for the message being spoken.
        scheduler = self.daemon.scheduler
        cur = scheduler.current
        track = self._tracks.get(cur.uid) if cur is not None else None
        if cur is None or track is None:
            return
        if paused:
            self._paused(cur.uid, track)
        elif track.paused_sent and not scheduler.client_paused(cur.client_id):
            self._resumed(cur.uid, track)

    def _taken_off(self, uid: int) -> None:
        # A per-client pause took this message off the output.
        track = self._tracks.get(uid)
        if track is not None:
            self._paused(uid, track)

    def _paused(self, uid: int, track: Track) -> None:
        """704 for a message that has begun (once until it continues); its marks wait."""
        if not track.begun or track.paused_sent:
            return
        track.paused_sent = True
        self._marks.pause(track)
        self._send(track, "pause", r.EVENT_PAUSED, uid)

    def _resumed(self, uid: int, track: Track) -> None:
        """705: its audio goes on; the marks not yet sent are due again from now."""
        track.paused_sent = False
        self._send(track, "resume", r.EVENT_RESUMED, uid)
        self._marks.resume(uid, track)

    def _send(self, track: Track, kind: str, reply: r.Reply, uid: int, mark: Any = None):
        session = track.session
        conn = self._conns.get(session.client_id)
        if conn is not None and session.wants(kind):
            conn.send(r.event(reply, uid, session.client_id, mark))
