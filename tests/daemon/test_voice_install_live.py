"""A voice installed while the daemon runs is listed and spoken without a restart: the real
daemon, the real install code fetching a copy of the default voice from an HTTP server on
127.0.0.1, native and SSIP clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from autovoice.catalogue.catalogue import fetch_catalogue
from autovoice.catalogue.install import install_voice, remove_voice
from autovoice.daemon.ssip.testing import SsipConnection
from autovoice.daemon.testing import RawConnection
from autovoice.engines.voice import default_voice_path
from tests.audio_fixtures import AudioEnv
from tests.catalogue.mirror import Mirror
from tests.daemon.conftest import running_ssip_daemon, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LATE = "en_US-late-medium"
TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def mirror():
    model = default_voice_path()
    m = Mirror()
    m.add_voice(LATE, model.read_bytes(), Path(f"{model}.json").read_bytes())
    m.start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def daemon(module_audio: AudioEnv, tmp_path_factory):
    d = tmp_path_factory.mktemp("install_daemon")
    voices = d / "voices"
    voices.mkdir()
    config = write_config(d / "config.yaml", voices_dir=str(voices))
    with running_ssip_daemon(module_audio, d, config) as proc:
        proc.voices_dir = voices
        yield proc


def native_names(conn: RawConnection) -> list[str]:
    return [v["name"] for v in conn.request({"cmd": "voices", "id": "v"})["voices"]]


def ssip_names(ssip: SsipConnection) -> list[str]:
    reply = ssip.command("LIST SYNTHESIS_VOICES")
    assert reply.ok
    return [line.split("\t")[0] for line in reply.lines]


def test_a_voice_installed_after_start_is_listed_and_spoken(daemon, mirror, tmp_path) -> None:
    with (
        RawConnection.connect(daemon.socket_path) as conn,
        SsipConnection.connect(daemon.ssip_path) as ssip,
    ):
        assert LATE not in native_names(conn)  # listed once before: the registry has scanned
        assert LATE not in ssip_names(ssip)
        assert not ssip.command(f"SET SELF SYNTHESIS_VOICE {LATE}").ok

        catalogue = fetch_catalogue(mirror.url, tmp_path / "cache")
        install_voice(catalogue.get(LATE), catalogue.base_url, daemon.voices_dir)

        assert LATE in native_names(conn)
        assert LATE in ssip_names(ssip)
        assert ssip.command(f"SET SELF SYNTHESIS_VOICE {LATE}").ok
        assert conn.request({"cmd": "subscribe", "id": "sub"})["event"] == "ok"
        conn.send({"cmd": "speak", "text": "A new voice.", "id": "late", "voice": LATE})
        events = conn.until_final("late", TIMEOUT_S)
        assert events[-1]["event"] == "done", events
        assert any(e["event"] == "started" and e.get("voice") == LATE for e in events), events

        remove_voice(LATE, daemon.voices_dir)
        assert LATE not in native_names(conn)
        assert LATE not in ssip_names(ssip)
