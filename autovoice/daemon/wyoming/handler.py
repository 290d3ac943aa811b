"""One Wyoming connection: read events, answer `describe` at once, synthesise requests in order
and send their audio back.

The read loop never waits for synthesis: `describe` and `ping` are answered as they come, and
stream deltas reach the request while its audio is being sent. A second task, the responder,
serves the connection's requests one after another (`audio-start`, `audio-chunk`s as the
synthesis pool makes them, `audio-stop`, and `synthesize-stopped` after a stream). When the
client goes away, everything it asked for is cancelled at once.

Thread: event loop. RT-safe: no.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from autovoice.audio_io.sinks import to_pcm16
from autovoice.daemon.synthesis_pool import JobAudio, JobEnded, SynthesisPool
from autovoice.daemon.wyoming.request import Request, VoiceChoice
from autovoice.daemon.wyoming.wire import (
    ErrorCode,
    MalformedEvent,
    RequestRefused,
    error_event,
    read_event,
)
from autovoice.engines import SpeakOptions
from autovoice.errors import VoiceError

__all__ = ["WyomingHandler"]

_LOG = logging.getLogger(__name__)

SAMPLE_WIDTH_BYTES = 2
"""16-bit PCM."""
CHANNELS = 1


class Front(Protocol):
    """What a connection needs of the Wyoming server (`WyomingServer`)."""

    @property
    def closing(self) -> bool: ...
    @property
    def pool(self) -> SynthesisPool: ...
    @property
    def max_text_bytes(self) -> int: ...
    async def info_event(self) -> Event: ...
    async def voice_name(self, choice: VoiceChoice) -> str | None: ...


class WyomingHandler(AsyncEventHandler):
    """A Wyoming connection (see module docstring).

    Args:
        reader, writer: The connection.
        front: The Wyoming server (voices, the daemon's synthesis pool, limits).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        front: Front,
    ) -> None:
        super().__init__(reader, writer)
        self._front = front
        self._queue: asyncio.Queue[Request] = asyncio.Queue()
        self._requests: set[Request] = set()
        self._stream: Request | None = None
        self._broken = False

    # -- reading -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read events until the client goes away (the library's loop, with error replies)."""
        responder = asyncio.create_task(self._respond(), name="wyoming responder")
        try:
            while not self._broken:
                try:
                    event = await read_event(self.reader)
                except MalformedEvent as exc:
                    await self._error(ErrorCode.MALFORMED_EVENT, str(exc))
                    if exc.fatal:
                        break
                    continue
                except (ConnectionError, OSError):
                    break
                if event is None:
                    break
                await self.handle_event(event)
        finally:
            self._cancel_all()
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await responder
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        """Answer or queue one event. Returns True (the connection goes on)."""
        if self._front.closing:
            await self._error(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")
            return True
        try:
            if Describe.is_type(event.type):
                await self._send(await self._front.info_event())
            elif Ping.is_type(event.type):
                await self._send(Pong(text=event.data.get("text")).event())
            elif Synthesize.is_type(event.type):
                self._on_synthesize(event)
            elif SynthesizeStart.is_type(event.type):
                self._on_start(event)
            elif SynthesizeChunk.is_type(event.type):
                self._on_chunk(event)
            elif SynthesizeStop.is_type(event.type):
                self._on_stop()
            else:
                raise RequestRefused(
                    ErrorCode.UNKNOWN_EVENT, f"unknown event type {event.type!r} for a TTS server"
                )
        except RequestRefused as exc:
            await self._error(exc.code, str(exc))
        return True

    def _on_synthesize(self, event: Event) -> None:
        text = _text(event)
        if self._stream is not None:  # Home Assistant repeats the stream's text: not twice
            if len(text.encode("utf-8")) <= self._front.max_text_bytes:
                self._stream.compat_text(text)
            return
        request = Request(_voice(event), streaming=False)
        self._check_size(request, text)
        request.whole(text)
        self._submit(request)

    def _on_start(self, event: Event) -> None:
        if self._stream is not None:
            raise RequestRefused(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-start inside a stream (send stop first)"
            )
        self._stream = Request(_voice(event), streaming=True)
        self._submit(self._stream)

    def _on_chunk(self, event: Event) -> None:
        text = _text(event)
        if self._stream is None:
            raise RequestRefused(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-chunk outside a stream (no start)"
            )
        self._check_size(self._stream, text)
        self._stream.delta(text)

    def _on_stop(self) -> None:
        if self._stream is None:
            raise RequestRefused(
                ErrorCode.UNEXPECTED_EVENT, "synthesize-stop outside a stream (no start)"
            )
        stream, self._stream = self._stream, None
        stream.finish()

    def _check_size(self, request: Request, text: str) -> None:
        limit = self._front.max_text_bytes
        if request.text_bytes + len(text.encode("utf-8")) > limit:
            request.cancel()
            raise RequestRefused(
                ErrorCode.TEXT_TOO_LONG, f"more than {limit} bytes of text in one request"
            )

    def _submit(self, request: Request) -> None:
        self._requests.add(request)
        self._queue.put_nowait(request)

    def _cancel_all(self) -> None:
        for request in list(self._requests):
            request.cancel()
        self._requests.clear()

    # -- responding ----------------------------------------------------------------------------

    async def _respond(self) -> None:
        """Serve the connection's requests in order."""
        while True:
            request = await self._queue.get()
            try:
                if not request.cancelled:
                    await self._serve(request)
            finally:
                self._requests.discard(request)

    async def _serve(self, request: Request) -> None:
        """Synthesise one request and send its audio."""
        front = self._front
        try:
            name = await front.voice_name(request.voice)
            options = SpeakOptions(speaker=request.voice.speaker)
            pool = front.pool
            synth = pool.try_acquire(name)
            if synth is None:  # not loaded (or failed): wait for its load off the loop
                loop = asyncio.get_running_loop()
                synth = await loop.run_in_executor(
                    None, pool.acquire, name, request.received_s, lambda: request.cancelled
                )
            if synth is None:
                return
            try:
                synth.scales(options)
            except (VoiceError, ValueError) as exc:
                front.pool.voices.release(synth)
                raise RequestRefused(ErrorCode.UNKNOWN_VOICE, str(exc)) from exc
            request.attach(pool.open(synth, options, request.deliver))
        except RequestRefused as exc:
            await self._refuse(request, exc.code, str(exc))
            return
        except Exception as exc:  # the voice failed to load
            await self._refuse(request, ErrorCode.SYNTHESIS_FAILED, str(exc))
            return
        await self._send_audio(request, synth.sample_rate)

    async def _send_audio(self, request: Request, rate: int) -> None:
        started = False
        start = AudioStart(rate=rate, width=SAMPLE_WIDTH_BYTES, channels=CHANNELS).event()
        while True:
            item = await request.items.get()
            if isinstance(item, JobAudio):
                if request.cancelled:
                    continue
                if not started:
                    await self._send(start)
                    started = True
                chunk = AudioChunk(
                    rate=rate,
                    width=SAMPLE_WIDTH_BYTES,
                    channels=CHANNELS,
                    audio=to_pcm16(item.samples),
                )
                await self._send(chunk.event())
                request.consumed(len(item.samples))
                continue
            assert isinstance(item, JobEnded)
            if item.cancelled or request.cancelled:
                return
            if item.error is not None:
                code = (
                    ErrorCode.UNKNOWN_VOICE
                    if isinstance(item.error, VoiceError)
                    else ErrorCode.SYNTHESIS_FAILED
                )
                await self._error(code, str(item.error))
                if started:  # close the group that was begun
                    await self._send(AudioStop().event())
                if request.streaming:
                    await self._send(SynthesizeStopped().event())
                return
            break
        if not started:
            await self._send(start)  # no speakable text: an empty group
        await self._send(AudioStop().event())
        if request.streaming:
            await self._send(SynthesizeStopped().event())

    async def _refuse(self, request: Request, code: ErrorCode, message: str) -> None:
        """Answer a request that cannot be served; a stream still ends with
        `synthesize-stopped` (Home Assistant waits for it)."""
        _LOG.info("wyoming: refused a request: %s: %s", code.value, message)
        await self._error(code, message)
        if request.streaming:
            await self._send(SynthesizeStopped().event())

    async def _error(self, code: ErrorCode, message: str) -> None:
        await self._send(error_event(code, message))

    async def _send(self, event: Event) -> None:
        """Write one event; a broken connection ends the connection (and cancels its work)."""
        if self._broken:
            return
        try:
            await async_write_event(event, self.writer)
        except (ConnectionError, OSError) as exc:
            _LOG.info("wyoming: client went away: %s", exc)
            self._broken = True
            self._cancel_all()
            self.reader.feed_eof()


def _text(event: Event) -> str:
    text = event.data.get("text")
    if not isinstance(text, str):
        raise RequestRefused(ErrorCode.BAD_REQUEST, f"{event.type} needs a string `text`")
    return text


def _voice(event: Event) -> VoiceChoice:
    try:
        return VoiceChoice.from_data(event.data.get("voice"))
    except ValueError as exc:
        raise RequestRefused(ErrorCode.BAD_REQUEST, str(exc)) from exc
