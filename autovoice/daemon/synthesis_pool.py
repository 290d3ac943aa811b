"""Synthesis for clients that take the audio back: a small pool of worker threads, apart from
the player thread and the speakers' queue.

A `SynthesisJob` is one client request: text pieces go in (all at once for a whole text, one by
one for a stream whose text is still arriving), audio comes out through the job's `deliver`
callback, in order. Workers run jobs a chunk at a time: after each chunk a worker moves on to
another ready job if there is one (a job that has not made audio yet goes first), so one long
text does not hold up another client's first audio, and a job keeps no worker while it waits
for more text or while its client has not taken its audio (`max_ahead_s`). A job's chunk
generator is suspended between turns and picked up by whichever worker comes next; one worker
at a time runs a job.

Several workers may use one synthesizer at once: the onnx engine's sessions are safe to run
from several threads (engines that are not serialise themselves, `Synthesizer`).

Thread: `open`, `SynthesisJob.feed`, `finish`, `cancel`, `consumed` any thread (the event
loop); `deliver` is called on a worker thread "autovoice-synth-N". RT-safe: no.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from autovoice.daemon.voices import Voices
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.engines.base import AudioChunk

__all__ = [
    "DEFAULT_WORKERS",
    "JobAudio",
    "JobEnded",
    "SynthesisJob",
    "SynthesisPool",
]

_LOG = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
"""Worker threads (overlapping requests are synthesised concurrently up to this many)."""
MAX_AHEAD_S = 10.0
"""Seconds of audio a job may make ahead of what its client has taken."""


@dataclass(frozen=True)
class JobAudio:
    """A chunk of a job's audio, in order.

    Attributes:
        samples: Mono float32 PCM at `sample_rate`.
        sample_rate: The voice's rate in Hz.
        made_at_s: `time.monotonic()` when it was made.
    """

    samples: np.ndarray
    sample_rate: int
    made_at_s: float


@dataclass(frozen=True)
class JobEnded:
    """A job's last item: all its text was spoken, or it failed, or it was cancelled.

    Attributes:
        error: Why it failed (None: it ended normally or was cancelled).
        cancelled: True when `cancel` ended it.
    """

    error: BaseException | None = None
    cancelled: bool = False


Deliver = Callable[[JobAudio | JobEnded], None]
"""`deliver(item)`: called on a worker thread with each audio chunk, then one `JobEnded`."""


class _State(enum.Enum):
    IDLE = "idle"  # waits for text
    READY = "ready"  # in the pool's ready queue
    RUNNING = "running"  # a worker runs it
    PARKED = "parked"  # its client has not taken enough of its audio
    DONE = "done"


class SynthesisJob:
    """One request's synthesis in the pool (made by `SynthesisPool.open`).

    Args:
        pool: The pool that runs it.
        synth: The voice, borrowed from `Voices.acquire` (the job releases it when it ends).
        options: Synthesis options of the request.
        deliver: Receives the audio and the end (worker thread).
    """

    def __init__(
        self, pool: SynthesisPool, synth: Synthesizer, options: SpeakOptions, deliver: Deliver
    ) -> None:
        self._pool = pool
        self.synth = synth
        self.options = options
        self._deliver = deliver
        self._pieces: deque[str] = deque()
        self._finished = False
        self._cancelled = threading.Event()
        self._state = _State.IDLE
        self._chunks: Iterator[AudioChunk] | None = None
        self._ahead_samples = 0
        self._made_audio = False

    @property
    def sample_rate(self) -> int:
        """The rate of the job's audio in Hz."""
        return self.synth.sample_rate

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called."""
        return self._cancelled.is_set()

    def feed(self, text: str) -> None:
        """Add a piece of text to speak after the ones before it (ignored once finished)."""
        if not text.strip():
            return
        with self._pool._cv:
            if self._finished or self.cancelled:
                return
            self._pieces.append(text)
            self._pool._wake(self)

    def finish(self) -> None:
        """No more text: the job ends (`JobEnded`) after the pieces fed so far."""
        with self._pool._cv:
            self._finished = True
            self._pool._wake(self)

    def cancel(self) -> None:
        """Stop now: the chunk being made is the last; then `JobEnded(cancelled=True)`."""
        with self._pool._cv:
            self._cancelled.set()
            self._pool._wake(self)

    def consumed(self, samples: int) -> None:
        """The client took `samples` more of the audio (lets a parked job go on)."""
        with self._pool._cv:
            self._ahead_samples -= samples
            self._pool._wake(self)

    # -- pool internals (lock held unless said) ----------------------------------------------

    def _runnable(self) -> bool:
        if self.cancelled:
            return True
        if self._ahead_samples > self._pool.max_ahead_s * self.sample_rate:
            return False
        return self._chunks is not None or bool(self._pieces) or self._finished

    def _next_piece(self) -> str | None:
        return self._pieces.popleft() if self._pieces else None


class SynthesisPool:
    """Worker threads that run `SynthesisJob`s concurrently (see module docstring).

    Args:
        voices: Where jobs borrow their voices (`Voices.acquire` / `release`).
        workers: Number of worker threads.
        max_ahead_s: Audio a job may make ahead of its client, in seconds.
    """

    def __init__(
        self, voices: Voices, workers: int = DEFAULT_WORKERS, max_ahead_s: float = MAX_AHEAD_S
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.voices = voices
        self.max_ahead_s = max_ahead_s
        self._cv = threading.Condition(threading.Lock())
        self._ready: deque[SynthesisJob] = deque()
        self._closed = False
        self._jobs: set[SynthesisJob] = set()
        self._threads = [
            threading.Thread(target=self._work, name=f"autovoice-synth-{i + 1}", daemon=True)
            for i in range(workers)
        ]
        self._started = False
        self.running_jobs = 0
        """Jobs a worker is making audio for right now (for status and tests)."""

    def start(self) -> None:
        """Start the worker threads (once)."""
        with self._cv:
            if self._started:
                return
            self._started = True
        for thread in self._threads:
            thread.start()

    def close(self, timeout_s: float = 0.5) -> None:
        """Cancel every job and stop the workers (each after the chunk it is on)."""
        with self._cv:
            self._closed = True
            self._ready.clear()
            jobs = [job for job in self._jobs if job._state is not _State.RUNNING]
            self._cv.notify_all()
        for job in jobs:  # running ones are ended by their worker
            job._cancelled.set()
            self._end(job, JobEnded(cancelled=True))
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout_s)

    def stats(self) -> dict[str, int]:
        """Workers, open jobs and jobs making audio right now (for `status`)."""
        with self._cv:
            return {
                "workers": len(self._threads),
                "jobs": len(self._jobs),
                "running": self.running_jobs,
            }

    def acquire(
        self, voice: str | None, since_s: float, cancelled: Callable[[], bool]
    ) -> Synthesizer | None:
        """Borrow a voice for a job (blocks while it loads; call it off the event loop).

        Raises:
            VoiceError, EngineError: the voice cannot be loaded.
        """
        return self.voices.acquire(voice, since_s, lambda: cancelled() or self._closed)

    def try_acquire(self, voice: str | None) -> Synthesizer | None:
        """Borrow a voice that is loaded already, without blocking (else None)."""
        if self._closed:
            return None
        return self.voices.try_acquire(voice)

    def open(self, synth: Synthesizer, options: SpeakOptions, deliver: Deliver) -> SynthesisJob:
        """A new job speaking with `synth` (from `acquire`; the job gives it back).

        Raises:
            RuntimeError: the pool is closed (the voice is given back first).
        """
        if self._closed:
            self.voices.release(synth)
            raise RuntimeError("the synthesis pool is closed")
        self.start()
        job = SynthesisJob(self, synth, options, deliver)
        with self._cv:
            self._jobs.add(job)
        return job

    # -- internals ---------------------------------------------------------------------------

    def _wake(self, job: SynthesisJob) -> None:
        """Queue `job` if it is waiting and has something to do (lock held)."""
        if self._closed:
            return
        if job._state in (_State.IDLE, _State.PARKED) and job._runnable():
            job._state = _State.READY
            if job._made_audio:
                self._ready.append(job)
            else:
                self._ready.appendleft(job)  # first audio goes first
            self._cv.notify()

    def _work(self) -> None:
        """Worker thread body."""
        while True:
            with self._cv:
                while not self._ready and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                job = self._ready.popleft()
                job._state = _State.RUNNING
                self.running_jobs += 1
            try:
                ended = self._run_turn(job)
            except Exception as exc:  # never let one job kill a worker
                _LOG.exception("synthesis job failed")
                ended = JobEnded(error=exc)
            with self._cv:
                self.running_jobs -= 1
                if ended is None:
                    # waits for text or for its client; or goes to the back of the queue
                    job._state = _State.PARKED if job._chunks is not None else _State.IDLE
                    self._wake(job)
                    if self._closed and job._state is not _State.READY:
                        ended = JobEnded(cancelled=True)
            if ended is not None:
                self._end(job, ended)

    def _run_turn(self, job: SynthesisJob) -> JobEnded | None:
        """Make chunks of `job` until it must wait, another job is ready, or it ends.

        Returns:
            How it ended, or None if it goes on later.
        """
        while True:
            if job.cancelled or self._closed:
                return JobEnded(cancelled=True)
            if job._chunks is None:
                with self._cv:
                    piece = job._next_piece()
                    finished = job._finished
                if piece is None:
                    return JobEnded() if finished else None
                job._chunks = job.synth.speak(piece, job.options)
            try:
                chunk = next(job._chunks)
            except StopIteration:
                job._chunks = None
                continue
            except Exception as exc:  # a bad speaker, an engine failure: the job fails
                job._chunks = None
                return JobEnded(error=exc)
            if job.cancelled:
                return JobEnded(cancelled=True)
            with self._cv:
                job._ahead_samples += len(chunk.samples)
                job._made_audio = True
            job._deliver(JobAudio(chunk.samples, chunk.sample_rate, time.monotonic()))
            with self._cv:
                if self._ready or not job._runnable():
                    return None

    def _end(self, job: SynthesisJob, ended: JobEnded) -> None:
        """Close `job`'s generator, give back its voice, deliver `ended` (no lock held)."""
        with self._cv:
            if job._state is _State.DONE:
                return
            job._state = _State.DONE
            self._jobs.discard(job)
            chunks, job._chunks = job._chunks, None
            job._pieces.clear()
        if chunks is not None:
            try:
                chunks.close()
            except Exception as exc:
                _LOG.warning("closing a synthesis generator failed: %s", exc)
        self.voices.release(job.synth)
        try:
            job._deliver(ended)
        except Exception:
            _LOG.exception("delivering the end of a synthesis job failed")
