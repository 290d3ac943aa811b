"""The daemon core's API as the protocol front-ends use it (`autovoice.daemon.core.DaemonCore`):
queueing and cancelling utterances, sending their events to their clients, and what `status` and
`voices` report. `Daemon` (`autovoice.daemon.server`) builds the state used here, inherits this
and adds the lifecycle and the accepting of connections.
Events from the player and audio threads reach the loop through `call_soon_threadsafe`.

Thread: the event loop, except `_emit_threadsafe` (any). RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from typing import Any

from autovoice.config import AppConfig
from autovoice.daemon import protocol as p
from autovoice.daemon.connection import server_version
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.notify import Notifier
from autovoice.daemon.outbox import Connection
from autovoice.daemon.player import Player
from autovoice.daemon.scheduler import Cancellation, Scheduler, Utterance
from autovoice.daemon.serve_options import ServeOptions
from autovoice.daemon.synthesis_pool import SynthesisPool
from autovoice.engines.voice import resolve_voice, voices_dir_path
from autovoice.engines.voice_registry import VoiceRegistry
from autovoice.errors import VoiceError

__all__ = ["CoreApi"]


class CoreApi:
    """What front-ends call on the daemon; `Daemon` sets the state below in its constructor."""

    config: AppConfig
    options: ServeOptions
    scheduler: Scheduler
    metrics: Metrics
    player: Player | None
    _connections: dict[int, Connection]
    _ids: itertools.count[int]
    _loop: asyncio.AbstractEventLoop | None
    _closing: bool
    _notify: Notifier
    _voice_line: str
    _synthesis: SynthesisPool | None
    _registry: VoiceRegistry

    @property
    def closing(self) -> bool:
        """True once shutdown has begun (new work is refused)."""
        return self._closing

    @property
    def synthesis(self) -> SynthesisPool:
        """The worker pool that synthesises for clients taking the audio back (made on first
        use, `daemon.synthesis_workers` threads; apart from the speakers' player thread).

        Raises:
            RuntimeError: the daemon has no voices yet (not started).
        """
        if self._synthesis is None:
            if self.player is None:
                raise RuntimeError("the daemon is not started")
            workers = self.config.daemon.synthesis_workers
            self._synthesis = SynthesisPool(self.player.voices, workers=workers)
        return self._synthesis

    def new_connection_id(self) -> int:
        """A fresh client id, shared by native and SSIP connections."""
        return next(self._ids)

    def submit(self, utt: Utterance) -> Cancellation:
        """Queue an accepted utterance (the priority rules apply) and, unless it was dropped on
        arrival, start loading its voice if that is not loaded, so the speech ahead of it keeps
        playing meanwhile.

        Returns:
            What its arrival cancelled (pass it to `apply` after sending `queued`).

        Raises:
            OverflowError: the queue is full.
            RuntimeError: the scheduler is closed (shutting down).

        Thread: event loop (also used by the SSIP listener).
        """
        decision = self.scheduler.submit(utt)
        self.metrics.count("accepted")
        if self.player is not None and not utt.cancel_event.is_set():
            self.player.prefetch(utt)
        return decision

    def pause_client(self, client_id: int) -> Utterance | None:
        """Hold one client's utterances (SSIP `PAUSE <client>`); its current one, if any, is
        taken off the output at once and returned.

        Thread: event loop.
        """
        utt = self.scheduler.pause_client(client_id)
        if utt is not None and self.player is not None:
            self.player.take_off(utt)
        return utt

    def apply(self, cancellation: Cancellation) -> list[int]:
        """Silence an interrupted utterance and send the final events of removed ones.

        Thread: event loop (also used by the SSIP listener).
        """
        if cancellation.interrupted is not None and self.player is not None:
            self.player.interrupt(cancellation.interrupted)
        self._settle_removed(cancellation)
        return [u.uid for u in cancellation.all]

    def _settle_removed(self, cancellation: Cancellation, final_for_current: bool = False) -> None:
        targets = list(cancellation.removed)
        if final_for_current and cancellation.interrupted is not None:
            targets.insert(0, cancellation.interrupted)
        for utt in targets:
            if utt.settle():
                self.metrics.count("cancelled")
                reason = utt.cancel_reason.value if utt.cancel_reason else "cancel"
                self.dispatch(utt, p.Cancelled(utterance=utt.uid, id=utt.request_id, reason=reason))

    # -- events ------------------------------------------------------------------------------

    def _emit_threadsafe(self, utt: Utterance, event: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.dispatch, utt, event)

    def dispatch(self, utt: Utterance, event: Any) -> None:
        """Send an utterance event to its listener (SSIP) and its subscribers. Internal events
        (`playback.Continued`) go to the listener only. Thread: loop."""
        listener = getattr(utt.payload, "listener", None)  # SSIP's messages
        if listener is not None:
            listener(utt, event)
        if self._notify.enabled:
            self._notify_state(utt, event)
        if not isinstance(event, p.Event):
            return
        data = p.encode_event(event.to_event())
        owner = self._connections.get(utt.client_id)
        if owner is not None:
            owner.send(data)
        for conn in list(self._connections.values()):
            if conn.subscribed and conn is not owner:
                conn.send(data)

    def _notify_state(self, utt: Utterance, event: Any) -> None:
        """Keep the service manager's status line at idle / speaking / paused."""
        cur = self.scheduler.current
        ending = isinstance(event, (p.Done, p.Cancelled, p.Error)) and utt is cur
        busy = (cur is not None and not ending) or self.scheduler.queue_depth() > 0
        state = "paused" if self.scheduler.paused else ("speaking" if busy else "idle")
        self._notify.status(f"{state}, {self._voice_line}")

    # -- information -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything `status` reports (see docs/PROTOCOL.md)."""
        info = self.player.info() if self.player else {}
        cur = self.scheduler.current
        state = "paused" if self.scheduler.paused else ("speaking" if cur else "idle")
        out: dict[str, Any] = {
            "version": server_version(),
            "protocol": p.PROTOCOL_VERSION,
            "pid": os.getpid(),
            "socket": str(self.options.socket_path),
            "state": state,
            "current": cur.uid if cur else None,
            "queue_depth": self.scheduler.queue_depth(),
            "clients": len(self._connections),
            "config_source": self.config.source,
        }
        out.update(info)
        if self._synthesis is not None:
            out["synthesis"] = self._synthesis.stats()
        out.update(self.metrics.snapshot())
        return out

    def voice_registry(self) -> VoiceRegistry:
        """The voices the current config can use (`VoiceRegistry.voices`, `find`), rescanned
        when the voices directory changes, so voices installed while the daemon runs are
        listed and found at once (native `voices`, SSIP, Wyoming `info`)."""
        if self._registry.directory != voices_dir_path(self.config.voices_dir):
            self._registry = VoiceRegistry(self.config.voices_dir)  # a reload moved voices_dir
        return self._registry

    def _configured_voice(self) -> str | None:
        """The name of the configured voice (before it is loaded), None if it cannot be found."""
        try:
            return resolve_voice(self.config.voice, self.config.voices_dir).name.removesuffix(
                ".onnx"
            )
        except VoiceError:
            return None

    def voices(self) -> list[dict[str, Any]]:
        """The voices this config can use, as JSON-ready dicts (the daemon's voice first)."""
        current = self.player.info().get("voice") if self.player else self._configured_voice()
        found = []
        for v in self.voice_registry().voices():
            found.append(
                {
                    "name": v.name,
                    "language": v.language,
                    "sample_rate_hz": v.sample_rate,
                    "num_speakers": v.num_speakers,
                    "speakers": sorted(v.speaker_id_map, key=v.speaker_id_map.get)
                    if v.speaker_id_map
                    else [],
                    "quality": v.quality,
                    "path": str(v.model_path),
                    "active": v.name == current,
                }
            )
        found.sort(key=lambda d: not d["active"])
        return found
