"""The daemon: an asyncio Unix-socket server in front of the scheduler and the player thread.

This module is the daemon's lifecycle (start-up, signals, SIGHUP reload, shutdown) and its
accepting of connections (peer credentials checked). The core API the protocol front-ends use is
`autovoice.daemon.core_api.CoreApi`, which `Daemon` inherits (`Daemon` implements
`autovoice.daemon.core.DaemonCore`; the front-ends import only that, never this module):
reading and answering a native connection's requests is `autovoice.daemon.connection`, SSIP is
`autovoice.daemon.ssip.server`. How it was asked to run is `serve_options.ServeOptions`.

Thread: the event loop, except `Daemon.run` (main thread) and what it starts. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autovoice.config import AppConfig
from autovoice.daemon import protocol as p
from autovoice.daemon.connection import READ_SIZE, RequestHandler, reply_error
from autovoice.daemon.core_api import CoreApi
from autovoice.daemon.listeners import BACKLOG, NATIVE, SSIP, Listener, adopt, bind
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.outbox import Connection
from autovoice.daemon.player import Player
from autovoice.daemon.player_io import Output
from autovoice.daemon.scheduler import Scheduler
from autovoice.daemon.serve_options import ServeOptions
from autovoice.daemon.synthesis_pool import SynthesisPool
from autovoice.engines import Synthesizer
from autovoice.engines.voice_registry import VoiceRegistry

__all__ = ["Daemon", "ServeOptions", "make_output"]

_LOG = logging.getLogger(__name__)

SHUTDOWN_FLUSH_S = 0.2
"""How long final events may take to reach clients at shutdown."""
NULL_DEVICE = "null"
"""`--device null`: no sound card; audio is consumed in real time and thrown away."""


def make_output(config: AppConfig, input_rate_hz: int, on_event: Callable[[Any], None]) -> Output:
    """The audio output for `config.audio` (not started): PortAudio, or the null sink."""
    from autovoice import audio_io
    from autovoice.daemon.nullout import NullOutput

    audio = config.audio
    if audio.device == NULL_DEVICE:
        return NullOutput(input_rate_hz, buffer_s=audio.lookahead_s, on_event=on_event)
    return audio_io.AudioOutput(
        input_rate_hz,
        device=audio.device,
        latency=audio.latency,
        buffer_s=audio.lookahead_s,
        on_event=on_event,
        block_s=audio.block_s,
        idle_stop_s=audio.idle_stop_s,
    )


class Daemon(CoreApi):
    """The AutoVoice daemon: socket, scheduler, player, metrics.

    Args:
        config: Effective configuration (overrides applied).
        options: Socket and reload settings.
        make_output: Factory of the audio output (see `make_output`).
    """

    def __init__(
        self,
        config: AppConfig,
        options: ServeOptions,
        make_output: Callable[..., Output] = make_output,
    ) -> None:
        self.config = config
        self.options = options
        self._make_output = make_output
        self.scheduler = Scheduler()
        self.metrics = Metrics()
        self.player: Player | None = None
        self._connections: dict[int, Connection] = {}
        self._requests = RequestHandler(self)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._closing = False
        self._stopped: asyncio.Event | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._listener: Listener | None = None
        self._ssip_listener: Listener | None = None
        self._notify = options.notifier
        self._voice_line = ""
        self.ssip: Any = None
        """The SSIP listener (`autovoice.daemon.ssip.server.SsipServer`) when enabled."""
        self._front_ends: list[Any] = []
        self._synthesis: SynthesisPool | None = None
        self._registry = VoiceRegistry(config.voices_dir)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT. Returns the exit code (0 on a clean stop).

        Raises:
            SocketInUse: another daemon serves the socket.
            VoiceError, EngineError, AudioDeviceError: the voice or audio cannot be opened.
        """
        options = self.options
        # Listening before the voice loads: a client that connects meanwhile waits in the
        # backlog, its request unread, and is served once the voice is ready.
        self._listener = self._listen(NATIVE, options.socket_path, options.private_dir)
        try:
            if options.ssip_path is not None or SSIP in options.inherited:
                self._ssip_listener = self._listen(SSIP, options.ssip_path, False)
            return asyncio.run(self._start_and_serve())
        finally:
            _LOG.debug("loop done")
            if self._synthesis is not None:
                self._synthesis.close()
            if self.player is not None:
                self.player.close()
            _LOG.debug("player closed")
            for listener in (self._ssip_listener, self._listener):
                if listener is not None:
                    listener.close()
            _LOG.debug("socket released")

    def _listen(self, name: str, path: Path | None, private_dir: bool) -> Listener:
        """The inherited socket `name`, else `path` bound now."""
        inherited = self.options.inherited.get(name)
        if inherited is not None:
            return adopt(inherited)
        assert path is not None
        return bind(path, private_dir)

    async def _start_and_serve(self) -> int:
        """Start the front-ends, load the voice off the loop (so they can answer what needs no
        voice meanwhile: Wyoming's `describe`), start the player, tell the front-ends, serve."""
        self._notify.status(f"loading voice {self.config.voice}")
        try:
            for make_front_end in self.options.front_ends:
                front_end = make_front_end(self)
                await front_end.start()
                self._front_ends.append(front_end)
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            synth = await loop.run_in_executor(None, Synthesizer.load, self.config)
            _LOG.info(
                "voice %s (%d Hz) on %s loaded in %.2f s",
                synth.voice.name,
                synth.sample_rate,
                synth.engine_name,
                time.monotonic() - started,
            )
            self.player = Player(
                self.scheduler,
                self.config,
                synth,
                self._make_output,
                self._emit_threadsafe,
                self.metrics,
            )
            self.player.start()
            for front_end in self._front_ends:
                await front_end.ready()
        except BaseException:
            for front_end in self._front_ends:
                with contextlib.suppress(Exception):
                    await front_end.close()
            raise
        return await self._serve()

    async def _serve(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        assert self._listener is not None
        path = self._listener.path
        self._server = await asyncio.start_unix_server(
            self._on_connect, sock=self._listener.sock, limit=READ_SIZE, backlog=BACKLOG
        )
        if self._ssip_listener is not None:
            from autovoice.daemon.ssip.server import SsipServer

            self.ssip = SsipServer(self)
            await self.ssip.start(self._ssip_listener)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._request_shutdown, sig)
        self._loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        info = self.player.info() if self.player else {}
        stream = self.options.ready_stream or sys.stderr
        print(
            f"ready socket={path} pid={os.getpid()} voice={info.get('voice')} "
            f"engine={info.get('engine')} device={info.get('audio', {}).get('device')!r}",
            file=stream,
            flush=True,
        )
        self._voice_line = f"voice {info.get('voice')} on {info.get('engine')}"
        self._notify.ready(f"ready, {self._voice_line}")
        health = self.player.health if self.player else lambda: None
        watchdog = self._loop.create_task(self._notify.watchdog(health))
        await self._stopped.wait()
        watchdog.cancel()
        await self._shutdown()
        _LOG.debug("shutdown done")
        return 0

    def _request_shutdown(self, sig: int) -> None:
        _LOG.info("got %s; shutting down", signal.Signals(sig).name)
        if self._stopped is not None:
            self._stopped.set()

    def _request_reload(self) -> None:
        _LOG.info("got SIGHUP; reloading the configuration")
        asyncio.get_running_loop().create_task(self.reload())

    async def _shutdown(self) -> None:
        self._notify.stopping()
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._settle_removed(self.scheduler.close(), final_for_current=True)
        await asyncio.sleep(0)
        if self.ssip is not None:
            await self.ssip.close()
        for front_end in self._front_ends:
            await front_end.close()
        if self._synthesis is not None:
            self._synthesis.close()
        conns = list(self._connections.values())
        if conns:
            await asyncio.gather(*(c.flush_and_close(SHUTDOWN_FLUSH_S) for c in conns))
        self._connections.clear()

    async def reload(self) -> bool:
        """Re-read the config file and load its voice off the loop, then swap it in.

        Clients stay connected; a bad config or voice is logged and the old one kept.
        """
        from autovoice.errors import AutoVoiceError

        assert self._reload_lock is not None
        async with self._reload_lock:
            self._notify.reloading("reloading the configuration")
            load = self.options.load_config
            try:
                config = load() if load is not None else self.config
                loop = asyncio.get_running_loop()
                synth = await loop.run_in_executor(None, Synthesizer.load, config)
            except AutoVoiceError as exc:
                _LOG.error("reload failed, keeping the old configuration: %s", exc)
                self._notify.ready(f"ready (reload failed: {exc}), {self._voice_line}")
                return False
            if config.daemon.socket != self.config.daemon.socket:
                _LOG.warning("reload: a new daemon.socket takes effect only on restart")
            self.config = config
            if self.player is not None:
                self.player.swap(config, synth)
            _LOG.info("configuration reloaded from %s", config.source)
            self._voice_line = f"voice {synth.voice.name} on {synth.engine_name}"
            self._notify.ready(f"ready, {self._voice_line}")
            return True

    # -- connections -------------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        sock = writer.get_extra_info("socket")
        pid, uid = 0, -1
        with contextlib.suppress(OSError, AttributeError):
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
        conn = Connection(self.new_connection_id(), writer, pid)
        if uid != os.getuid():
            _LOG.warning("refused a connection from uid %d (pid %d): not our user", uid, pid)
            reply_error(
                conn,
                p.RequestError(
                    p.ErrorCode.PERMISSION_DENIED,
                    f"this daemon serves uid {os.getuid()} only; your uid is {uid}",
                ),
            )
            await conn.flush_and_close(1.0)
            return
        if self._closing:
            reply_error(conn, p.RequestError(p.ErrorCode.SHUTTING_DOWN, "shutting down"))
            await conn.flush_and_close(0.2)
            return
        self._connections[conn.id] = conn
        try:
            await self._requests.read_loop(conn, reader)
        finally:
            self._connections.pop(conn.id, None)
            await conn.flush_and_close(1.0)
