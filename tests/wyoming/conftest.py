"""Fixtures for the Wyoming tests: a real `autovoice serve --wyoming` (null audio device, noise
0) and helpers that talk to it with the `wyoming` library's own client over real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped

from autovoice.daemon.testing import DaemonProcess, RawConnection
from tests.audio_fixtures import REPO_ROOT

TIMEOUT_S = 30.0
"""Upper bound on any one read (the tests assert behaviour, not speed)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path, **sections) -> str:
    import yaml

    path.write_text(yaml.safe_dump({"engine": "onnx", **sections}))
    return str(path)


@dataclass
class WyomingDaemon:
    """A daemon serving Wyoming on `uri`, and its native socket."""

    proc: DaemonProcess
    uri: str

    def client(self) -> AsyncClient:
        return AsyncClient.from_uri(self.uri)

    def status(self) -> dict:
        with RawConnection.connect(self.proc.socket_path) as conn:
            return conn.request({"cmd": "status", "id": "s"})["status"]


def start_daemon(tmp_path, uri: str, *more: str) -> WyomingDaemon:
    config = write_config(tmp_path / "config.yaml", daemon={"max_text_bytes": 65536})
    args = ["--device", "null", "--wyoming", uri, "--noise-scale", "0", "--noise-w", "0"]
    proc = DaemonProcess(
        tmp_path / "autovoice.sock", [*args, "--config", config, *more], cwd=REPO_ROOT
    )
    proc.start(timeout_s=180)
    return WyomingDaemon(proc, uri)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> WyomingDaemon:
    """One daemon per module on a free TCP port."""
    d = start_daemon(tmp_path_factory.mktemp("wyoming"), f"tcp://127.0.0.1:{free_port()}")
    yield d
    code = d.proc.stop()
    assert code == 0, d.proc.log


@dataclass
class Reply:
    """What came back for one request, with arrival times (`time.monotonic()`)."""

    events: list[tuple[float, Event]] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [e.type for _, e in self.events]

    @property
    def start(self) -> AudioStart:
        return AudioStart.from_event(next(e for _, e in self.events if e.type == "audio-start"))

    @property
    def chunks(self) -> list[tuple[float, bytes]]:
        chunks = [(t, e) for t, e in self.events if e.type == "audio-chunk"]
        return [(t, AudioChunk.from_event(e).audio) for t, e in chunks]

    @property
    def pcm(self) -> bytes:
        return b"".join(audio for _, audio in self.chunks)

    @property
    def samples(self) -> np.ndarray:
        return np.frombuffer(self.pcm, dtype="<i2")

    @property
    def first_chunk_s(self) -> float:
        return self.chunks[0][0]

    @property
    def done_s(self) -> float:
        return self.events[-1][0]


async def read_until(client: AsyncClient, last: Iterable[str], reply: Reply | None = None) -> Reply:
    """Read events until one of type in `last` (included)."""
    reply = reply or Reply()
    last = set(last)
    while True:
        event = await asyncio.wait_for(client.read_event(), TIMEOUT_S)
        assert event is not None, f"connection closed after {reply.types}"
        reply.events.append((time.monotonic(), event))
        if event.type in last:
            return reply


async def until_audio_stop(client: AsyncClient) -> Reply:
    return await read_until(client, [AudioStop().event().type, "error"])


async def until_stopped(client: AsyncClient, reply: Reply | None = None) -> Reply:
    return await read_until(client, [SynthesizeStopped().event().type], reply)


def run(coro):
    """Run a coroutine with an overall timeout."""
    return asyncio.run(asyncio.wait_for(coro, 4 * TIMEOUT_S))
