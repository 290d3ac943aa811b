"""The Wyoming front-end against the `wyoming` library's real client, over real TCP: describe,
synthesize (equal to `autovoice synth`), HA-style streams in random deltas, slow streams,
concurrent clients, a client that disconnects mid-stream, and malformed events."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from autovoice.audio_io.sinks import to_pcm16
from autovoice.bench.sentences import random_deltas
from autovoice.config import config_from_dict
from autovoice.daemon.testing import RawConnection
from autovoice.engines import Synthesizer
from autovoice.engines.text_stream import TextAccumulator
from tests.audio_fixtures import REPO_ROOT
from tests.wyoming.conftest import (
    TIMEOUT_S,
    Reply,
    WyomingDaemon,
    read_until,
    run,
    until_audio_stop,
    until_stopped,
)

TEXT = "Hello there, this is the Wyoming server of AutoVoice. It speaks as it is asked."
ANSWER = (
    "The kitchen lights are on, and the thermostat is set to 21.5 degrees. "
    "Dr. Smith's appointment is at 3:30 p.m. tomorrow; shall I remind you an hour before?"
)
LONG = " ".join(
    f"This is sentence number {i} of a long text, which keeps the engine busy." for i in range(40)
)


def synth_cli(text: str) -> bytes:
    """`autovoice synth TEXT -o -` with noise 0: raw 16-bit PCM."""
    result = subprocess.run(
        [sys.executable, "-m", "autovoice", "synth", "--engine", "onnx"]
        + ["--noise-scale", "0", "--noise-w", "0", "-o", "-", text],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


async def synthesize(daemon: WyomingDaemon, text: str, voice=None) -> Reply:
    async with daemon.client() as client:
        await client.write_event(Synthesize(text=text, voice=voice).event())
        return await until_audio_stop(client)


@pytest.fixture(scope="module")
def local_synth():
    """The daemon's voice and settings in this process (noise 0)."""
    config = config_from_dict({"engine": "onnx", "synthesis": {"noise_scale": 0, "noise_w": 0}})
    synth = Synthesizer.load(config, warm_up=False)
    yield synth
    synth.close()


def spoken(synth: Synthesizer, pieces: list[str]) -> bytes:
    """The 16-bit PCM of `pieces` synthesised one after another."""
    return b"".join(to_pcm16(c.samples) for piece in pieces for c in synth.speak(piece))


async def stream(
    daemon: WyomingDaemon, text: str, seed: int, pause_s: float = 0.0, pause_at: int = -1
) -> tuple[Reply, list[float]]:
    """Home Assistant's streaming: start, deltas of 1-6 characters, the full text as
    `synthesize`, stop. Returns the reply and when each delta was sent."""
    deltas = random_deltas(text, seed)
    sent: list[float] = []
    async with daemon.client() as client:
        reply = Reply()

        async def write() -> None:
            await client.write_event(SynthesizeStart().event())
            for k, delta in enumerate(deltas):
                if k == pause_at:
                    await asyncio.sleep(pause_s)
                sent.append(time.monotonic())
                await client.write_event(SynthesizeChunk(text=delta).event())
                await asyncio.sleep(0.005)
            await client.write_event(Synthesize(text=text).event())
            await client.write_event(SynthesizeStop().event())

        writer = asyncio.create_task(write())
        await until_stopped(client, reply)
        await writer
    return reply, sent


# -- describe ---------------------------------------------------------------------------------


def test_describe_lists_every_voice_and_streaming(daemon: WyomingDaemon) -> None:
    async def go() -> Info:
        async with daemon.client() as client:
            await client.write_event(Describe().event())
            reply = await read_until(client, ["info"])
            return Info.from_event(reply.events[-1][1])

    info = run(go())
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.name == "autovoice" and program.installed
    assert program.supports_synthesize_streaming is True
    voices = {v.name: v for v in program.voices}
    assert "en_US-joe-medium" in voices, list(voices)
    assert voices["en_US-joe-medium"].languages == ["en_US"]
    status_voice = daemon.status()["voice"]
    assert status_voice in voices


def test_describe_is_answered_while_synthesising(daemon: WyomingDaemon) -> None:
    async def go() -> list[str]:
        async with daemon.client() as client:
            await client.write_event(Synthesize(text=LONG).event())
            await read_until(client, ["audio-chunk"])
            await client.write_event(Describe().event())
            reply = await read_until(client, ["audio-stop"])
            return reply.types

    types = run(go())
    # the info overtakes the rest of the long text's audio
    assert "info" in types
    assert types.index("info") < len(types) - 10, types[-12:]


# -- synthesize -------------------------------------------------------------------------------


def test_synthesize_equals_autovoice_synth(daemon: WyomingDaemon) -> None:
    reply = run(synthesize(daemon, TEXT))
    assert reply.types[0] == "audio-start" and reply.types[-1] == "audio-stop"
    start = reply.start
    assert (start.rate, start.width, start.channels) == (22050, 2, 1)
    chunks = reply.chunks
    assert len(chunks) >= 3
    # the first chunk is a small part of the first clause ("Hello there," is ~0.7 s)
    assert len(chunks[0][1]) // 2 <= 4096
    assert reply.pcm == synth_cli(TEXT)


