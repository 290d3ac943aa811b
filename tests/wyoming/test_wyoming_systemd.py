"""The Wyoming socket under systemd socket activation.

Real parts: Debian's `systemd-socket-activate` binds a TCP socket named `wyoming` (as
scripts/autovoice-wyoming.socket does; a Unix one too) and the native socket, and execs the
real daemon, started without --wyoming, at the first connection: the `wyoming` library's own
client's. The notify socket is a real datagram socket that records when the daemon says READY.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from tests.audio_fixtures import REPO_ROOT
from tests.daemon.conftest import start_activator, wait_until
from tests.daemon.test_systemd import NotifyReceiver, private_dir
from tests.wyoming.conftest import TIMEOUT_S, free_port, read_until, run, until_audio_stop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="needs systemd"),
]

HA_DESCRIBE_TIMEOUT_S = 1.0
"""Home Assistant's Wyoming integration gives up on one `describe` after this long (then it
retries, three times, two seconds apart)."""


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_activated_wyoming_answers_describe_before_ready_and_synthesizes_after(tmp_path, kind):
    notify = NotifyReceiver()
    native = private_dir(tmp_path / "run") / "autovoice.sock"
    where = f"127.0.0.1:{free_port()}" if kind == "tcp" else str(tmp_path / "run" / "w.sock")
    config = tmp_path / "config.yaml"
    config.write_text("engine: onnx\n")
    serve = [sys.executable, "-m", "autovoice", "serve", "--config", str(config)]
    activator, log, reader = start_activator(
        ["-l", str(native), "-l", where]
        + ["--fdname=autovoice:wyoming", "-EPYTHONPATH", "-ENOTIFY_SOCKET"]
        + [*serve, "--device", "null", "--noise-scale", "0", "--noise-w", "0"],
        {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NOTIFY_SOCKET": notify.name},
    )

    async def client() -> dict:
        async with AsyncClient.from_uri(f"{kind}://{where}") as wyoming:
            # connecting makes the activator exec the daemon, which then loads its voice
            connected = time.monotonic()
            await wyoming.write_event(Describe().event())
            info_event = (await read_until(wyoming, ["info"])).events[-1]
            await wyoming.write_event(Synthesize(text="Served once the voice is loaded.").event())
            sent = time.monotonic()
            await wyoming.write_event(Describe().event())  # not held up by the waiting request
            again = (await read_until(wyoming, ["info"])).events[-1]
            audio = await until_audio_stop(wyoming)
        return {
            "connected": connected,
            "info": info_event,
            "again": again,
            "sent": sent,
            "audio": audio,
        }

    try:
        wait_until(native.exists, 10, "the activator's sockets")
        got = run(client())
        ready_at = notify.messages[notify.wait_for("READY", timeout_s=TIMEOUT_S)][0]
        activator.terminate()
        assert activator.wait(15) == 0
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait(5)
        notify.close()
    reader.join(2)
    text = "".join(log)

    info_at, info = got["info"]
    assert info_at < got["sent"] < ready_at, (info_at, got["sent"], ready_at, text)
    voices = Info.from_event(info).tts[0].voices
    assert [v.name for v in voices if v.name == "en_US-joe-medium"], voices
    # a describe sent behind the waiting synthesize is answered before READY too
    assert got["again"][0] < ready_at, (got["again"][0], ready_at)
    audio = got["audio"]
    assert audio.types[0] == "audio-start" and audio.types[-1] == "audio-stop", audio.types
    assert audio.start.rate == 22050
    assert len(audio.samples) > 0.5 * 22050 and abs(audio.samples).max() > 1000
    assert f"wyoming: listening on {kind}://{where}" in text, text
    print(
        f"\ndescribe answered {1000 * (info_at - got['connected']):.0f} ms after connecting "
        f"(the daemon exec'd meanwhile), {1000 * (ready_at - info_at):.0f} ms before READY; "
        f"a second one, behind the waiting synthesize, took "
        f"{1000 * (got['again'][0] - got['sent']):.0f} ms"
    )
