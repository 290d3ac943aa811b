#!/usr/bin/env python3
"""Start-up to ready, and memory, of `autovoice serve` (default voice, `engine: auto`).

For each round and each source tree (its `autovoice` first on PYTHONPATH, so an old checkout can
be compared with a new one in one run, interleaved): exec `python -m autovoice serve --device
null`, time exec -> the `ready` line, read the daemon's CPU time and peak RSS (VmHWM) then, speak
one sentence over the socket, read the peak RSS again, and say whether torch was mapped in.
The daemons share a private cache directory (XDG_CACHE_HOME: the onnx engine's split graphs),
so each tree's first start is a cold one; `--cold-cache` gives every start an empty one.

    .venv/bin/python scripts/bench_startup.py [--rounds 5] [--tree PATH ...] [--cold-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = "The meeting has been moved to Thursday afternoon at half past three."


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _speak(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(str(path))
        sock.sendall(json.dumps({"cmd": "speak", "text": SENTENCE, "id": 1}).encode() + b"\n")
        buf = b""
        while True:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the daemon closed the connection")
            buf += data
            for line in buf.split(b"\n")[:-1]:
                if json.loads(line).get("event") in ("done", "error", "cancelled"):
                    return
            buf = buf[buf.rfind(b"\n") + 1 :]


def run_once(tree: Path, workdir: Path, cache: Path) -> dict[str, float | bool]:
    """One start, one sentence, one stop of the daemon from `tree` (caches under `cache`)."""
    sock = workdir / "bench.sock"
    config = workdir / "config.yaml"
    config.write_text("engine: auto\n")
    env = dict(os.environ, PYTHONPATH=str(tree), XDG_CACHE_HOME=str(cache))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autovoice", "serve", "--device", "null"]
        + ["--socket", str(sock), "--config", str(config)],
        env=env,
        cwd=tree,  # `-m` puts the working directory first on sys.path
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("ready "):
                break
        else:
            raise RuntimeError(f"{tree}: the daemon exited with {proc.wait()}")
        ready_s = time.monotonic() - started
        cpu_s = _cpu_s(proc.pid)
        peak_ready = _status_kb(proc.pid, "VmHWM") / 1024
        _speak(sock)
        peak_spoken = _status_kb(proc.pid, "VmHWM") / 1024
        torch = "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return {
        "ready_s": ready_s,
        "cpu_s": cpu_s,
        "peak_ready_mb": peak_ready,
        "peak_spoken_mb": peak_spoken,
        "torch": torch,
    }


def _stats(runs: list[dict], key: str, unit: str = "", fmt: str = ".2f", edge=min) -> str:
    """`median (edge)` of one figure over the runs."""
    values = [float(r[key]) for r in runs]
    return f"{statistics.median(values):{fmt}}{unit} ({edge(values):{fmt}}{unit})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tree",
        action="append",
        type=Path,
        help="source tree whose autovoice to run (repeat to compare; default: this one)",
    )
    parser.add_argument("--cold-cache", action="store_true", help="an empty cache every start")
    args = parser.parse_args()
    trees = args.tree or [Path(__file__).resolve().parent.parent]
    results: dict[Path, list[dict]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for i, tree in enumerate(trees):
                cache = Path(tmp) / (f"cache-{n}-{i}" if args.cold_cache else "cache")
                results[tree].append(run_once(tree.resolve(), Path(tmp), cache))
    print(f"{args.rounds} rounds, interleaved; load average {os.getloadavg()[0]:.2f}")
    print(
        "tree | ready s: median (min-max) | CPU s to ready: median (min) | "
        "peak RSS at ready: median (max) | after speaking: median (max) | torch"
    )
    for tree, runs in results.items():
        ready = [float(r["ready_s"]) for r in runs]
        print(
            f"{tree} | {statistics.median(ready):.2f} ({min(ready):.2f}-{max(ready):.2f}) | "
            f"{_stats(runs, 'cpu_s')} | {_stats(runs, 'peak_ready_mb', ' MB', '.0f', max)} | "
            f"{_stats(runs, 'peak_spoken_mb', ' MB', '.0f', max)} | "
            f"{'loaded' if any(r['torch'] for r in runs) else 'not loaded'}"
        )


if __name__ == "__main__":
    main()
