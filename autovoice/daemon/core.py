"""The daemon core's API, as the protocol front-ends (native, SSIP, Wyoming) see it.

Front-ends depend on this module, never on `autovoice.daemon.server` (which starts them), so each
can be read and changed alone and no import circle forms. `autovoice.daemon.server.Daemon`
implements `DaemonCore`.

Thread: the event loop (every member). RT-safe: no.
"""

from __future__ import annotations

from typing import Any, Protocol

from autovoice.config import AppConfig
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.player import Player
from autovoice.daemon.scheduler import Cancellation, Scheduler, Utterance
from autovoice.daemon.synthesis_pool import SynthesisPool
from autovoice.engines.voice_registry import VoiceRegistry

__all__ = ["DaemonCore"]


class DaemonCore(Protocol):
    """What a protocol front-end may use of the running daemon.

    Attributes:
        config: The effective configuration (replaced on reload; read it when needed).
        scheduler: The queue of utterances (stop, cancel, pause and their priorities).
        player: The player thread's handle (None before start-up finishes).
        metrics: Counters and latency percentiles.
    """

    config: AppConfig
    scheduler: Scheduler
    player: Player | None
    metrics: Metrics

    @property
    def closing(self) -> bool:
        """True once shutdown has begun (new work is refused)."""
        ...

    @property
    def synthesis(self) -> SynthesisPool:
        """The worker pool for clients that take the audio back (Wyoming): their requests are
        synthesised there, concurrently, apart from the speakers' queue."""
        ...

    def new_connection_id(self) -> int:
        """A fresh client id, shared by every front-end's connections."""
        ...

    def submit(self, utt: Utterance) -> Cancellation:
        """Queue an accepted utterance; see `autovoice.daemon.server.Daemon.submit`.

        Raises:
            OverflowError: the queue is full.
            RuntimeError: the scheduler is closed (shutting down).
        """
        ...

    def apply(self, cancellation: Cancellation) -> list[int]:
        """Silence an interrupted utterance and send the final events of removed ones."""
        ...

    def pause_client(self, client_id: int) -> Utterance | None:
        """Hold one client's utterances; its current one, if any, is taken off and returned."""
        ...

    def dispatch(self, utt: Utterance, event: Any) -> None:
        """Send an utterance event to its listener, its native owner and the subscribers."""
        ...

    def status(self) -> dict[str, Any]:
        """Everything `status` reports (see docs/PROTOCOL.md)."""
        ...

    def voices(self) -> list[dict[str, Any]]:
        """The voices this config can use, as JSON-ready dicts (the daemon's voice first)."""
        ...

    def voice_registry(self) -> VoiceRegistry:
        """The voices this config can use (`VoiceRegistry.voices()` -> `VoiceInfo`s, `find`),
        current: voices installed or removed while the daemon runs show at once."""
        ...
