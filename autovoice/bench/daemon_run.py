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
    warmups: int = 3,
) -> DaemonFigures:
    """Start the daemon, speak each sentence class `requests_per_kind` times, and stop some.

    Each request waits for its `done` so requests do not queue behind each other.
    """
    figures = DaemonFigures()
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-") as tmp:
        socket_path = Path(tmp) / "bench.sock"
        daemon = DaemonProcess(socket_path, serve_args, env={**os.environ, **env})
        daemon.start(timeout_s=180)
        try:
            figures.startup_s = daemon.ready_s or float("nan")
            with Client(socket_path, timeout_s=30) as client:
                for _ in range(warmups):
                    client.speak(sentences[0][1], wait=True, timeout_s=60)
                _speak_all(client, sentences, requests_per_kind, figures)
                with Client(socket_path, timeout_s=30) as stopper:
                    for _ in range(stop_requests):
                        _one_stop(client, stopper, figures)
                status = client.status()
            figures.engine = str(status.get("engine", ""))
            audio = status.get("audio", {}) or {}
            figures.underruns = int(audio.get("underruns", 0) or 0)
            figures.output_latency_ms = float(audio.get("output_latency_ms", float("nan")))
            figures.peak_rss_mb = _peak_rss_mb(daemon.proc.pid) if daemon.proc else float("nan")
        finally:
            daemon.stop()
    return figures


def _speak_all(
    client: Client, sentences: list[tuple[str, str]], per_kind: int, figures: DaemonFigures
) -> None:
    by_kind: dict[str, list[str]] = {}
    for kind, text in sentences:
        by_kind.setdefault(kind, []).append(text)
    for round_index in range(per_kind):
        for kind, texts in by_kind.items():
            # a different sentence each round (the phrase cache is off, see bench.cli)
            text = texts[round_index % len(texts)]
            written = time.monotonic()
            result = client.speak(text, wait=True, timeout_s=60)
            first = next((e for e in result.events if isinstance(e, p.FirstAudio)), None)
            if first is None or not result.ok:
                figures.failures.append(f"{kind}: {result.final}")
                continue
            figures.ttfa_ms.setdefault(kind, []).append((first.at_s - written) * 1e3)
            figures.heard_ms.setdefault(kind, []).append(
                (first.at_s - written) * 1e3 + first.output_latency_ms
            )


def _one_stop(client: Client, stopper: Client, figures: DaemonFigures) -> None:
    """Speak a long sentence on `client`; once it is audible, send `stop` on `stopper`."""
    audible = threading.Event()
    outcome: dict[str, SpeakResult] = {}

    def on_event(event: p.Event) -> None:
        if isinstance(event, p.FirstAudio):
            audible.set()

    def speak() -> None:
        outcome["result"] = client.speak(_STOP_TEXT, wait=True, on_event=on_event, timeout_s=60)

    speaker = threading.Thread(target=speak, name="bench-speaker")
    speaker.start()
    if not audible.wait(30):
        figures.failures.append("stop: no first audio")
    time.sleep(0.3)  # well into playback
    written = time.monotonic()
    stopper.stop()
    speaker.join(30)
    final = outcome["result"].final if "result" in outcome else None
    if isinstance(final, p.Cancelled) and final.silenced_s:
        figures.stop_ms.append((final.silenced_s - written) * 1e3)
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
