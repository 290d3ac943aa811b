"""End-to-end figures through the real daemon: heard latency, stop, underruns, start-up, memory.

The daemon runs as a subprocess on a temporary socket with real PortAudio; the benchmark talks
to it with the real client. Times are on the monotonic clock, which the two processes share.
When the daemon plays into the benchmark's own virtual device (`heard.HeardDevice`), every
figure is taken where a listener hears it: the first audible sample (|x| > 1e-3) and the last
one as they reach the device. The daemon's own `first_audio` moment (its callback handing that
sample to PortAudio) gives the breakdown.

Thread: main (plus one speaker thread per request). RT-safe: no.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autovoice.bench.heard import HeardCapture, Onset
from autovoice.bench.sentences import length_class
from autovoice.daemon import protocol as p
from autovoice.daemon.client import Client, SpeakResult
from autovoice.daemon.testing import DaemonProcess

__all__ = ["DaemonFigures", "Plan", "Trial", "measure_daemon"]

_STOP_TEXT = (
    "This sentence is long enough to still be playing when the stop request arrives, "
    "so that the time from stop to silence can be measured at the device."
)
_CACHED_TEXT = "The phrase cache holds this sentence after its first playing."
_QUIET_S = 0.12
"""Silence waited for at the device before each request (the last one's tail has passed)."""
NAN = float("nan")


@dataclass(frozen=True)
class Plan:
    """What to measure.

    Attributes:
        unique: Sentences spoken once each for heard latency (none spoken before).
        busy_unique: More unspoken sentences, spoken while a busy loop holds one core.
        cached_repeats: Repeats of one fully played sentence (phrase-cache hits).
        stops: Stop-latency samples.
        long_text: Played to its end twice (idle, then with a core busy) to count underruns.
        warmups: Requests before measuring (a sentence of their own).
        play_busy_unique: Play each of `busy_unique` to its end too, after its latency trial,
            with the core still busy: each is a first chunk followed by the chunks made while it
            plays (a trial is stopped once heard, so it never shows whether the next chunk
            came in time).
    """

    unique: tuple[str, ...]
    busy_unique: tuple[str, ...] = ()
    cached_repeats: int = 3
    stops: int = 20
    long_text: str = ""
    warmups: int = 3
    play_busy_unique: bool = False


@dataclass(frozen=True)
class Trial:
    """One request's latency, in ms from writing the request.

    Attributes:
        text: What was spoken.
        heard_ms: To the first audible sample at the device (NaN without the capture).
        callback_ms: To the daemon's callback handing that sample to PortAudio (`first_audio`).
        lead_in_ms: Quiet sound (below -60 dBFS) played before the audible onset.
        reported_ms: The daemon's own `first_audio.latency_ms` (from receipt of the request).
        cached: The daemon said it came from the phrase cache.
        underruns: Callbacks the ring ran dry in while it played (until it was stopped).
    """

    text: str
    heard_ms: float
    callback_ms: float
    lead_in_ms: float
    reported_ms: float
    cached: bool = False
    underruns: int = 0

    @property
    def kind(self) -> str:
        """The sentence's length class."""
        return length_class(self.text)

    @property
    def buffer_ms(self) -> float:
        """From the callback to the device: the stream's buffer."""
        return self.heard_ms - self.callback_ms


@dataclass
class DaemonFigures:
    """Raw samples from one daemon run (see `Trial`; stops in ms; plays: one dict per full
    play of the long text with audio_s, busy_core, underruns (the ring ran dry),
    portaudio_underflows (the device buffer ran dry), dropouts_at_device, longest_dropout_ms,
    wall_s; sentence_plays: the same for each sentence of `Plan.play_busy_unique`)."""

    trials: list[Trial] = field(default_factory=list)
    busy: list[Trial] = field(default_factory=list)
    cached: list[Trial] = field(default_factory=list)
    stop_ms: list[float] = field(default_factory=list)
    stop_callback_ms: list[float] = field(default_factory=list)
    stop_underruns: int = 0
    plays: list[dict[str, float]] = field(default_factory=list)
    sentence_plays: list[dict[str, float]] = field(default_factory=list)
    at_device: bool = False
    startup_s: float = NAN
    peak_rss_mb: float = NAN
    underruns: int = 0
    output_latency_ms: float = NAN
    device_rate_hz: int = 0
    channels: int = 0
    engine: str = ""
    failures: list[str] = field(default_factory=list)


def measure_daemon(
    plan: Plan, serve_args: list[str], env: dict[str, str], capture: HeardCapture | None
) -> DaemonFigures:
    """Start the daemon; measure heard latency, stop latency, and whole playbacks.

    A latency request is stopped once it is heard (the next one then starts on an idle
    daemon, after silence at the device); `plan.long_text` is played to its end to count
    underruns (the daemon's count, and dropouts at the device).

    Args:
        plan: What to measure.
        serve_args: More `autovoice serve` arguments (config, device).
        env: Environment additions for the daemon (the virtual device's).
        capture: The tee of the device the daemon plays into; None when it plays elsewhere
            (then only the daemon's own figures are taken).
    """
    figures = DaemonFigures(at_device=capture is not None)
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-") as tmp:
        socket_path = Path(tmp) / "bench.sock"
        daemon = DaemonProcess(socket_path, serve_args, env={**os.environ, **env})
        daemon.start(timeout_s=180)
        try:
            figures.startup_s = daemon.ready_s or NAN
            with (
                Client(socket_path, timeout_s=30) as client,
                Client(socket_path, timeout_s=30) as stopper,
            ):
                run = _Run(client, stopper, capture, figures)
                for _ in range(plan.warmups):
                    run.ask("Hello world.")
                for text in plan.unique:
                    run.trial(text, figures.trials)
                if plan.cached_repeats:
                    run.play(_CACHED_TEXT, record=False)
                    for _ in range(plan.cached_repeats):
                        run.trial(_CACHED_TEXT, figures.cached)
                for _ in range(plan.stops):
                    run.stop_trial()
                if plan.long_text:
                    run.play(plan.long_text)
                if plan.busy_unique or plan.long_text:
                    with _busy_core():
                        for text in plan.busy_unique:
                            run.trial(text, figures.busy)
                        for text in plan.busy_unique if plan.play_busy_unique else ():
                            run.play(text, busy=True, into=figures.sentence_plays)
                        if plan.long_text:
                            run.play(plan.long_text, busy=True)
                status = client.status()
            figures.engine = str(status.get("engine", ""))
            audio = status.get("audio", {}) or {}
            figures.underruns = int(audio.get("underruns", 0) or 0)
            figures.output_latency_ms = float(audio.get("output_latency_ms", NAN))
            figures.device_rate_hz = int(audio.get("device_rate_hz", 0) or 0)
            figures.channels = int(audio.get("channels", 0) or 0)
            figures.peak_rss_mb = _peak_rss_mb(daemon.proc.pid) if daemon.proc else NAN
        finally:
            daemon.stop()
    return figures


class _Run:
    """The requests of one run, on one speaking and one stopping connection."""

    def __init__(
        self,
        client: Client,
        stopper: Client,
        capture: HeardCapture | None,
        figures: DaemonFigures,
    ) -> None:
        self.client = client
        self.stopper = stopper
        self.capture = capture
        self.figures = figures
        self._format: tuple[int, int] | None = None

    def ask(
        self, text: str, hold_s: float = 0.0
    ) -> tuple[float, p.FirstAudio | None, Onset | None, p.Event | None, float, bool]:
        """Speak `text`; once it is heard (at the device when captured), wait `hold_s` and stop.

        Returns:
            (request written, its first_audio, its onset at the device, its final event, stop
            written, whether it came from the cache), times on the monotonic clock.
        """
        if self.capture is not None:
            self.capture.wait_quiet(_QUIET_S)
        heard = threading.Event()
        outcome: dict[str, SpeakResult] = {}
        events: list[p.Event] = []

        def on_event(event: p.Event) -> None:
            events.append(event)
            if isinstance(event, p.FirstAudio):
                heard.set()

        written: list[float] = []

        def speak() -> None:
            written.append(time.monotonic())
            outcome["result"] = self.client.speak(text, wait=True, on_event=on_event, timeout_s=60)

        speaker = threading.Thread(target=speak, name="bench-speaker")
        speaker.start()
        heard.wait(30)
        onset = None
        if self.capture is not None and written:
            onset = self.capture.onset_after(written[0], timeout_s=5)
        if hold_s:
            time.sleep(hold_s)
        stop_written = time.monotonic()
        self.stopper.stop()
        speaker.join(60)
        final = outcome["result"].final if "result" in outcome else None
        first = next((e for e in events if isinstance(e, p.FirstAudio)), None)
        cached = any(isinstance(e, p.Started) and e.cached for e in events)
        return written[0], first, onset, final, stop_written, cached

    def trial(self, text: str, into: list[Trial]) -> None:
        """One heard-latency sample of `text`, appended to `into`."""
        before, _ = self._underruns()
        written, first, onset, _, _, cached = self.ask(text)
        after, _ = self._underruns()
        if first is None or first.at_s is None:
            self.figures.failures.append(f"{text[:30]!r}: no first_audio")
            return
        if self.capture is not None and onset is None:
            self.figures.failures.append(f"{text[:30]!r}: nothing audible at the device")
            return
        rate, channels = self._stream_format()
        into.append(
            Trial(
                text=text,
                heard_ms=(onset.at_s - written) * 1e3 if onset else NAN,
                callback_ms=(first.at_s - written) * 1e3,
                lead_in_ms=onset.lead_in_s(rate, channels) * 1e3 if onset else NAN,
                reported_ms=first.latency_ms,
                cached=cached,
                underruns=after - before,
            )
        )

    def stop_trial(self) -> None:
        """Stop a long sentence 0.3 s after it is heard; stop -> last audible sample."""
        before, _ = self._underruns()
        _, first, _, final, stop_written, _ = self.ask(_STOP_TEXT, hold_s=0.3)
        self.figures.stop_underruns += self._underruns()[0] - before
        if first is None or not isinstance(final, p.Cancelled) or not final.silenced_s:
            self.figures.failures.append(f"stop: {final}")
            return
        self.figures.stop_callback_ms.append((final.silenced_s - stop_written) * 1e3)
        if self.capture is not None:
            self.capture.wait_quiet(_QUIET_S)
            tail = self.capture.last_audible_between(stop_written, time.monotonic())
            self.figures.stop_ms.append(max(0.0, (tail or stop_written) - stop_written) * 1e3)

    def play(
        self,
        text: str,
        record: bool = True,
        busy: bool = False,
        into: list[dict[str, float]] | None = None,
    ) -> None:
        """Play `text` to its end; record its underruns (daemon count, device dropouts) in
        `into` (default: the figures' `plays`)."""
        before, pa_before = self._underruns()
        started = time.monotonic()
        result = self.client.speak(text, wait=True, timeout_s=300)
        ended = time.monotonic()
        if not result.ok:
            self.figures.failures.append(f"full play: {result.final}")
            return
        if not record:
            return
        after, pa_after = self._underruns()
        row = {
            "busy_core": busy,
            "audio_s": NAN,
            "underruns": after - before,
            "portaudio_underflows": pa_after - pa_before,
        }
        done = result.final
        if isinstance(done, p.Done):
            row["audio_s"] = round(done.audio_s, 2)
        if self.capture is not None:
            self.capture.wait_quiet(_QUIET_S)
            onset = self.capture.first_audible_after(started, timeout_s=0)
            tail = self.capture.last_audible_between(started, time.monotonic())
            gaps = self.capture.dropouts(onset, tail) if onset and tail else []
            row["dropouts_at_device"] = len(gaps)
            rate, channels = self._stream_format()
            row["longest_dropout_ms"] = round(max(gaps, default=0) / (rate * channels) * 1e3, 1)
        row["wall_s"] = round(ended - started, 2)
        (self.figures.plays if into is None else into).append(row)

    def _underruns(self) -> tuple[int, int]:
        """(callbacks the ring ran dry in, callbacks PortAudio flagged an output underflow)."""
        audio = self.client.status().get("audio", {}) or {}
        return int(audio.get("underruns", 0) or 0), int(audio.get("portaudio_underflows", 0) or 0)

    def _stream_format(self) -> tuple[int, int]:
        if self._format is None:
            audio = self.client.status().get("audio", {}) or {}
            rate = int(audio.get("device_rate_hz", 0) or 0)
            self._format = (rate or 22050, int(audio.get("channels", 0) or 1))
        return self._format


class _busy_core:  # noqa: N801 (used as a context manager, like contextlib's)
    """A busy-loop process holding one core for the duration of the `with` block."""

    def __enter__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self._proc.kill()
        self._proc.wait()


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan
