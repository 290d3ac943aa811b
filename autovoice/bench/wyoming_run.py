"""`autovoice bench`'s Wyoming part: AutoVoice's Wyoming server against wyoming-piper (what Home
Assistant users run), both started here with the same voice files and driven by the same client
(the `wyoming` library's), interleaved request by request.

Measured, as time from sending to the first `audio-chunk`:
- `synthesize` of unique texts (short assistant answers, nothing cached);
- an HA-style stream of a one-sentence answer whose deltas (1-6 characters) arrive at 200
  characters/s, from the first delta (then `synthesize` with the full text and
  `synthesize-stop`, as Home Assistant sends them);
- AutoVoice alone, k = 1..4 clients at once against the same k requests one after another:
  first audio (served at once vs queued) and throughput (audio seconds per wall second).

wyoming-piper is run as `python -m wyoming_piper` from this interpreter (it is in the `dev`
extra); without it, only AutoVoice is measured and the report says so.

Thread: main (an asyncio loop per measurement). RT-safe: no.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from autovoice.bench.sentences import random_deltas
from autovoice.bench.stats import summarize

__all__ = ["STREAM_CHARS_PER_S", "measure_wyoming", "print_wyoming"]

STREAM_CHARS_PER_S = 200.0
"""How fast the streamed answer's text arrives (an LLM's pace as Home Assistant forwards it)."""
READ_TIMEOUT_S = 60.0
_ROOMS = ("kitchen", "living room", "bedroom", "hallway", "office", "garage", "porch", "attic")
_THINGS = ("dishwasher", "coffee machine", "robot vacuum", "washing machine", "oven", "heater")
_DIRECTIONS = ("north", "south", "east", "west", "north west", "south east")


def answer(rng: random.Random) -> str:
    """A unique short assistant answer (one or two sentences)."""
    n, m = rng.randint(2, 29), rng.randint(2, 59)
    room, thing, way = rng.choice(_ROOMS), rng.choice(_THINGS), rng.choice(_DIRECTIONS)
    return rng.choice(
        (
            f"The {room} light is now on, and it is {n} degrees in there.",
            f"Your timer for {m} minutes has started.",
            f"It is {n} degrees outside, with a light wind from the {way}.",
            f"I started the {thing}; it should be done in about {m} minutes.",
            f"The {room} window is open, and the humidity there is {m} percent.",
        )
    )


def streamed_answer(rng: random.Random) -> str:
    """A unique one-sentence answer of about 150 characters, as an LLM would stream it."""
    n, m = rng.randint(17, 26), rng.randint(5, 45)
    room, thing = rng.choice(_ROOMS), rng.choice(_THINGS)
    return (
        f"Sure, I have turned on the {room} lights, set the thermostat to {n} degrees, "
        f"and started the {thing} for you, so everything should be ready in about {m} minutes."
    )


@dataclass
class Server:
    """A Wyoming server under test."""

    name: str
    host: str
    port: int
    stop: Callable[[], None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one request ------------------------------------------------------------------------------


async def next_event(client: AsyncTcpClient, server: Server) -> Event:
    """The server's next event (TimeoutError after READ_TIMEOUT_S; RuntimeError if it hung up)."""
    event = await asyncio.wait_for(client.read_event(), READ_TIMEOUT_S)
    if event is None:
        raise RuntimeError(f"{server.name} closed the connection")
    return event


async def synthesize_ttfa_ms(server: Server, text: str) -> tuple[float, float]:
    """(ms to the first audio chunk, ms to audio-stop) of one `synthesize`."""
    async with AsyncTcpClient(server.host, server.port) as client:
        started = time.perf_counter()
        await client.write_event(Synthesize(text=text).event())
        first = None
        while True:
            event = await next_event(client, server)
            if first is None and AudioChunk.is_type(event.type):
                first = time.perf_counter()
            elif AudioStop.is_type(event.type) or event.type == "error":
                if first is None:
                    raise RuntimeError(f"{server.name}: no audio for {text!r}: {event}")
                done = time.perf_counter()
                return (first - started) * 1e3, (done - started) * 1e3