def test_voice_and_speaker_from_the_event(daemon: WyomingDaemon) -> None:
    named = run(synthesize(daemon, "Named voice.", SynthesizeVoice(name="en_US-joe-medium")))
    plain = run(synthesize(daemon, "Named voice."))
    assert named.pcm == plain.pcm and len(plain.pcm) > 0
    by_language = run(synthesize(daemon, "Named voice.", SynthesizeVoice(language="en_US")))
    assert by_language.pcm == plain.pcm
    unknown = run(synthesize(daemon, "x", SynthesizeVoice(name="xx_XX-nobody-low")))
    assert unknown.types == ["error"]
    assert unknown.events[0][1].data["code"] == "unknown-voice"
    speaker = run(synthesize(daemon, "x", SynthesizeVoice(name="en_US-joe-medium", speaker="7")))
    assert speaker.types == ["error"]
    assert speaker.events[0][1].data["code"] == "unknown-voice"
    assert "single-speaker" in speaker.events[0][1].data["text"]


# -- streaming --------------------------------------------------------------------------------


def test_streams_in_random_deltas_speak_once_and_end_with_stopped(
    daemon: WyomingDaemon, local_synth: Synthesizer
) -> None:
    whole = run(synthesize(daemon, ANSWER))
    for seed in (1, 2, 3):
        reply, _ = run(stream(daemon, ANSWER, seed))
        # exactly the text accumulator's pieces for these deltas, each once, in order (its own
        # tests show that deltas cut anywhere never give a broken word)
        accumulator = TextAccumulator()
        pieces = [p for d in random_deltas(ANSWER, seed) for p in accumulator.feed(d)]
        pieces += accumulator.finish()
        assert len(pieces) >= 3 and " ".join(pieces) == ANSWER
        assert reply.pcm == spoken(local_synth, pieces)
        types = reply.types
        assert types[0] == "audio-start", types[:3]
        assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
        assert types[-2:] == ["audio-stop", "synthesize-stopped"]
        assert "error" not in types
        # spoken once (the compatibility `synthesize` is not spoken again): about as long as
        # a synthesize of the same text (pieces are synthesised apart, so not equal)
        ratio = len(reply.samples) / len(whole.samples)
        assert 0.8 < ratio < 1.3, (seed, ratio)
        rms = np.sqrt(np.mean(reply.samples.astype(np.float64) ** 2))
        assert rms > 300, rms


def test_a_stream_without_deltas_speaks_the_compatibility_text_once(daemon) -> None:
    async def go() -> Reply:
        async with daemon.client() as client:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(Synthesize(text=TEXT).event())
            await client.write_event(SynthesizeStop().event())
            return await until_stopped(client)

    reply = run(go())
    assert reply.types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert reply.pcm == run(synthesize(daemon, TEXT)).pcm


def test_stream_speaks_before_the_text_is_complete(daemon: WyomingDaemon) -> None:
    """The first clause is heard while the rest of the text is still arriving."""

    async def go() -> tuple[float, float]:
        async with daemon.client() as client:
            await client.write_event(SynthesizeStart().event())
            for delta in ["The kitc", "hen lig", "hts are o", "n, and the"]:
                await client.write_event(SynthesizeChunk(text=delta).event())
            reply = await read_until(client, ["audio-chunk"])
            first = reply.events[-1][0]
            rest_sent = time.monotonic()
            await client.write_event(SynthesizeChunk(text=" heating is off.").event())
            await client.write_event(SynthesizeStop().event())
            await until_stopped(client, reply)
            return first, rest_sent

    first, rest_sent = run(go())
    assert first <= rest_sent


def test_slow_stream_neither_ends_early_nor_stalls_others(daemon: WyomingDaemon) -> None:
    """A stream that pauses for 2 s mid-sentence goes on afterwards; meanwhile another client's
    request is served."""

    async def go():
        slow = asyncio.create_task(stream(daemon, ANSWER, seed=4, pause_s=2.0, pause_at=20))
        await asyncio.sleep(0.8)  # inside the pause
        other_started = time.monotonic()
        other = await synthesize(daemon, "Meanwhile, another client.")
        other_done = time.monotonic()
        (reply, sent) = await slow
        return reply, sent, other, other_started, other_done

    reply, sent, other, other_started, other_done = run(go())
    whole = run(synthesize(daemon, ANSWER))
    assert reply.types[-1] == "synthesize-stopped"
    assert 0.8 < len(reply.samples) / len(whole.samples) < 1.3
    resumed = sent[20]
    assert other.types[-1] == "audio-stop" and len(other.pcm) > 0
    assert other_done < resumed, "the other client waited for the slow stream"
    # audio came both before and after the pause
    times = [t for t, _ in reply.chunks]
    assert times[0] < resumed < times[-1]


# -- several clients --------------------------------------------------------------------------


