"""`serve`'s Wyoming options over the `wyoming:` config section, and URI checks."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from autovoice.config import config_from_dict
from autovoice.daemon.wyoming.options import add_serve_options, front_end_factory
from autovoice.daemon.wyoming.server import parse_uri
from tests.audio_fixtures import REPO_ROOT


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_options(parser)
    return parser.parse_args(argv)


def made_options(args, config):
    make = front_end_factory(args, config)
    if make is None:
        return None
    server = make(object())
    return server.options


def test_uris() -> None:
    assert parse_uri("tcp://0.0.0.0:10200") == ("tcp", "0.0.0.0", 10200)
    assert parse_uri("unix:///run/a.sock") == ("unix", "/run/a.sock", 0)
    for bad in ("tcp://host", "tcp://:10200", "tcp://h:99999", "stdio://", "http://h:1", "unix://"):
        with pytest.raises(ValueError):
            parse_uri(bad)


def test_config_key_and_flags() -> None:
    off = config_from_dict({})
    assert made_options(parse(), off) is None
    on = config_from_dict({"wyoming": {"uri": "tcp://127.0.0.1:10200", "zeroconf": True}})
    options = made_options(parse(), on)
    assert options.uri == "tcp://127.0.0.1:10200" and options.zeroconf
    assert options.zeroconf_name is None
    options = made_options(parse("--wyoming", "unix:///tmp/w.sock", "--zeroconf", "hall"), off)
    assert options.uri == "unix:///tmp/w.sock" and options.zeroconf_name == "hall"
    with pytest.raises(ValueError, match="--wyoming"):
        front_end_factory(parse("--zeroconf"), off)
    with pytest.raises(ValueError, match="accepted"):
        front_end_factory(parse("--wyoming", "udp://h:1"), off)


def test_bad_uri_stops_serve_with_one_line(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autovoice", "serve", "--socket", str(tmp_path / "s.sock")]
        + ["--device", "null", "--wyoming", "tcp://nowhere"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--wyoming" in lines[0] and "tcp://nowhere" in lines[0], lines


def test_a_port_in_use_stops_serve_with_one_line(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "autovoice", "serve", "--socket", str(tmp_path / "s.sock")]
            + ["--device", "null", "--engine", "onnx", "--wyoming", f"tcp://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert len(errors) == 1 and f"tcp://127.0.0.1:{port}" in errors[0], errors
    assert "address already in use" in errors[0]
    assert not (tmp_path / "s.sock").exists()
