"""The Wyoming front-end on a Unix socket, and its zeroconf announcement (each its own daemon)."""

from __future__ import annotations

import asyncio
import os

from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from autovoice.daemon.ssip.testing import SsipConnection
from tests.wyoming.conftest import free_port, read_until, run, start_daemon, until_stopped


def test_unix_socket_describe_synthesize_and_stream_beside_ssip(tmp_path) -> None:
    """Wyoming on a Unix socket, in the same daemon as the native socket and SSIP."""
    path = tmp_path / "wyoming.sock"
    ssip = tmp_path / "speechd.sock"
    daemon = start_daemon(tmp_path, f"unix://{path}", "--ssip", str(ssip))
    try:
        with SsipConnection.connect(ssip) as conn:
            assert conn.command("LIST SYNTHESIS_VOICES").ok
        assert daemon.status()["state"] == "idle"  # the native socket
        assert path.is_socket() and (path.stat().st_mode & 0o777) == 0o600

        async def go():
            async with daemon.client() as client:
                await client.write_event(Describe().event())
                info = Info.from_event((await read_until(client, ["info"])).events[-1][1])
                await client.write_event(Synthesize(text="Over a Unix socket.").event())
                whole = await read_until(client, ["audio-stop"])
                await client.write_event(SynthesizeStart().event())
                for delta in ("Over a ", "Unix so", "cket."):
                    await client.write_event(SynthesizeChunk(text=delta).event())
                await client.write_event(SynthesizeStop().event())
                streamed = await until_stopped(client)
                return info, whole, streamed

        info, whole, streamed = run(go())
        assert info.tts[0].supports_synthesize_streaming
        assert whole.types[0] == "audio-start" and len(whole.pcm) > 10000
        # one piece: the stream is the same synthesis as the whole text
        assert streamed.pcm == whole.pcm
    finally:
        assert daemon.proc.stop() == 0, daemon.proc.log
    assert not path.exists()


def test_zeroconf_announces_the_tcp_server(tmp_path) -> None:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from autovoice.daemon.wyoming.zeroconf import SERVICE_TYPE

    port = free_port()
    name = f"autovoice-test-{os.getpid()}"
    daemon = start_daemon(tmp_path, f"tcp://127.0.0.1:{port}", "--zeroconf", name)
    try:

        async def browse():
            zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
            try:
                info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}")
                found = await info.async_request(zc.zeroconf, 5000)
                return found, info.port, info.parsed_addresses()
            finally:
                await zc.async_close()

        found, announced_port, addresses = asyncio.run(browse())
        assert found and announced_port == port and addresses == ["127.0.0.1"]
    finally:
        assert daemon.proc.stop() == 0, daemon.proc.log
