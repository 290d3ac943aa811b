"""The daemon's loaded voices: an LRU of synthesizers, filled by one loader thread.

A voice that is not loaded starts loading as soon as a speak naming it is accepted (`want`), on
the thread "autovoice-voice-loader", one voice at a time, so the speech queued ahead keeps
playing. The player thread's `get` returns a loaded voice at once, or waits for what is left of
its load while polling the caller's cancel check, so a stop or shutdown never waits for a load.

A load that fails is remembered with the time it failed: requests received until then share
its error, and a later request tries again. At most `max_loaded` voices stay loaded; the LRU
one goes first, but never the configured voice, the voice in use, nor a voice a queued
utterance will need (`needed`). A load nobody needs any more when its turn comes is skipped.

Other threads borrow a voice with `acquire` / `release` (the synthesis pool's workers, which
make audio for clients that take it back): a voice lent out is never evicted, and one that a
reload replaces is closed only when its last borrower releases it.

Thread: `get` and `reset` the player thread; `want`, `loaded`, `loading`, `default`,
`acquire`, `release` any; the loader thread runs `_run`. RT-safe: no.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from autovoice.config import AppConfig
from autovoice.engines import Synthesizer
from autovoice.engines.voice import DEFAULT_VOICE, resolve_voice
from autovoice.errors import VoiceError

__all__ = ["MAX_LOADED_VOICES", "Voices"]

_LOG = logging.getLogger(__name__)

MAX_LOADED_VOICES = 3
"""Synthesizers kept loaded at once (the configured voice plus recently requested ones)."""
POLL_S = 0.02
"""How often a wait for a load re-checks its cancel condition."""
FAILURES_KEPT = 64
"""Failed loads remembered (the oldest is forgotten first)."""

Load = Callable[[AppConfig, str], Synthesizer]
"""`load(config, voice) -> Synthesizer`: loads and warms up a voice (`Synthesizer.load`)."""


def voice_key(config: AppConfig, voice: str | None, aliases: dict[str, str] | None = None) -> str:
    """The name a voice is loaded under: the request's `voice`, else the configured one; a
    name in `aliases` (see `voice_aliases`) is replaced by the name it stands for."""
    name = voice or config.voice
    return (aliases or {}).get(name, name)


def voice_aliases(config: AppConfig) -> dict[str, str]:
    """Other names of the configured voice and of the packaged default voice -> their name.

    A client may name the voice that is already loaded by its file name ("en_US-joe-medium",
    as SSIP's LIST SYNTHESIS_VOICES shows it) or by its path, while the config says
    "default": those must not load a second copy. Only these two voices get aliases, so no
    request makes the daemon search `voices_dir`.
    """
    aliases: dict[str, str] = {}
    for name in (DEFAULT_VOICE, config.voice):  # the configured voice's aliases win
        try:
            path = resolve_voice(name, config.voices_dir).expanduser()
        except VoiceError:
            continue
        for alias in (str(path), str(path.resolve()), path.name.removesuffix(".onnx")):
            aliases[alias] = name
        aliases.pop(name, None)  # a name is not an alias of itself
    return aliases


@dataclass(eq=False)
class _Load:
    """One attempt to load a voice.

    Attributes:
        key: The voice (see `voice_key`).
        generation: The `Voices` generation it belongs to (a reload starts a new one).
        done: Set when it ended (loaded, failed or skipped).
        error: Why it failed, if it did.
        failed_at_s: `time.monotonic()` when it failed.
    """

    key: str
    generation: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    failed_at_s: float = 0.0


class Voices:
    """Loaded synthesizers by voice, and the thread that loads more.

    Args:
        config: Configuration voices are loaded with.
        synth: The configured voice, loaded (never evicted).
        needed: `needed()` -> the `voice` of every queued or current utterance (None = the
            configured voice); called without this object's lock held.
        load: Loads a voice (default `Synthesizer.load`).
        max_loaded: How many voices stay loaded at most (more only while needed).
    """

    def __init__(
        self,
        config: AppConfig,
        synth: Synthesizer,
        needed: Callable[[], Iterable[str | None]],
        load: Load = Synthesizer.load,
        max_loaded: int = MAX_LOADED_VOICES,
    ) -> None:
        self._needed = needed
        self._load = load
        self._max_loaded = max_loaded
        self._lock = threading.Condition(threading.Lock())
        self._config = config
        self._aliases = voice_aliases(config)
        self._default_key = voice_key(config, None)
        self._synths: OrderedDict[str, Synthesizer] = OrderedDict({self._default_key: synth})
        self._in_use = self._default_key
        self._loads: dict[str, _Load] = {}  # key -> attempt queued or running
        self._queue: deque[_Load] = deque()
        self._failed: OrderedDict[str, _Load] = OrderedDict()
        self._generation = 0
        self._stopped = False
        self._lent: dict[int, tuple[Synthesizer, int]] = {}  # id(synth) -> (synth, borrowers)
        self._retired: set[int] = set()  # ids of lent synthesizers a reset or close dropped
        self._awaited: Counter[str] = Counter()  # keys borrowers wait for (never skipped)
        self._thread = threading.Thread(
            target=self._run, name="autovoice-voice-loader", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loader thread."""
        self._thread.start()

    def stop(self) -> None:
        """Load nothing more; a load under way is thrown away when it ends (not waited for)."""
        with self._lock:
            self._stopped = True
            for load in self._loads.values():
                load.done.set()
            self._loads.clear()
            self._queue.clear()
            self._lock.notify_all()

    def close(self) -> None:
        """`stop`, then release every loaded synthesizer. Errors while closing are logged."""
        self.stop()
        with self._lock:
            synths = self._retire(list(self._synths.values()))
            self._synths.clear()
        for synth in synths:
            _close(synth)

    # -- any thread --------------------------------------------------------------------------

    @property
    def default(self) -> Synthesizer | None:
        """The configured voice (None once closed)."""
        with self._lock:
            return self._synths.get(self._default_key)

    def loaded(self) -> list[str]:
        """Voices loaded, least recently used first."""
        with self._lock:
            return list(self._synths)

    def loading(self) -> list[str]:
        """Voices being loaded or waiting for the loader, in the order they will load."""
        with self._lock:
            return [load.key for load in self._queue_order()]

    def want(self, voice: str | None, since_s: float) -> None:
        """Start loading `voice` unless it is loaded, loading, or failed after `since_s`.

        Args:
            voice: A request's `voice` (None = the configured one).
            since_s: When the request was received (`time.monotonic()`).
        """
        with self._lock:
            key = voice_key(self._config, voice, self._aliases)
            if self._stopped or key in self._synths or key in self._loads:
                return
            if self._failure_since(key, since_s) is None:
                self._begin(key)

    # -- the player thread -------------------------------------------------------------------

    def get(
        self, voice: str | None, since_s: float, cancelled: Callable[[], bool]
    ) -> Synthesizer | None:
        """The synthesizer for `voice`, waiting for (or starting) its load if needed.

        Args:
            voice: The utterance's `voice` (None = the configured one).
            since_s: When its request was received: a load that failed since is tried again.
            cancelled: Polled every `POLL_S` while waiting; True gives up.

        Returns:
            The synthesizer (it stays loaded until the next `get`), or None if cancelled.

        Raises:
            VoiceError, EngineError, or whatever else the load raised: the voice failed to
                load (after `since_s`, or at the request's own attempt).

        Thread: the player thread.
        """
        synth = self._wait(voice, since_s, cancelled, borrow=False)
        if synth is not None:
            self._trim()
        return synth

    # -- other threads -----------------------------------------------------------------------

    def acquire(
        self, voice: str | None, since_s: float, cancelled: Callable[[], bool]
    ) -> Synthesizer | None:
        """Borrow the synthesizer for `voice` (loading it if needed), like `get` but for a
        thread other than the player's; it stays loaded until `release`.

        Returns:
            The synthesizer, or None if `cancelled()` or the voices are stopped.

        Raises:
            Whatever the voice's load raised (see `get`).

        Thread: any but the loader. Several threads may use one synthesizer at once (the
        onnx engine's sessions are thread-safe).
        """
        return self._wait(voice, since_s, cancelled, borrow=True)

    def try_acquire(self, voice: str | None) -> Synthesizer | None:
        """`acquire` without waiting: the synthesizer if `voice` is loaded, else None.

        Thread: any (the event loop's fast path).
        """
        with self._lock:
            synth = self._synths.get(voice_key(self._config, voice, self._aliases))
            if synth is None or self._stopped:
                return None
            _, count = self._lent.get(id(synth), (synth, 0))
            self._lent[id(synth)] = (synth, count + 1)
            return synth

    def release(self, synth: Synthesizer) -> None:
        """Give back a synthesizer from `acquire`; the last borrower of one that a reload
        replaced closes it. Thread: any."""
        with self._lock:
            held, count = self._lent.get(id(synth), (synth, 0))
            if count > 1:
                self._lent[id(synth)] = (held, count - 1)
                return
            self._lent.pop(id(synth), None)
            retired = id(synth) in self._retired
            self._retired.discard(id(synth))
        if retired:
            _close(synth)
        else:
            self._trim()

    def reset(self, config: AppConfig, synth: Synthesizer) -> None:
        """Switch to a reloaded config and its voice: every other voice is released, and the
        ones queued utterances need are loaded again with the new config.

        Thread: the player thread, between utterances.
        """
        wanted = list(self._needed())
        aliases = voice_aliases(config)
        with self._lock:
            self._generation += 1
            old = self._synths
            self._config = config
            self._aliases = aliases
            self._default_key = voice_key(config, None)
            self._synths = OrderedDict({self._default_key: synth})
            self._in_use = self._default_key
            for load in self._loads.values():
                load.done.set()
            self._loads.clear()
            self._queue.clear()
            self._failed.clear()
            closing = self._retire([s for s in old.values() if s is not synth])
            if not self._stopped:
                for key in dict.fromkeys(voice_key(config, v, aliases) for v in wanted):
                    if key != self._default_key:
                        self._begin(key)
        for s in closing:
            _close(s)

    # -- the loader thread -------------------------------------------------------------------

    def _run(self) -> None:
        """Loader thread body: load queued voices one at a time until stopped."""
        while True:
            with self._lock:
                while not self._queue and not self._stopped:
                    self._lock.wait()
                if self._stopped:
                    return
                load = self._queue.popleft()
                config, aliases = self._config, self._aliases
            needed = {voice_key(config, v, aliases) for v in self._needed()}
            with self._lock:
                needed.update(key for key, n in self._awaited.items() if n > 0)
            if load.key not in needed:
                self._finish(load, None, None, 0.0)  # nobody waits for it any more
                continue
            _LOG.info("loading voice %s", load.key)
            started = time.monotonic()
            synth: Synthesizer | None = None
            error: BaseException | None = None
            try:
                synth = self._load(config, load.key)
            except Exception as exc:  # handed to the utterances that asked for this voice
                error = exc
            self._finish(load, synth, error, time.monotonic() - started)

    def _finish(
        self, load: _Load, synth: Synthesizer | None, error: BaseException | None, took_s: float
    ) -> None:
        with self._lock:
            current = not self._stopped and load.generation == self._generation
            if current and self._loads.get(load.key) is load:
                del self._loads[load.key]
                if synth is not None:
                    self._synths[load.key] = synth
                elif error is not None:
                    load.error = error
                    load.failed_at_s = time.monotonic()
                    self._failed.pop(load.key, None)
                    self._failed[load.key] = load
                    while len(self._failed) > FAILURES_KEPT:
                        self._failed.popitem(last=False)
            else:
                current = False
            load.done.set()
        if synth is not None and not current:
            _close(synth)  # the config was reloaded or the daemon is stopping meanwhile
        elif error is not None:
            _LOG.warning("voice %s failed to load: %s", load.key, error)
        elif synth is not None:
            _LOG.info("voice %s loaded in %.2f s", load.key, took_s)
            self._trim(load.key)

    # -- internals ---------------------------------------------------------------------------

    def _wait(
        self, voice: str | None, since_s: float, cancelled: Callable[[], bool], borrow: bool
    ) -> Synthesizer | None:
        """`get`'s and `acquire`'s wait: the loaded synthesizer, after its load if needed."""
        awaited: str | None = None
        try:
            while True:
                with self._lock:
                    key = voice_key(self._config, voice, self._aliases)
                    if borrow and awaited != key:
                        self._forget_awaited(awaited)
                        awaited = key
                        self._awaited[key] += 1
                    synth = self._synths.get(key)
                    if synth is not None:
                        self._synths.move_to_end(key)
                        if borrow:
                            _, count = self._lent.get(id(synth), (synth, 0))
                            self._lent[id(synth)] = (synth, count + 1)
                        else:
                            self._in_use = key
                        return synth
                    load = self._loads.get(key)
                    if load is None:
                        error = self._failure_since(key, since_s)
                        if error is not None:
                            raise error
                        if self._stopped:
                            return None
                        load = self._begin(key)
                    elif load in self._queue:  # someone waits for it now: load it next
                        self._queue.remove(load)
                        self._queue.appendleft(load)
                while not load.done.wait(POLL_S):
                    if cancelled():
                        return None
                if cancelled():
                    return None
        finally:
            if awaited is not None:
                with self._lock:
                    self._forget_awaited(awaited)

    def _forget_awaited(self, key: str | None) -> None:
        """One borrower less waits for `key` (lock held)."""
        if key is not None:
            self._awaited[key] -= 1
            if self._awaited[key] <= 0:
                del self._awaited[key]

    def _retire(self, synths: list[Synthesizer]) -> list[Synthesizer]:
        """The ones of `synths` to close now; lent ones are closed by their last `release`
        (lock held)."""
        now = []
        for synth in synths:
            if id(synth) in self._lent:
                self._retired.add(id(synth))
            else:
                now.append(synth)
        return now

    def _begin(self, key: str) -> _Load:
        """Queue a load of `key` (lock held)."""
        load = _Load(key, self._generation)
        self._loads[key] = load
        self._queue.append(load)
        self._lock.notify_all()
        return load

    def _failure_since(self, key: str, since_s: float) -> BaseException | None:
        """The error of `key`'s last load if it failed at or after `since_s` (lock held)."""
        failed = self._failed.get(key)
        if failed is None or since_s > failed.failed_at_s:
            return None
        return failed.error

    def _queue_order(self) -> list[_Load]:
        """The load under way (if any) then the queued ones (lock held)."""
        queued = set(self._queue)
        running = [load for load in self._loads.values() if load not in queued]
        return running + list(self._queue)

    def _trim(self, fresh: str | None = None) -> None:
        """Release least recently used voices beyond `max_loaded` that nobody needs (nor
        `fresh`, the voice just loaded)."""
        with self._lock:
            if len(self._synths) <= self._max_loaded:
                return
            config, aliases = self._config, self._aliases
        keep = {voice_key(config, v, aliases) for v in self._needed()}
        evicted: list[Synthesizer] = []
        with self._lock:
            keep |= {self._default_key, self._in_use, fresh}
            for key in list(self._synths):
                if len(self._synths) <= self._max_loaded:
                    break
                if key not in keep and id(self._synths[key]) not in self._lent:
                    evicted.append(self._synths.pop(key))
                    _LOG.info("unloading voice %s", key)
        for synth in evicted:
            _close(synth)


def _close(synth: Synthesizer) -> None:
    try:
        synth.close()
    except Exception as exc:
        _LOG.warning("closing voice failed: %s", exc)