def test_concurrent_clients_each_get_their_own_audio(daemon: WyomingDaemon) -> None:
    texts = [f"Client {n} asks something. " + LONG[: 200 + 40 * n] for n in range(3)]
    alone = [run(synthesize(daemon, t)).pcm for t in texts]

    async def go():
        return await asyncio.gather(*(synthesize(daemon, t) for t in texts))

    replies = run(go())
    for reply, expected in zip(replies, alone, strict=True):
        assert reply.pcm == expected
    # served side by side: every client had audio before any of them was done
    assert max(r.first_chunk_s for r in replies) < min(r.done_s for r in replies)


def test_wyoming_is_not_queued_behind_the_speakers(daemon: WyomingDaemon) -> None:
    """A long utterance playing (in real time) on the daemon's own output does not hold up a
    Wyoming client."""
    with RawConnection.connect(daemon.proc.socket_path) as conn:
        conn.send({"cmd": "speak", "text": LONG, "id": "long"})
        conn.next(lambda e: e.get("event") == "first_audio", timeout_s=TIMEOUT_S)
        reply = run(synthesize(daemon, TEXT))
        assert reply.types[-1] == "audio-stop"
        assert daemon.status()["state"] == "speaking"
        conn.send({"cmd": "cancel", "id": "c"})


# -- disconnects and bad input ----------------------------------------------------------------


def test_disconnect_mid_stream_cancels_the_synthesis(daemon: WyomingDaemon) -> None:
    async def go() -> None:
        client = daemon.client()
        await client.connect()
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=LONG).event())
        await read_until(client, ["audio-chunk"])
        await client.disconnect()

    run(go())
    deadline = time.monotonic() + 2.0  # LONG takes many seconds to synthesise on this CPU
    while (jobs := daemon.status()["synthesis"]["jobs"]) != 0:
        assert time.monotonic() < deadline, f"{jobs} job(s) still open after the disconnect"
        time.sleep(0.02)
    assert run(synthesize(daemon, "Still here.")).types[-1] == "audio-stop"


async def raw_exchange(daemon: WyomingDaemon, data: bytes, replies: int) -> list[Event | None]:
    host, port = daemon.uri.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        out = []
        for _ in range(replies):
            out.append(await asyncio.wait_for(async_read_event(reader), TIMEOUT_S))
        return out
    finally:
        writer.close()


def test_malformed_and_unknown_events_get_error_codes(daemon: WyomingDaemon) -> None:
    cases = [
        b"this is not json\n",
        b'["a list"]\n',
        b'{"data": {}}\n',
        b'{"type": "transcribe"}\n',
        b'{"type": "synthesize", "data": {"text": 5}}\n',
        b'{"type": "synthesize-chunk", "data": {"text": "hi"}}\n',
        b'{"type": "synthesize-stop"}\n',
        b'{"type": "synthesize", "data": {"text": "x", "voice": "joe"}}\n',
        b'{"type": "describe"}\n',
    ]
    events = run(raw_exchange(daemon, b"".join(cases), len(cases)))
    codes = [e.data.get("code") if e.type == "error" else e.type for e in events]
    assert codes == [
        "malformed-event",
        "malformed-event",
        "malformed-event",
        "unknown-event",
        "bad-request",
        "unexpected-event",
        "unexpected-event",
        "bad-request",
        "info",  # the connection went on
    ]


def test_broken_framing_closes_only_that_connection(daemon: WyomingDaemon) -> None:
    events = run(raw_exchange(daemon, b'{"type": "synthesize", "data_length": -1}\n', 2))
    assert events[0].type == "error" and events[0].data["code"] == "malformed-event"
    assert events[1] is None  # closed
    big = b'{"type": "synthesize", "data_length": 999999999}\n'
    events = run(raw_exchange(daemon, big, 2))
    assert events[0].data["code"] == "malformed-event" and events[1] is None
    assert run(synthesize(daemon, "Others go on.")).types[-1] == "audio-stop"


def test_text_over_the_limit_is_refused(daemon: WyomingDaemon) -> None:
    reply = run(synthesize(daemon, "word " * 20000))  # the fixture's limit is 64 KiB
    assert reply.types == ["error"]
    assert reply.events[0][1].data["code"] == "text-too-long"


def test_a_client_that_stops_reading_holds_up_nobody(daemon: WyomingDaemon) -> None:
    """Its audio backs up until its job parks (no worker held); others are served meanwhile."""

    async def go() -> None:
        stuck = daemon.client()
        await stuck.connect()  # asks for minutes of audio and never reads
        await stuck.write_event(Synthesize(text=LONG + " " + LONG).event())
        await asyncio.sleep(0.5)
        others = await asyncio.gather(*(synthesize(daemon, f"Client {n} here.") for n in (1, 2)))
        assert all(r.types[-1] == "audio-stop" and len(r.pcm) > 0 for r in others)
        deadline = time.monotonic() + 20.0
        while True:
            pool = daemon.status()["synthesis"]
            if pool["jobs"] >= 1 and pool["running"] == 0:
                break  # the stuck client's job waits without a worker
            assert time.monotonic() < deadline, pool
            await asyncio.sleep(0.1)
        await stuck.disconnect()

    run(go())
    deadline = time.monotonic() + 5.0
    while daemon.status()["synthesis"]["jobs"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