async def stream_ttfa_ms(server: Server, text: str, seed: int) -> float:
    """ms from the first delta to the first audio chunk of an HA-style stream."""
    deltas = random_deltas(text, seed)
    async with AsyncTcpClient(server.host, server.port) as client:
        await client.write_event(SynthesizeStart().event())
        started = time.perf_counter()

        async def write() -> None:
            sent = 0
            for delta in deltas:
                due = started + sent / STREAM_CHARS_PER_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await client.write_event(SynthesizeChunk(text=delta).event())
                sent += len(delta)
            await client.write_event(Synthesize(text=text).event())
            await client.write_event(SynthesizeStop().event())

        writer = asyncio.create_task(write())
        first = None
        try:
            while True:
                event = await next_event(client, server)
                if first is None and AudioChunk.is_type(event.type):
                    first = time.perf_counter()
                if event.type in ("synthesize-stopped", "error"):
                    break
            await writer
        finally:
            writer.cancel()
    if first is None:
        raise RuntimeError(f"{server.name}: no audio for the stream {text!r}")
    return (first - started) * 1e3


async def concurrent(server: Server, texts: list[str]) -> dict[str, Any]:
    """The texts at once (one client each) vs one after another."""
    started = time.perf_counter()
    together = await asyncio.gather(*(synthesize_ttfa_ms(server, t) for t in texts))
    wall_together = time.perf_counter() - started
    started = time.perf_counter()
    queued_first, offset = [], 0.0
    for text in texts:  # as if all arrived at once and were served in turn
        first, done = await synthesize_ttfa_ms(server, text)
        queued_first.append(offset + first)
        offset += done
    wall_serial = time.perf_counter() - started
    return {
        "together_first_ms": [f for f, _ in together],
        "queued_first_ms": queued_first,
        "wall_together_s": wall_together,
        "wall_serial_s": wall_serial,
    }


# -- servers ----------------------------------------------------------------------------------


