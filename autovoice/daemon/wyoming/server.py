"""The Wyoming front-end: Home Assistant's TTS protocol on `tcp://HOST:PORT` or `unix://PATH`,
beside the native socket and SSIP, over the same daemon core.

It uses the daemon's public API only: `voices()` for `info`, `synthesis` (the worker pool
that makes audio for clients that take it back), `closing`, `config`. Listening is the
`wyoming` library's server (`AsyncServer.from_uri`); each connection is a `WyomingHandler`.
With `zeroconf`, a TCP server is announced as `_wyoming._tcp` so Home Assistant finds it.

Thread: event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wyoming.event import Event
from wyoming.server import AsyncServer, AsyncTcpServer, AsyncUnixServer

from autovoice.daemon.core import DaemonCore
from autovoice.daemon.synthesis_pool import SynthesisPool
from autovoice.daemon.wyoming.handler import WyomingHandler
from autovoice.daemon.wyoming.info import build_info, voice_for_language
from autovoice.daemon.wyoming.request import VoiceChoice
from autovoice.daemon.wyoming.wire import ErrorCode, RequestRefused
from autovoice.errors import AutoVoiceError

__all__ = ["DEFAULT_PORT", "WyomingOptions", "WyomingServer", "parse_uri"]

_LOG = logging.getLogger(__name__)

DEFAULT_PORT = 10200
"""Home Assistant's convention for a Wyoming TTS server."""
VOICES_TTL_S = 5.0
"""How long the voice list is reused before `describe` reads the voices again."""


@dataclass(frozen=True)
class WyomingOptions:
    """How the Wyoming front-end runs.

    Attributes:
        uri: `tcp://HOST:PORT` or `unix://PATH`.
        zeroconf: Announce a TCP server as `_wyoming._tcp` (needs the zeroconf package).
        zeroconf_name: The announced name (None: "autovoice-" + host name).
    """

    uri: str
    zeroconf: bool = False
    zeroconf_name: str | None = None


def parse_uri(uri: str) -> tuple[str, str, int]:
    """Check a Wyoming URI: ("tcp", host, port) or ("unix", path, 0).

    Raises:
        ValueError: not tcp://HOST:PORT or unix://PATH (the message says which are accepted).
    """
    parsed = urlparse(uri)
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError as exc:
            raise ValueError(f"{uri!r}: bad port ({exc})") from exc
        if not parsed.hostname or port is None:
            raise ValueError(f"{uri!r}: give host and port, e.g. tcp://0.0.0.0:{DEFAULT_PORT}")
        return "tcp", parsed.hostname, port
    if parsed.scheme == "unix":
        path = parsed.path or parsed.netloc
        if not path:
            raise ValueError(f"{uri!r}: give a path, e.g. unix:///run/autovoice/wyoming.sock")
        return "unix", path, 0
    raise ValueError(f"{uri!r}: accepted are tcp://HOST:PORT and unix://PATH")


