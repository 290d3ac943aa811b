"""Daemon lifecycle: default socket location and permissions, stale socket, second daemon,
other users, SIGHUP reload, SIGTERM, the null device, and clients with no daemon."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from autovoice.daemon.testing import DaemonProcess, RawConnection
from tests.audio_fixtures import REPO_ROOT, AudioEnv
from tests.daemon.conftest import env_without, wait_until, write_config
from tests.daemon.test_daemon_device import LONG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 60.0, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "-m", "autovoice", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture(scope="module")
def runtime(module_audio: AudioEnv, tmp_path_factory):
    """XDG_RUNTIME_DIR with a stale socket left at the default path by a 'crashed' daemon."""
    d = tmp_path_factory.mktemp("runtime")
    sock_dir = d / "run" / "autovoice"
    sock_dir.mkdir(parents=True)
    os.chmod(sock_dir, 0o755)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_dir / "autovoice.sock"))
    stale.close()
    env = env_without("AUTOVOICE_SOCKET")
    env.update(module_audio.env)
    env.pop("AUTOVOICE_SOCKET", None)
    env["XDG_RUNTIME_DIR"] = str(d / "run")
    config = write_config(d / "config.yaml", synthesis={"rate": 1.0})
    return {"dir": d, "socket": sock_dir / "autovoice.sock", "env": env, "config": config}


@pytest.fixture(scope="module")
def daemon(runtime):
    proc = DaemonProcess(
        runtime["socket"],
        ["--config", str(runtime["config"])],
        env=runtime["env"],
        cwd=REPO_ROOT,
        pass_socket=False,
    )
    proc.start(timeout_s=180)
    yield proc
    proc.stop()


def test_no_daemon_means_exit_code_3(tmp_path):
    env = dict(os.environ, AUTOVOICE_SOCKET=str(tmp_path / "none.sock"))
    for args in (["say", "hello"], ["status"], ["stop"], ["cancel"], ["pause"], ["resume"]):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 3, (args, proc.stderr)
        assert "autovoice serve" in proc.stderr


def test_stale_socket_replaced_with_private_permissions(daemon, runtime):
    path = runtime["socket"]
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "stale socket" in daemon.log
    with RawConnection.connect(path) as conn:
        assert conn.request({"cmd": "ping", "id": 1})["event"] == "pong"


def test_second_daemon_refuses_with_one_line(daemon, runtime):
    started = time.monotonic()
    proc = run_cli("serve", "--config", str(runtime["config"]), env=runtime["env"])
    assert proc.returncode == 1
    assert time.monotonic() - started < 20  # refused before loading any voice
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "already" in errors[0], proc.stderr
    with RawConnection.connect(runtime["socket"]) as conn:  # the first one is unharmed
        assert conn.request({"cmd": "ping", "id": 1})["event"] == "pong"


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to connect as another user) and /usr/bin/python3",
)
def test_other_users_are_refused(daemon, runtime):
    path = runtime["socket"]
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o666)  # let the file system through; the daemon's SO_PEERCRED check remains
    code = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(5); "
        "s.connect(sys.argv[1]); print(s.makefile().readline())"
    )
    try:
        # The system python (the venv's may not be readable by nobody), started in the socket's
        # directory so that only that directory needs to be searchable by nobody.
        proc = subprocess.run(
            ["/usr/bin/python3", "-I", "-c", code, path.name],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=path.parent,
            env={"PATH": "/usr/bin:/bin"},
            preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),
        )
    finally:
        os.chmod(path, 0o600)
        os.chmod(path.parent, 0o700)
    assert proc.returncode == 0, proc.stderr
    assert '"code":"permission_denied"' in proc.stdout
    assert "refused a connection from uid 65534" in daemon.log


def test_sighup_reloads_without_dropping_clients(daemon, runtime):
    with RawConnection.connect(runtime["socket"]) as conn:
        before = conn.request({"cmd": "config", "id": "c0"})["config"]
        assert before["synthesis"]["rate"] == 1.0
        write_config(runtime["config"], synthesis={"rate": 1.25})
        daemon.signal(signal.SIGHUP)
        wait_until(
            lambda: (
                conn.request({"cmd": "config", "id": "c"})["config"]["synthesis"]["rate"] == 1.25
            ),
            90,
            "the reloaded configuration",
        )
        wait_until(lambda: "configuration reloaded" in daemon.log, 30, "the reload log line")
        conn.send({"cmd": "speak", "text": "Reloaded.", "id": "after"})
        conn.expect_types("after", ["queued", "started", "first_audio", "done"])
    write_config(runtime["config"], synthesis={"rate": 2.0, "gain": 99})
    daemon.signal(signal.SIGHUP)  # a bad config is refused and the old one kept
    wait_until(lambda: "reload failed" in daemon.log, 30, "the refused reload")
    with RawConnection.connect(runtime["socket"]) as conn:
        assert conn.request({"cmd": "config", "id": 1})["config"]["synthesis"]["rate"] == 1.25


def test_sigterm_stops_speaking_and_exits_0_within_a_second(daemon, runtime):
    conn = RawConnection.connect(runtime["socket"])
    conn.send({"cmd": "speak", "text": LONG, "id": "long"})
    conn.next(lambda e: e["event"] == "first_audio", 30)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    code = daemon.proc.wait(5)
    took = time.monotonic() - started
    print(f"SIGTERM to exit: {took * 1e3:.0f} ms")
    assert code == 0, daemon.log
    assert took < 1.0
    final = conn.until_final("long", 2)[-1]
    assert final["event"] == "cancelled" and final["reason"] == "shutdown"
    with pytest.raises(ConnectionError):
        conn.read(2)
    conn.close()
    assert not runtime["socket"].exists()
    assert not runtime["socket"].with_name("autovoice.sock.lock").exists()


def test_null_device_daemon(tmp_path):
    """`--device null`: no sound card at all (no ALSA config either)."""
    env = env_without("AUTOVOICE_SOCKET", "ALSA_CONFIG_PATH", "PULSE_SERVER")
    env["PYTHONPATH"] = str(REPO_ROOT)
    config = write_config(tmp_path / "config.yaml")
    sock = tmp_path / "null.sock"
    with DaemonProcess(
        sock, ["--device", "null", "--config", str(config)], env=env, cwd=REPO_ROOT
    ) as proc:
        proc_say = run_cli("say", "--wait", "--json", "--socket", str(sock), "Null.", env=env)
        assert proc_say.returncode == 0, proc_say.stderr
        assert '"first_audio"' in proc_say.stdout and '"done"' in proc_say.stdout
        with RawConnection.connect(sock) as conn:
            status = conn.request({"cmd": "status", "id": 1})["status"]
        assert status["audio"]["device"] == "null"
    assert proc.proc.returncode == 0
