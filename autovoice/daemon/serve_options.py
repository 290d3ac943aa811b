"""How `autovoice serve` was asked to run (`ServeOptions`): sockets, reload, readiness,
service manager and the extra protocol front-ends.

Thread: any (an immutable dataclass). RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autovoice.config import AppConfig
from autovoice.daemon.core import DaemonCore
from autovoice.daemon.notify import Notifier

__all__ = ["ServeOptions"]


@dataclass(frozen=True)
class ServeOptions:
    """How `autovoice serve` was asked to run.

    Attributes:
        socket_path: Where to listen.
        private_dir: Whether the socket's directory is the per-user default (forced to 0700).
        load_config: Re-reads the configuration on SIGHUP (file plus command-line options);
            None keeps the configuration the daemon started with.
        ready_stream: Where the one `ready` line is printed (None: stderr).
        ssip_path: Also listen for Speech Dispatcher's protocol here (None: no SSIP, unless
            the service manager passed an `ssip` socket).
        inherited: Listening sockets passed by the service manager, by name (`listeners`);
            used instead of binding `socket_path` / `ssip_path`.
        notifier: Tells the service manager about readiness, reloads and shutdown.
        front_ends: More protocol front-ends: `make(daemon)` -> an object with `async start()`
            (raises AutoVoiceError when it cannot listen), `async ready()` and `async close()`;
            started before the voice loads (what needs no voice may be answered meanwhile:
            `voices()`), awaited `ready()` once it is loaded (`player` set, `synthesis` usable;
            before the `ready` line), closed at shutdown. They use the daemon's core API
            (`DaemonCore`).
    """

    socket_path: Path
    private_dir: bool = False
    load_config: Callable[[], AppConfig] | None = None
    ready_stream: Any = None
    ssip_path: Path | None = None
    inherited: dict[str, Any] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=Notifier)
    front_ends: tuple[Callable[[DaemonCore], Any], ...] = ()
