"""Time from an answer's first text delta to its first audio at the device, on a native stream.

Starts a private paced virtual sound card (PulseAudio null sink) and a daemon on it, then, for
one-sentence answers fed in random 1-6 character deltas at 200 characters a second (as an LLM
streams), measures first delta -> first audio handed to the device (`first_audio.at_s`, the
output callback's moment; `heard` adds the stream's reported output latency). Interleaved with
each stream, the baseline a client without streams has: wait for the whole answer, then `speak`
it (feed time + that speak's first audio). Each utterance is stopped once audible.

    PYTHONPATH=$PWD .venv/bin/python scripts/stream_ttfa.py [--rounds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from autovoice.bench.virtual_audio import start_virtual_device
from autovoice.daemon import protocol as p
from autovoice.daemon.client import Client
from autovoice.daemon.testing import DaemonProcess
from autovoice.engines.text_stream import TextAccumulator

CHARS_PER_S = 200.0
ANSWERS = [
    "The weather in Paris today is sunny with a high of 21 degrees and a light breeze.",
    "Your next meeting is with the design team at half past three in room four.",
    "I set a timer for twelve minutes, and I will remind you when the pasta is ready.",
    "The capital of Australia is Canberra, not Sydney as many people think.",
    "Traffic on the way to the airport is light, so the drive takes about 25 minutes.",
    "The living room lights are now off and the thermostat is set to 19.5 degrees.",
    "Tomorrow morning starts cloudy, but the afternoon should be dry and mild.",
    "Dr. Smith's office opens at nine, e.g. just after your train arrives.",
]


def paced_deltas(text: str, rng: random.Random, sent: list[float]) -> Iterator[str]:
    """`text` in random 1-6 character deltas, each yielded at its time at CHARS_PER_S. Appends
    to `sent` the moment the first is sent, then the moment of the one that completes the first
    speakable piece (found with the daemon's default `TextAccumulator`)."""
    accumulator = TextAccumulator()
    start = time.monotonic()
    i = 0
    while i < len(text):
        n = rng.randint(1, 6)
        delay = start + i / CHARS_PER_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        if not sent:
            sent.append(now)
        if accumulator.feed(text[i : i + n]) and len(sent) == 1:
            sent.append(now)
        yield text[i : i + n]
        i += n
    if len(sent) == 1:
        sent.append(time.monotonic())  # the piece is the whole text, released by `end`


def first_audio(events: list[p.Event]) -> p.FirstAudio | None:
    return next((e for e in events if isinstance(e, p.FirstAudio)), None)


def measure(rounds: int, seed: int) -> dict:
    rng = random.Random(seed)
    device = start_virtual_device()
    stream_ms: list[float] = []
    stream_heard_ms: list[float] = []
    piece_ms: list[float] = []
    text_wait_ms: list[float] = []
    whole_ms: list[float] = []
    speak_ms: list[float] = []
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="autovoice-stream-ttfa-") as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text("engine: onnx\ndaemon:\n  cache_mb: 0\n")
            sock = Path(tmp) / "s.sock"
            daemon = DaemonProcess(
                sock, ["--config", str(config)], env={**os.environ, **device.env}
            )
            daemon.start(timeout_s=180)
            try:
                with Client(sock, timeout_s=30) as client, Client(sock, timeout_s=30) as ctl:

                    def stop_when_audible(event: p.Event) -> None:
                        if isinstance(event, p.FirstAudio):
                            ctl.stop()

                    for _ in range(2):  # warm-up
                        client.speak(ANSWERS[0], wait=True, on_event=stop_when_audible)
                    for r in range(rounds):
                        for text in ANSWERS:
                            sent: list[float] = []
                            result = client.speak(
                                paced_deltas(text, rng, sent),
                                wait=True,
                                timeout_s=60,
                                on_event=stop_when_audible,
                            )
                            first = first_audio(result.events)
                            if first is None or first.at_s is None or not sent:
                                failures.append(f"stream {r}: {result.final}")
                            else:
                                stream_ms.append((first.at_s - sent[0]) * 1e3)
                                piece_ms.append((first.at_s - sent[1]) * 1e3)
                                text_wait_ms.append((sent[1] - sent[0]) * 1e3)
                                stream_heard_ms.append(stream_ms[-1] + first.output_latency_ms)
                            written = time.monotonic()
                            result = client.speak(
                                text, wait=True, timeout_s=60, on_event=stop_when_audible
                            )
                            first = first_audio(result.events)
                            if first is None or first.at_s is None:
                                failures.append(f"speak {r}: {result.final}")
                                continue
                            speak_ms.append((first.at_s - written) * 1e3)
                            whole_ms.append(len(text) / CHARS_PER_S * 1e3 + speak_ms[-1])
                    status = client.status()
            finally:
                daemon.stop()
    finally:
        device.stop()

    def summary(values: list[float]) -> dict:
        if not values:
            return {"count": 0}
        ordered = sorted(values)
        return {
            "count": len(values),
            "p50": round(statistics.median(ordered), 1),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "min": round(ordered[0], 1),
            "max": round(ordered[-1], 1),
        }

    return {
        "chars_per_s": CHARS_PER_S,
        "answers": len(ANSWERS),
        "rounds": rounds,
        "stream_first_delta_to_device_ms": summary(stream_ms),
        "of_which_text_wait_ms": summary(text_wait_ms),
        "first_piece_complete_to_device_ms": summary(piece_ms),
        "stream_first_delta_to_heard_ms": summary(stream_heard_ms),
        "whole_answer_then_speak_ms": summary(whole_ms),
        "speak_request_to_device_ms": summary(speak_ms),
        "engine": status.get("engine"),
        "output_latency_ms": (status.get("audio") or {}).get("output_latency_ms"),
        "failures": failures,
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the 8 answers")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    figures = measure(args.rounds, args.seed)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if figures["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
