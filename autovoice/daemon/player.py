"""The inference thread: takes utterances from the scheduler, synthesises them chunk by chunk and
writes the audio into the output's ring buffer, ahead of playback but never unboundedly.

One thread, "autovoice-player", uses the synthesizers and is the output's only writer. It asks
the scheduler for the next utterance, iterates the synthesizer's chunk generator and writes each
chunk (a blocking write: the ring holds at most `audio.lookahead_s` seconds, so a cancel wastes
little work and a 1 MB text keeps memory flat), checking the utterance's cancel event between
chunks. `interrupt` (from the event loop) aborts the output at once so a stop is heard within
one audio block; the thread then drops the rest of the utterance. Voices are loaded off this
thread (`autovoice.daemon.voices`): `prefetch` starts an utterance's load when it is accepted,
and the player waits only for what is left of it, and only while the utterance is not cancelled.

A per-client pause sets the current utterance's `hold_event`: `take_off` (or the thread itself)
reads where playback is and aborts the output, and the thread parks the utterance with the
scheduler, keeping its chunk generator and the pieces written since the start of the clause that
was playing. When the scheduler hands it out again, it is begun as a new output segment from that
clause on; its first audio then is reported as `Continued`, not as a second `first_audio`.
Events and their metrics go out through `autovoice.daemon.reporting`.

Thread: `run` is the player thread; `interrupt`, `take_off`, `pause`, `resume`, `swap`,
`prefetch`, `info` any.
RT-safe: no.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

from autovoice.audio_io import FirstAudio as AudioFirst
from autovoice.audio_io import UtterancePlayed
from autovoice.config import AppConfig
from autovoice.daemon.cache import PhraseCache
from autovoice.daemon.metrics import Metrics
from autovoice.daemon.playback import Continued, Playing
from autovoice.daemon.player_io import Output, OutputFactory, SpeakPayload
from autovoice.daemon.player_loop import PlayerLoop
from autovoice.daemon.reporting import Emit, Reporter, status_info
from autovoice.daemon.scheduler import Scheduler, Utterance
from autovoice.daemon.voices import Voices
from autovoice.engines import Synthesizer

# `Continued`, `Output` and `SpeakPayload` are re-exported: their homes are `playback` and
# `player_io`.
__all__ = ["Continued", "Output", "Player", "SpeakPayload"]

_LOG = logging.getLogger(__name__)

STALL_S = 30.0
"""An utterance's handling with no step done for this long means the player thread is hung
(`health`): the engine never returned, or a write into the ring never ended because the audio
callback stopped taking samples. Normal steps take at most a few seconds."""


class Player(PlayerLoop):
    """Owns the voices and the audio output; speaks what the scheduler hands out.

    Args:
        scheduler: Source of utterances.
        config: Effective configuration (voice, synthesis defaults, audio, cache).
        synth: The configured voice, loaded and warmed up.
        make_output: `make_output(config, input_rate_hz, on_event) -> Output` (not started).
        emit: `emit(utterance, event)`, called from this thread and the audio event thread to
            publish an utterance's events; the final one only after `utterance.settle()`.
        metrics: Where latencies and synthesis times are recorded.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        config: AppConfig,
        synth: Synthesizer,
        make_output: OutputFactory,
        emit: Emit,
        metrics: Metrics,
    ) -> None:
        self._scheduler = scheduler
        self._make_output = make_output
        self._report = Reporter(emit, metrics)
        self._metrics = metrics
        self._voices = Voices(config, synth, self._needed_voices)
        self.cache = PhraseCache(int(config.daemon.cache_mb * 1e6), config.daemon.cache_max_chars)
        self._lock = threading.Lock()
        self._aborted_at: dict[int, float] = {}  # uid -> monotonic time of its (first) abort
        self._current: Playing | None = None
        self._playing: dict[int, Playing] = {}  # output segment id -> its playback
        self._segment_ids = itertools.count(1)
        self._pending: tuple[AppConfig, Synthesizer] | None = None
        self._stopping = threading.Event()
        self._audio_config = config.audio
        self._output = make_output(config, synth.sample_rate, self._on_audio_event)
        self._thread = threading.Thread(target=self.run, name="autovoice-player", daemon=True)
        self._busy_since: float | None = None  # handling an utterance since (None: waiting)
        self._stepped_s = 0.0  # the last step of that handling (`_halted` runs at each)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the audio output and start the player thread.

        Raises:
            AudioDeviceError: the output cannot be opened.
        """
        self._output.start()
        self._voices.start()
        self._thread.start()

    def close(self, timeout_s: float = 0.3) -> None:
        """Stop the thread (after the chunk it is on), silence and close the output, release
        the synthesizers. A voice load under way is not waited for. Errors while closing are
        logged."""
        self._stopping.set()
        self._scheduler.poke()
        self._voices.stop()
        with self._lock:
            try:
                self._output.abort()
            except Exception as exc:
                _LOG.warning("audio abort on close failed: %s", exc)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            _LOG.warning("player thread still busy at shutdown; leaving it")
            return
        try:
            self._output.close()
        except Exception as exc:
            _LOG.warning("audio close failed: %s", exc)
        self._voices.close()

    # -- control (any thread) ----------------------------------------------------------------

    def interrupt(self, utt: Utterance) -> None:
        """Silence `utt` now if it is the one playing (its cancel event is already set)."""
        with self._lock:
            if self._current is not None and self._current.utt is utt:
                self._abort_locked(utt)

    def take_off(self, utt: Utterance) -> None:
        """Its client paused (`hold_event` is set): silence `utt` now if it is playing; the
        player thread then parks it where it can continue."""
        with self._lock:
            if self._current is not None and self._current.utt is utt:
                self._take_off_locked(self._current)

    def pause(self) -> None:
        """Hold playback where it is."""
        self._output.pause()

    def resume(self) -> None:
        """Continue playback."""
        self._output.resume()

    @property
    def voices(self) -> Voices:
        """The loaded voices (others borrow them with `Voices.acquire`)."""
        return self._voices

    def prefetch(self, utt: Utterance) -> None:
        """A request was just accepted: start loading its voice unless it is loaded, and start
        the audio output if it is idle (both overlap the work before its first chunk)."""
        self._output.wake()
        self._voices.want(getattr(utt.payload, "voice", None), utt.received_s)

    def swap(self, config: AppConfig, synth: Synthesizer) -> None:
        """Use a reloaded config and its freshly loaded voice from the next utterance on."""
        with self._lock:
            old = self._pending
            self._pending = (config, synth)
        self._scheduler.poke()  # the idle player thread applies it now
        if old is not None:
            old[1].close()

    def health(self) -> str | None:
        """None while the player thread runs and either waits for work or makes progress
        (a step within `STALL_S`); else what is wrong (the service watchdog stops pinging)."""
        if not self._thread.is_alive():
            return "the player thread has ended"
        if self._busy_since is not None and time.monotonic() - self._stepped_s > STALL_S:
            return f"the player thread is stuck (no progress for over {STALL_S:.0f} s)"
        return None

    def info(self) -> dict[str, Any]:
        """Engine, voice and audio output facts for `status`."""
        return status_info(self._voices.default, self._output.stats(), self._voices, self.cache)

    def _on_audio_event(self, event: Any) -> None:
        """`AudioOutput.on_event`, on the audio event thread."""
        playing = self._playing.get(event.utterance_id)
        if playing is None:
            return
        if isinstance(event, AudioFirst):
            self._report.first_audio(playing, event)
            playing.first.set()
        elif isinstance(event, UtterancePlayed):
            playing.aborted = event.aborted
            playing.played.set()

    # -- voices ------------------------------------------------------------------------------

    def _needed_voices(self) -> list[str | None]:
        """The `voice` of the current and every queued utterance (`Voices`' `needed`)."""
        return [getattr(u.payload, "voice", None) for u in self._scheduler.active()]
