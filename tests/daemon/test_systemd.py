"""systemd integration: socket activation, readiness notification, the watchdog, the unit files.

Real parts: Debian's `systemd-socket-activate` binds the native and SSIP sockets and execs the
real daemon at the first connection, handing them over with LISTEN_FDS/LISTEN_FDNAMES; the
clients are the real `autovoice say`, `spd-say` and a raw socket; the notify socket is a real
datagram socket (an abstract one, as systemd's are) that records what the daemon sends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from autovoice.daemon.notify import Notifier
from autovoice.daemon.testing import RawConnection
from tests.audio_fixtures import REPO_ROOT, AudioEnv
from tests.daemon.conftest import LOUD, start_activator, wait_until, write_config
from tests.wyoming.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SCRIPTS = REPO_ROOT / "scripts"
UNITS = (
    "autovoice.socket",
    "autovoice-ssip.socket",
    "autovoice-wyoming.socket",
    "autovoice.service",
)
WATCHDOG_S = 0.4


class NotifyReceiver:
    """An abstract datagram socket standing in for systemd's notify socket."""

    def __init__(self) -> None:
        self.name = f"@autovoice-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key: str, after: int = 0, timeout_s: float = 60.0) -> int:
        """Index of the first message from `after` on that has `key`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for i, (_, fields) in enumerate(self.messages[after:], after):
                if key in fields:
                    return i
            time.sleep(0.01)
        raise AssertionError(f"no {key} in {timeout_s} s: {self.messages}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


@pytest.fixture
def notify():
    receiver = NotifyReceiver()
    yield receiver
    receiver.close()


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="needs systemd")
@pytest.mark.skipif(shutil.which("spd-say") is None, reason="needs speech-dispatcher's spd-say")
def test_socket_activation_serves_clients_that_came_before_ready(
    module_audio: AudioEnv, tmp_path, notify
):
    run = tmp_path / "run"
    native = private_dir(run / "autovoice") / "autovoice.sock"
    ssip = private_dir(run / "speech-dispatcher") / "speechd.sock"
    env = dict(module_audio.env)
    env.update(
        NOTIFY_SOCKET=notify.name,
        WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)),
        XDG_RUNTIME_DIR=str(run),
        SPEECHD_ADDRESS=f"unix_socket:{ssip}",
    )
    passed = [*module_audio.vars, "PYTHONPATH", "NOTIFY_SOCKET", "WATCHDOG_USEC", "XDG_RUNTIME_DIR"]
    config = write_config(tmp_path / "config.yaml")
    activator, log, reader = start_activator(
        ["-l", str(native), "-l", str(ssip)]
        + ["--fdname=autovoice:ssip", *(f"-E{name}" for name in passed)]
        + [sys.executable, "-m", "autovoice", "serve", "--config", str(config)],
        env,
    )
    try:
        wait_until(lambda: native.exists() and ssip.exists(), 10, "the activator's sockets")
        # Nothing runs yet: the first connection (spd-say's) makes the activator exec the
        # daemon, which then loads the voice while these clients wait.
        launched = time.monotonic()
        spd = subprocess.Popen(["spd-say", "-w", "Hello from Speech Dispatcher's client."], env=env)
        say = subprocess.Popen(
            [sys.executable, "-m", "autovoice", "say", "--wait", "--json", "--socket", str(native)]
            + ["Hello from a native client that came early."],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        raw = RawConnection.connect(native, timeout_s=60)
        raw.send({"cmd": "speak", "text": "And one more, sent before ready.", "id": 7})
        sent_before_ready = not any("READY" in f for _, f in notify.messages)
        events = raw.expect_types(7, ["queued", "started", "first_audio", "done"], timeout_s=90)
        assert sent_before_ready, notify.messages
        assert spd.wait(90) == 0
        out, _ = say.communicate(timeout=90)
        assert say.returncode == 0, out
        assert json.loads(out.splitlines()[-1])["event"] == "done"
        ready = notify.wait_for("READY")
        assert notify.messages[ready][0] - launched > 0.3, "the clients did not come first"
        assert events[0]["event"] == "queued"

        status = raw.request({"cmd": "status", "id": "s"})["status"]
        assert status["socket"] == str(native)
        assert status["utterances"]["done"] == 3
        heard = module_audio.read_capture(int(status["audio"]["channels"]))[:, 0]
        assert np.count_nonzero(np.abs(heard) > LOUD) > 0.5 * int(status["audio"]["device_rate_hz"])
        raw.close()
        for path in (native, ssip):  # the activator made them 0755; the daemon tightened them
            assert stat.S_IMODE(path.stat().st_mode) == 0o600

        second = subprocess.run(
            [sys.executable, "-m", "autovoice", "serve", "--socket", str(native)]
            + ["--config", str(config), "--device", "null"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "already" in second.stderr, second.stderr

        pid = activator.pid  # the activator exec'd the daemon: same process
        os.kill(pid, signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", after=ready + 1)
        reloaded = notify.wait_for("READY", after=reloading + 1, timeout_s=90)
        activator.send_signal(signal.SIGTERM)
        assert activator.wait(15) == 0
        stopping = notify.wait_for("STOPPING", after=reloaded + 1, timeout_s=5)
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait(5)
    reader.join(2)

    messages = [fields for _, fields in notify.messages]
    assert messages[0]["STATUS"].startswith("loading voice"), messages
    assert ready < reloading < reloaded < stopping
    assert messages[ready]["STATUS"].startswith("ready, voice en_US-joe-medium on onnx")
    statuses = [m["STATUS"].split(",")[0] for m in messages[ready + 1 : reloading] if "STATUS" in m]
    assert "speaking" in statuses and statuses[-1] == "idle", statuses
    assert "MONOTONIC_USEC" in messages[reloading]
    assert messages[stopping]["STATUS"] == "stopping"
    # the watchdog: pings only once ready, every half interval
    pings = [t for t, fields in notify.messages if "WATCHDOG" in fields]
    first_ping = next(i for i, fields in enumerate(messages) if "WATCHDOG" in fields)
    assert first_ping > ready
    gaps = np.diff(pings)  # a busy machine delays single pings; the median shows the rhythm
    assert len(pings) >= 3 and 0.45 * WATCHDOG_S < np.median(gaps) < WATCHDOG_S, gaps
    # systemd's sockets stay where they are when the daemon stops
    assert native.exists() and ssip.exists(), "\n".join(log)


def test_started_by_hand_a_client_before_ready_is_served(tmp_path):
    """No service manager: the daemon binds its socket before loading the voice, so a client
    that connects and sends at once waits and is served."""
    sock = tmp_path / "s.sock"
    err = tmp_path / "stderr"
    config = write_config(tmp_path / "config.yaml")
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autovoice", "serve", "--socket", str(sock)]
            + ["--config", str(config), "--device", "null"],
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_until(sock.exists, 30, "the socket")
        with RawConnection.connect(sock, timeout_s=60) as conn:
            conn.send({"cmd": "speak", "text": "Early bird.", "id": 1})
            assert "ready " not in err.read_text(), "the daemon was ready already"
            conn.expect_types(1, ["queued", "started", "first_audio", "done"], timeout_s=90)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, err.read_text()
    assert not sock.exists()  # bound by the daemon: removed by it


def test_notifier_addresses_and_a_watchdog_that_stops_when_unhealthy(notify):
    import asyncio

    assert Notifier.from_environ({}).enabled is False
    path_notifier = Notifier.from_environ({"NOTIFY_SOCKET": "/run/user/1/systemd/notify"})
    assert path_notifier.address == "/run/user/1/systemd/notify"
    env = {"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(env, pid=2).watchdog_s is None  # meant for another process
    notifier = Notifier.from_environ(env, pid=1)
    assert notifier.watchdog_s == pytest.approx(0.1)
    notifier.ready("x")
    problems = iter([None, None, "the player thread has ended", None])

    async def run() -> None:
        task = asyncio.ensure_future(notifier.watchdog(lambda: next(problems, "done")))
        await asyncio.sleep(0.4)
        task.cancel()

    asyncio.run(run())
    notify.wait_for("WATCHDOG", timeout_s=2)
    time.sleep(0.1)
    kinds = [next(iter(f)) for _, f in notify.messages]
    # READY, two pings, the unhealthy status instead of a ping, then healthy again: the
    # status as it was and a ping; then unhealthy for good: no more pings
    assert kinds[:6] == ["READY", "WATCHDOG", "WATCHDOG", "STATUS", "STATUS", "WATCHDOG"], kinds
    assert kinds[6:] == ["STATUS"], kinds
    statuses = [f["STATUS"] for _, f in notify.messages if "STATUS" in f]
    assert statuses == ["x", "unhealthy: the player thread has ended", "x", "unhealthy: done"]


def test_unit_files_verify(tmp_path):
    """`systemd-analyze verify --user` of the three units (it needs a runtime directory, and
    ExecStart's `%h/.local/bin/autovoice` to exist: a home with a link to this autovoice)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "autovoice").symlink_to(Path(sys.executable).parent / "autovoice")
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(private_dir(tmp_path / "run")))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--user", *(f"./{unit}" for unit in UNITS)],
        cwd=SCRIPTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    complaints = [line for line in result.stderr.splitlines() if any(u in line for u in UNITS)]
    assert not complaints, result.stderr