async def wait_ready(server: Server, timeout_s: float = 120.0) -> None:
    """Until the server answers `describe`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with AsyncTcpClient(server.host, server.port) as client:
                await client.write_event(Describe().event())
                event = await asyncio.wait_for(client.read_event(), 10.0)
                if event is not None and event.type == "info":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer describe in {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


def start_autovoice(config_path: Path, workdir: Path) -> Server:
    from autovoice.daemon.testing import DaemonProcess

    port = free_port()
    proc = DaemonProcess(
        workdir / "autovoice.sock",
        [
            "--device",
            "null",
            "--config",
            str(config_path),
            "--wyoming",
            f"tcp://127.0.0.1:{port}",
        ],
    )
    proc.start(timeout_s=180)
    return Server("autovoice", "127.0.0.1", port, lambda: proc.stop())


def start_wyoming_piper(model_path: Path, workdir: Path) -> Server | None:
    """wyoming-piper on the same voice files (linked into its data dir); None if absent."""
    if importlib.util.find_spec("wyoming_piper") is None:
        return None
    data = workdir / "wyoming-piper"
    data.mkdir()
    name = model_path.name.removesuffix(".onnx")
    (data / model_path.name).symlink_to(model_path)
    (data / f"{model_path.name}.json").symlink_to(Path(f"{model_path}.json"))
    port = free_port()
    log = (workdir / "wyoming-piper.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}"]
        + ["--voice", name, "--data-dir", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    return Server("wyoming-piper", "127.0.0.1", port, stop)


def wyoming_piper_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("wyoming-piper")
    except metadata.PackageNotFoundError:
        return None


# -- the whole part ---------------------------------------------------------------------------


def measure_wyoming(
    config_path: Path, requests: int, streams: int, clients: tuple[int, ...] = (1, 2, 3, 4)
) -> dict[str, Any]:
    """Run the Wyoming part (see module docstring) and return its figures.

    Args:
        config_path: The daemon's configuration (the bench settings).
        requests: `synthesize` requests per server.
        streams: Streams per server.
        clients: Numbers of simultaneous clients for the concurrency figures.
    """
    from autovoice.config import load_config
    from autovoice.engines.voice import default_voice_path, resolve_voice

    config = load_config(config_path)
    model = resolve_voice(config.voice, config.voices_dir) if config.voice else None
    model = (model or default_voice_path()).resolve()
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-wyoming-") as tmp:
        servers = [start_autovoice(config_path, Path(tmp))]
        peer = start_wyoming_piper(model, Path(tmp))
        if peer is not None:
            servers.append(peer)
        try:
            return asyncio.run(_measure(servers, requests, streams, clients, model))
        finally:
            for server in servers:
                server.stop()


async def _measure(
    servers: list[Server], requests: int, streams: int, clients: tuple[int, ...], model: Path
) -> dict[str, Any]:
    for server in servers:
        await wait_ready(server)
        for warm in ("Warming up.", "Warming up, a second time."):  # loads, first-call costs
            await synthesize_ttfa_ms(server, warm)
    rng = random.Random(13)
    first_ms: dict[str, list[float]] = {s.name: [] for s in servers}
    stream_ms: dict[str, list[float]] = {s.name: [] for s in servers}
    seen: set[str] = set()
    for i in range(requests):
        text = answer(rng)
        while text in seen:  # unique texts: nothing can come from a cache
            text = answer(rng)
        seen.add(text)
        for server in servers if i % 2 == 0 else servers[::-1]:  # interleaved A/B
            first, _ = await synthesize_ttfa_ms(server, text)
            first_ms[server.name].append(first)
    for i in range(streams):
        text = streamed_answer(rng)
        for server in servers if i % 2 == 0 else servers[::-1]:
            stream_ms[server.name].append(await stream_ttfa_ms(server, text, seed=i))
    result: dict[str, Any] = {
        "voice": str(model),
        "wyoming_piper": wyoming_piper_version() if len(servers) > 1 else None,
        "synthesize": {n: summarize(v).to_dict() for n, v in first_ms.items()},
        "stream_200cps": {n: summarize(v).to_dict() for n, v in stream_ms.items()},
    }
    if len(servers) > 1:
        for key, values in (("synthesize", first_ms), ("stream_200cps", stream_ms)):
            ours = summarize(values["autovoice"]).p50_ms
            theirs = summarize(values["wyoming-piper"]).p50_ms
            result[key]["ratio_p50"] = round(theirs / ours, 2)
    rows = []
    for k in clients:
        texts = [streamed_answer(rng) for _ in range(k)]
        figures = await concurrent(servers[0], texts)
        rows.append(
            {
                "clients": k,
                "together_first_p50_ms": round(summarize(figures["together_first_ms"]).p50_ms, 1),
                "together_first_max_ms": round(max(figures["together_first_ms"]), 1),
                "queued_first_p50_ms": round(summarize(figures["queued_first_ms"]).p50_ms, 1),
                "queued_first_max_ms": round(max(figures["queued_first_ms"]), 1),
                "wall_together_s": round(figures["wall_together_s"], 3),
                "wall_serial_s": round(figures["wall_serial_s"], 3),
            }
        )
    result["concurrency"] = rows
    return result


def print_wyoming(result: dict[str, Any], out: TextIO) -> None:
    """The Wyoming part as a small table."""
    peer = result.get("wyoming_piper")
    print("", file=out)
    print(
        f"Wyoming: time to first audio chunk, ms (AutoVoice vs wyoming-piper "
        f"{peer or '(not installed: pip install wyoming-piper)'}, same voice, same client)",
        file=out,
    )
    for key, label in (("synthesize", "synthesize"), ("stream_200cps", "stream 200 ch/s")):
        row = result[key]
        ours = row.get("autovoice", {})
        theirs = row.get("wyoming-piper", {})
        line = f"  {label:16} autovoice p50 {ours.get('p50_ms')} p95 {ours.get('p95_ms')}"
        if theirs:
            line += (
                f" | wyoming-piper p50 {theirs.get('p50_ms')} p95 {theirs.get('p95_ms')}"
                f" | {row.get('ratio_p50')}x lower"
            )
        print(line, file=out)
    print("  concurrent clients (AutoVoice; first audio at once vs queued one by one):", file=out)
    for r in result["concurrency"]:
        print(
            f"    {r['clients']} clients: first audio p50 {r['together_first_p50_ms']} "
            f"(max {r['together_first_max_ms']}) vs queued p50 {r['queued_first_p50_ms']} "
            f"(max {r['queued_first_max_ms']}); wall {r['wall_together_s']} s together vs "
            f"{r['wall_serial_s']} s one by one",
            file=out,
        )
