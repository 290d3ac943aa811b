"""End-to-end figures through the real daemon: TTFA, stop latency, start-up, memory.

The daemon runs as a subprocess on a temporary socket with real PortAudio; the benchmark talks
to it with the real client. Times are on the monotonic clock, which the two processes share.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autovoice.daemon import protocol as p
from autovoice.daemon.client import Client, SpeakResult
from autovoice.daemon.testing import DaemonProcess

__all__ = ["DaemonFigures", "measure_daemon"]

_STOP_TEXT = (
    "This sentence is long enough to still be playing when the stop request arrives, "
    "so that the time from stop to silence can be measured at the device."
)


@dataclass
class DaemonFigures:
    """Raw samples from one daemon run."""

    ttfa_ms: dict[str, list[float]] = field(default_factory=dict)
    heard_ms: dict[str, list[float]] = field(default_factory=dict)
    stop_ms: list[float] = field(default_factory=list)
    startup_s: float = float("nan")
    peak_rss_mb: float = float("nan")
    underruns: int = 0
    output_latency_ms: float = float("nan")
    engine: str = ""
    failures: list[str] = field(default_factory=list)


def measure_daemon(
    sentences: list[tuple[str, str]],
    requests_per_kind: int,
    stop_requests: int,
    serve_args: list[str],
    env: dict[str, str],
    full_plays: int = 2,
    warmups: int = 3,
) -> DaemonFigures:
    """Start the daemon; measure TTFA per sentence class, stop latency, and whole playbacks.

    A TTFA request is cancelled once audible (the next request then starts on an idle daemon,
    and the run takes seconds, not the minutes of playing everything); `full_plays` long
    sentences are played to their end to count underruns while speaking.
    """
    figures = DaemonFigures()
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-") as tmp:
        socket_path = Path(tmp) / "bench.sock"
        daemon = DaemonProcess(socket_path, serve_args, env={**os.environ, **env})
        daemon.start(timeout_s=180)
        try:
            figures.startup_s = daemon.ready_s or float("nan")
            with (
                Client(socket_path, timeout_s=30) as client,
                Client(socket_path, timeout_s=30) as stopper,
            ):
                for _ in range(warmups):
                    _speak(client, stopper, sentences[0][1], stop_after_s=0.0)
                _ttfa_rounds(client, stopper, sentences, requests_per_kind, figures)
                for _ in range(stop_requests):
                    _one_stop(client, stopper, figures)
                long_texts = [text for kind, text in sentences if kind == "long"]
                for index in range(full_plays):
                    result = client.speak(
                        long_texts[index % len(long_texts)], wait=True, timeout_s=120
                    )
                    if not result.ok:
                        figures.failures.append(f"full play: {result.final}")
                status = client.status()
            figures.engine = str(status.get("engine", ""))
            audio = status.get("audio", {}) or {}
            figures.underruns = int(audio.get("underruns", 0) or 0)
            figures.output_latency_ms = float(audio.get("output_latency_ms", float("nan")))
            figures.peak_rss_mb = _peak_rss_mb(daemon.proc.pid) if daemon.proc else float("nan")
        finally:
            daemon.stop()
    return figures


def _ttfa_rounds(
    client: Client,
    stopper: Client,
    sentences: list[tuple[str, str]],
    per_kind: int,
    figures: DaemonFigures,
) -> None:
    by_kind: dict[str, list[str]] = {}
    for kind, text in sentences:
        by_kind.setdefault(kind, []).append(text)
    for round_index in range(per_kind):
        for kind, texts in by_kind.items():
            # a different sentence each round (the phrase cache is off, see bench.cli)
            text = texts[round_index % len(texts)]
            written, first, _, _ = _speak(client, stopper, text, stop_after_s=0.0)
            if first is None or first.at_s is None:
                figures.failures.append(f"{kind}: no first_audio")
                continue
            figures.ttfa_ms.setdefault(kind, []).append((first.at_s - written) * 1e3)
            figures.heard_ms.setdefault(kind, []).append(
                (first.at_s - written) * 1e3 + first.output_latency_ms
            )


def _speak(
    client: Client, stopper: Client, text: str, stop_after_s: float
) -> tuple[float, p.FirstAudio | None, p.Event | None, float]:
    """Speak `text` on `client`; `stop_after_s` after it is audible, send `stop` on `stopper`.

    Returns (when the request was written, its first_audio, its final event, when stop was
    written), all on the monotonic clock.
    """
    audible = threading.Event()
    outcome: dict[str, SpeakResult] = {}
    first: list[p.FirstAudio] = []

    def on_event(event: p.Event) -> None:
        if isinstance(event, p.FirstAudio):
            first.append(event)
            audible.set()

    written: list[float] = []

    def speak() -> None:
        written.append(time.monotonic())
        outcome["result"] = client.speak(text, wait=True, on_event=on_event, timeout_s=60)

    speaker = threading.Thread(target=speak, name="bench-speaker")
    speaker.start()
    audible.wait(30)
    if stop_after_s:
        time.sleep(stop_after_s)
    stop_written = time.monotonic()
    stopper.stop()
    speaker.join(60)
    final = outcome["result"].final if "result" in outcome else None
    return written[0], (first[0] if first else None), final, stop_written


def _one_stop(client: Client, stopper: Client, figures: DaemonFigures) -> None:
    """Stop a long sentence 0.3 s into its playback; record stop -> silence at the device."""
    _, first, final, stop_written = _speak(client, stopper, _STOP_TEXT, stop_after_s=0.3)
    if first is not None and isinstance(final, p.Cancelled) and final.silenced_s:
        figures.stop_ms.append((final.silenced_s - stop_written) * 1e3)
    else:
        figures.failures.append(f"stop: {final}")


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