def run_activated(tmp_path: Path, listen: list[str], command: list[str]) -> str:
    """Run `command` under systemd-socket-activate on the sockets `listen` (its options), make
    the first connection that starts it, and return what it wrote (stdout and stderr)."""
    out = tmp_path / "out"
    with out.open("w") as sink:
        activator = subprocess.Popen(
            ["systemd-socket-activate", *listen, "-EPYTHONPATH", *command],
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    first = Path(next(arg.split("=", 1)[-1] for arg in listen if arg.startswith("--listen=")))
    try:
        wait_until(first.exists, 10, "the activator's socket")
        kind = socket.SOCK_DGRAM if "--datagram" in listen else socket.SOCK_STREAM
        with socket.socket(socket.AF_UNIX, kind) as client:
            client.connect(str(first))
            if kind == socket.SOCK_DGRAM:
                client.send(b"hello")
        activator.wait(60)
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait(5)
    return out.read_text()


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="needs systemd")
def test_inherited_socket_names(tmp_path):
    show = [sys.executable, "-c"] + [
        "import os; from autovoice.daemon.listeners import inherited_sockets as s; "
        "print('names', sorted(s(os.environ)), 'LISTEN_FDS' in os.environ)"
    ]
    # systemd names an fd after its unit when FileDescriptorName= is not set
    units = [f"--listen={tmp_path / 'a.sock'}", f"--listen={tmp_path / 'b.sock'}"]
    out = run_activated(tmp_path, [*units, "--fdname=autovoice.socket:autovoice-ssip.socket"], show)
    assert "names ['autovoice', 'ssip'] False" in out, out
    one = [f"--listen={tmp_path / 'c.sock'}"]  # a single socket without a name: the native one
    assert "names ['autovoice'] False" in run_activated(tmp_path, one, show)
    tcp = [f"--listen={tmp_path / 'd.sock'}", f"--listen=127.0.0.1:{free_port()}"]  # TCP too
    out = run_activated(tmp_path, [*tcp, "--fdname=autovoice:autovoice-wyoming.socket"], show)
    assert "names ['autovoice', 'wyoming'] False" in out, out


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="needs systemd")
def test_unusable_inherited_sockets_stop_serve_with_one_line(tmp_path):
    serve = [sys.executable, "-m", "autovoice", "serve", "--device", "null"]
    both = [f"--listen={tmp_path / 'a.sock'}", f"--listen={tmp_path / 'b.sock'}"]
    out = run_activated(tmp_path, [*both, "--fdname=autovoice:autovoice"], serve)
    assert "autovoice: error: two inherited sockets are named 'autovoice'" in out, out
    datagram = [f"--listen={tmp_path / 'd.sock'}", "--datagram", "--fdname=autovoice"]
    out = run_activated(tmp_path, datagram, serve)
    assert "is not a listening Unix stream socket" in out, out
    assert "Traceback" not in out