class WyomingServer:
    """The Wyoming front-end of one daemon (see module docstring).

    Args:
        daemon: The daemon core.
        options: Where to listen and whether to announce.
    """

    def __init__(self, daemon: DaemonCore, options: WyomingOptions) -> None:
        self._daemon = daemon
        self.options = options
        self._server: AsyncServer | None = None
        self._announcement: Any = None
        self._voices: list[dict[str, Any]] = []
        self._voices_at_s = -VOICES_TTL_S
        self._voices_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (and announce). Raises AutoVoiceError if the address cannot be used."""
        uri = self.options.uri
        try:
            kind, where, port = parse_uri(uri)
        except ValueError as exc:
            raise AutoVoiceError(f"--wyoming: {exc}") from exc
        self._voices_lock = asyncio.Lock()
        await self._refresh_voices()
        if kind == "unix":
            _check_unix_path(Path(where))
            server: AsyncServer = AsyncUnixServer(where)
        else:
            server = AsyncTcpServer(where, port)
        old_umask = os.umask(0o177) if kind == "unix" else None
        try:
            await server.start(lambda r, w: WyomingHandler(r, w, self))
        except OSError as exc:
            raise AutoVoiceError(f"--wyoming {uri}: cannot listen: {exc.strerror or exc}") from exc
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        self._server = server
        _LOG.info("wyoming: listening on %s", uri)
        if self.options.zeroconf:
            if kind != "tcp":
                _LOG.warning("wyoming: zeroconf announces TCP servers only; not announcing %s", uri)
            else:
                from autovoice.daemon.wyoming.zeroconf import Announcement

                self._announcement = Announcement(
                    port, self.options.zeroconf_name or _default_name(), host=where
                )
                await self._announcement.start()

    async def close(self) -> None:
        """Stop announcing and listening; open connections end (their work is cancelled)."""
        if self._announcement is not None:
            with contextlib.suppress(Exception):
                await self._announcement.close()
            self._announcement = None
        if self._server is not None:
            server, self._server = self._server, None
            with contextlib.suppress(Exception):
                await server.stop()

    # -- what handlers use -----------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the daemon shuts down."""
        return bool(self._daemon.closing)

    @property
    def pool(self) -> SynthesisPool:
        """The daemon's synthesis pool."""
        return self._daemon.synthesis

    @property
    def max_text_bytes(self) -> int:
        """Most text in one request (`daemon.max_text_bytes`)."""
        return int(self._daemon.config.daemon.max_text_bytes)

    async def info_event(self) -> Event:
        """The `info` event: every voice the daemon can use. Answered from the voice list at
        hand (Home Assistant gives up on a slow `describe`); a stale list is read again in the
        background for the next one."""
        if not self._voices:
            await self._refresh_voices(force=True)
        else:
            self._refresh_later()
        return build_info(self._voices).event()

    async def voice_name(self, choice: VoiceChoice) -> str | None:
        """The voice to load for `choice` (None: the daemon's own voice).

        Only voices that `info` lists may be named: a client on the network never makes the
        daemon open a path of its choosing.

        Raises:
            RequestRefused: no such voice, or no voice for the language.
        """
        if choice.name is None and choice.language is None:
            return None
        self._refresh_later()
        if choice.name is not None:
            if choice.name not in {v["name"] for v in self._voices}:
                await self._refresh_voices(force=True)
            if choice.name not in {v["name"] for v in self._voices}:
                raise RequestRefused(
                    ErrorCode.UNKNOWN_VOICE, f"no voice {choice.name!r} (describe lists them)"
                )
            return self._key(choice.name)
        name = voice_for_language(self._voices, choice.language or "")
        if name is None:
            raise RequestRefused(ErrorCode.UNKNOWN_VOICE, f"no voice for {choice.language!r}")
        return self._key(name)

    def _key(self, name: str) -> str | None:
        """The daemon's own voice as None (it is loaded already), others by name."""
        active = next((v["name"] for v in self._voices if v.get("active")), None)
        return None if name == active else name

    def _refresh_later(self) -> None:
        """Read the voices again in the background if the list is stale (a request never
        waits for that unless it names a voice the list lacks)."""
        stale = time.monotonic() - self._voices_at_s >= VOICES_TTL_S
        if stale and self._voices_lock is not None and not self._voices_lock.locked():
            task = asyncio.get_running_loop().create_task(self._refresh_voices())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refresh_voices(self, force: bool = False) -> None:
        """Read the voices again (off the loop) when the list is older than `VOICES_TTL_S`."""
        assert self._voices_lock is not None
        async with self._voices_lock:
            if not force and time.monotonic() - self._voices_at_s < VOICES_TTL_S:
                return
            loop = asyncio.get_running_loop()
            self._voices = await loop.run_in_executor(None, self._daemon.voices)
            self._voices_at_s = time.monotonic()


def _check_unix_path(path: Path) -> None:
    """Refuse a Unix socket path another server listens on; remove a stale one.

    Raises:
        AutoVoiceError: something answers there, or the path is not a socket.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not path.is_socket():
        raise AutoVoiceError(f"--wyoming unix://{path}: exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # stale: nobody listens
        return
    finally:
        probe.close()
    raise AutoVoiceError(f"--wyoming unix://{path}: another server listens there")


def _default_name() -> str:
    return f"autovoice-{socket.gethostname()}"
