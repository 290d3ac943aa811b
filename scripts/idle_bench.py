"""What a silent daemon costs, and what waking it costs the listener (issue 16).

Runs the real daemon (`python -m autovoice serve`) on a private paced PulseAudio null sink with
`module-suspend-on-idle` (what desktop PulseAudio and PipeWire do), behind the ALSA file tee of
`autovoice.bench.heard`, so every latency is measured where the audio reaches the device.

1. Idle cost: after one utterance and the idle stop, daemon CPU over `--idle-s` seconds (utime +
   stime from /proc/PID/stat, % of one core), context switches per thread (wake-ups), audio
   callbacks run (from `status`), PulseAudio's CPU, and the sink's state.
2. Heard latency (request written -> first sample with |x| > 1e-3 at the device): the first
   utterance after `--cold-idle-s` of silence ("cold": the stream is stopped and the sink
   suspended) against the same text again 0.5 s after the previous one ended ("warm"), in
   `--cycles` interleaved pairs; underruns from `status`, dropouts at the device.
3. Stop latency (stop written -> last audible sample at the device), `--stops` times.

Each configuration runs its own daemon: `idle` (audio.idle_stop_s 5, the default), `always`
(idle_stop_s 0: the stream never stops) and, with `--before-repo PATH` (a copy of an older
autovoice, e.g. `git archive 6e6e910 autovoice | tar -x -C PATH`), `before`.

Usage: .venv/bin/python scripts/idle_bench.py [--idle-s 60] [--cycles 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from autovoice.bench.heard import HeardDevice, start_heard_device
from autovoice.bench.procstat import proc_cpu_s, thread_switches
from autovoice.daemon.testing import DaemonProcess, RawConnection

REPO = Path(__file__).resolve().parent.parent
TEXT = "The quick brown fox jumps over the lazy dog."
LONG = (
    "This sentence is long on purpose, so that there is time to stop it while it is being "
    "spoken, and it goes on for a while with clauses and numbers like 1234."
)


def pactl(dev: HeardDevice, *args: str) -> str:
    env = {**os.environ, **dev.env}
    return subprocess.run(
        ["pactl", *args], env=env, capture_output=True, text=True, timeout=10, check=True
    ).stdout


def sink_state(dev: HeardDevice) -> str:
    lines = [ln.split() for ln in pactl(dev, "list", "sinks", "short").splitlines()]
    return lines[0][-1] if lines else "?"


class Daemon:
    """One daemon on the heard device, with the protocol calls the bench needs."""

    def __init__(self, dev: HeardDevice, repo: Path, audio: dict, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        config = {"engine": "onnx", "daemon": {"cache_mb": 0}, "audio": audio}
        (tmp / "config.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, **dev.env, "PYTHONPATH": str(repo)}
        self.proc = DaemonProcess(
            tmp / "sock", ["--config", str(tmp / "config.yaml")], env=env, cwd=str(repo)
        )
        self.proc.start(timeout_s=240)
        self.pid = self.proc.proc.pid
        self.dev = dev
        self.conn = RawConnection.connect(tmp / "sock")
        self._ids = 0

    def status(self) -> dict:
        self._ids += 1
        return self.conn.request({"cmd": "status", "id": f"s{self._ids}"})["status"]

    def speak(self, text: str) -> tuple[float, str]:
        """Send a request; returns (monotonic time it was written, its id)."""
        self._ids += 1
        rid = f"r{self._ids}"
        data = json.dumps({"cmd": "speak", "text": text, "id": rid}).encode() + b"\n"
        t0 = time.monotonic()
        self.conn.sock.sendall(data)
        return t0, rid

    def until_final(self, rid: str) -> list[dict]:
        return self.conn.until_final(rid, timeout_s=60)

    def close(self) -> None:
        self.conn.close()
        self.proc.stop()


def idle_cost(d: Daemon, seconds: float, settle_s: float) -> dict:
    """CPU, wake-ups and callbacks of the daemon over `seconds` of silence."""
    t0, rid = d.speak(TEXT)
    d.until_final(rid)
    time.sleep(settle_s)
    before = d.status()
    time.sleep(0.3)  # the loop is done with that request
    pulse_pid = d.dev.proc.pid  # type: ignore[attr-defined]
    cpu0, pa0, sw0, w0 = (
        proc_cpu_s(d.pid),
        proc_cpu_s(pulse_pid),
        thread_switches(d.pid),
        time.monotonic(),
    )
    time.sleep(seconds)
    cpu1, pa1, sw1, w1 = (
        proc_cpu_s(d.pid),
        proc_cpu_s(pulse_pid),
        thread_switches(d.pid),
        time.monotonic(),
    )
    sink = sink_state(d.dev)
    after = d.status()
    wall = w1 - w0
    woken = {t: n - sw0.get(t, 0) for t, n in sw1.items() if n != sw0.get(t, 0)}
    cb0, cb1 = before["audio"].get("callbacks"), after["audio"].get("callbacks")
    return {
        "window_s": round(wall, 1),
        "daemon_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 3),
        "pulseaudio_cpu_pct": round(100 * (pa1 - pa0) / wall, 3),
        "wakeups_per_s": round(sum(woken.values()) / wall, 2),
        "woken_threads": woken,
        "callbacks": None if cb0 is None else cb1 - cb0,
        "output": after["audio"].get("output", after["audio"].get("state")),
        "sink": sink,
    }


def heard_once(d: Daemon, text: str) -> dict:
    """One request: request -> first audible sample at the device, and dropouts in it."""
    capture = d.dev.capture
    t0, rid = d.speak(text)
    onset = capture.first_audible_after(t0, timeout_s=30)
    events = d.until_final(rid)
    capture.wait_quiet(0.15, timeout_s=30)
    end = time.monotonic()
    first = next((e for e in events if e["event"] == "first_audio"), {})
    return {
        "heard_ms": None if onset is None else round((onset - t0) * 1e3, 2),
        "first_audio_ms": first.get("latency_ms"),
        "dropouts": len(capture.dropouts(onset or t0, end)),
    }


def latency_pairs(d: Daemon, cycles: int, cold_idle_s: float) -> dict:
    """`cycles` x (cold after `cold_idle_s` of silence, then warm 0.5 s after it)."""
    cold, warm = [], []
    underruns0 = d.status()["audio"]["underruns"]
    for i in range(cycles):
        time.sleep(cold_idle_s)
        state = d.status()["audio"].get("output", "?")
        time.sleep(0.3)
        c = heard_once(d, TEXT)
        c["output_before"] = state
        time.sleep(0.5)
        w = heard_once(d, TEXT)
        cold.append(c)
        warm.append(w)
        print(
            f"  pair {i + 1}/{cycles}: cold {c['heard_ms']} ms ({state}), warm {w['heard_ms']} ms",
            file=sys.stderr,
            flush=True,
        )
    underruns = d.status()["audio"]["underruns"] - underruns0

    def p50(rows: list[dict]) -> float | None:
        vals = [r["heard_ms"] for r in rows if r["heard_ms"] is not None]
        return round(statistics.median(vals), 2) if vals else None

    return {
        "cold_heard_p50_ms": p50(cold),
        "warm_heard_p50_ms": p50(warm),
        "cold_minus_warm_p50_ms": None
        if p50(cold) is None or p50(warm) is None
        else round(p50(cold) - p50(warm), 2),
        "paired_diff_p50_ms": statistics.median(
            [
                round(c["heard_ms"] - w["heard_ms"], 2)
                for c, w in zip(cold, warm, strict=True)
                if c["heard_ms"] is not None and w["heard_ms"] is not None
            ]
            or [float("nan")]
        ),
        "underruns": underruns,
        "dropouts": sum(r["dropouts"] for r in cold + warm),
        "cold": cold,
        "warm": warm,
    }


def stop_latency(d: Daemon, n: int) -> dict:
    """stop written -> last audible sample at the device, `n` times."""
    capture = d.dev.capture
    out = []
    for _ in range(n):
        t0, rid = d.speak(LONG)
        onset = capture.first_audible_after(t0, timeout_s=30)
        time.sleep(0.4)
        t1 = time.monotonic()
        d.conn.sock.sendall(b'{"cmd": "stop", "id": "x"}\n')
        d.until_final(rid)
        capture.wait_quiet(0.15, timeout_s=10)
        tail = capture.last_audible_between(t1, time.monotonic())
        if onset is not None:
            out.append(0.0 if tail is None else (tail - t1) * 1e3)
        time.sleep(0.3)
    return {
        "stop_p50_ms": round(statistics.median(out), 2) if out else None,
        "stop_max_ms": round(max(out), 2) if out else None,
        "n": len(out),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--cold-idle-s", type=float, default=30.0)
    ap.add_argument("--stops", type=int, default=8)
    ap.add_argument("--before-repo", type=Path, help="an older autovoice to measure as 'before'")
    ap.add_argument("--configs", default="before,always,idle")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    configs = {
        "before": (args.before_repo, {}),
        "always": (REPO, {"idle_stop_s": 0}),
        "idle": (REPO, {"idle_stop_s": 5.0}),
    }
    wanted = [c for c in args.configs.split(",") if c != "before" or args.before_repo]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result: dict = {
        "date": started,
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
        "load_before": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "configs": {},
    }
    dev = start_heard_device(48000)
    try:
        pactl(dev, "load-module", "module-suspend-on-idle", "timeout=1")
        with tempfile.TemporaryDirectory(prefix="autovoice-idle-bench-") as tmp:
            for name in wanted:
                repo, audio = configs[name]
                print(f"{name}: starting the daemon from {repo}", file=sys.stderr, flush=True)
                d = Daemon(dev, Path(repo), audio, Path(tmp) / name)
                try:
                    stop_s = audio.get("idle_stop_s", 5.0 if name == "idle" else 0.0)
                    row = {"idle": idle_cost(d, args.idle_s, settle_s=stop_s + 2.0)}
                    print(f"  idle: {row['idle']}", file=sys.stderr, flush=True)
                    if name != "before":
                        row["latency"] = latency_pairs(d, args.cycles, args.cold_idle_s)
                        row["stop"] = stop_latency(d, args.stops)
                        print(f"  stop: {row['stop']}", file=sys.stderr, flush=True)
                finally:
                    d.close()
                result["configs"][name] = row
    finally:
        dev.stop()
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
