"""Child-process side of the device tests: plays a scenario on the real PortAudio device.

Run by tests through `AudioEnv.run_json(CHILD, scenario, json_args)`: sounddevice must be
imported after the environment (ALSA_CONFIG_PATH, PULSE_SERVER) is set, so every real stream
lives in a child process. Prints one JSON line: stats, events and timings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from autovoice.audio_io import AudioOutput
from autovoice.audio_io.supervisor import DEFAULT_IDLE_STOP_S
from autovoice.errors import AudioDeviceError

CHILD = "from tests.audio.play_helper import main; main()"


def _ev(item: tuple) -> dict:
    e, thread = item
    d = dataclasses.asdict(e)
    d["type"] = type(e).__name__
    d["thread"] = thread
    return d


def _output(args: dict, events: list) -> AudioOutput:
    return AudioOutput(
        args.get("input_rate_hz", 22050),
        device=args.get("device"),
        latency=args.get("latency", "low"),
        buffer_s=args.get("buffer_s", 2.0),
        on_event=lambda e: events.append((e, threading.current_thread().name)),
        device_rate_hz=args.get("device_rate_hz"),
        idle_stop_s=args.get("idle_stop_s", DEFAULT_IDLE_STOP_S),
    )


def _write_chunks(out: AudioOutput, x: np.ndarray, chunk: int, cancel=None) -> int:
    n = 0
    for i in range(0, len(x), chunk):
        n += out.write(x[i : i + chunk], cancel)
    return n


def scenario_play(args: dict) -> dict:
    """Play one utterance from an .npy file in chunks; wait until heard; report."""
    x = np.load(args["input"]).astype(np.float32)
    events: list = []
    out = _output(args, events)
    with out:
        rec = None
        if args.get("jack_rec"):  # record our JACK output port with jackd2's jack_rec
            seconds = str(args["jack_rec_s"])
            rec = subprocess.Popen(
                ["jack_rec", "-f", args["jack_rec"], "-d", seconds, "-b", "32", "PortAudio:out_0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
        time.sleep(args.get("idle_before_s", 0.1))
        t_write = time.monotonic()
        if args.get("prefill"):  # unpaced device: queue everything before it plays
            out.pause()
            time.sleep(0.01)
        out.begin_utterance(7)
        written = _write_chunks(out, x, args.get("chunk", 1000))
        out.end_utterance(7)
        out.resume()
        t_written = time.monotonic()
        played = out.wait_played(7, args.get("timeout_s", 60.0) + len(x) / out.input_rate_hz)
        t_played = time.monotonic()
        # Keep feeding silence long enough for the last samples to reach the device.
        time.sleep(out.output_latency_s + args.get("tail_s", 0.15))
        stats = out.stats()
        if rec is not None:
            rec.wait(30)
    return {
        "written": written,
        "played": played,
        "t_write": t_write,
        "t_written": t_written,
        "t_played": t_played,
        "stats": dataclasses.asdict(stats),
        "events": [_ev(e) for e in events],
    }


def scenario_abort(args: dict) -> dict:
    """Play a long tone, abort after `abort_after_s`; measure how fast the output goes silent."""
    rate = args.get("input_rate_hz", 48000)
    n = int(rate * args.get("tone_s", 3.0))
    x = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(n) / rate)).astype(np.float32)
    events: list = []
    out = _output(args, events)
    cancel = threading.Event()
    with out:
        time.sleep(0.05)
        out.begin_utterance(1)
        writer = threading.Thread(target=_write_chunks, args=(out, x, 2048, cancel))
        writer.start()
        time.sleep(args.get("abort_after_s", 0.5))
        ring = out.ring
        read_before = ring.frames_read
        t_abort = time.monotonic()
        out.abort()
        while ring.clear_pending:
            time.sleep(0.0002)
        t_silent = time.monotonic()
        writer.join(5)
        out.end_utterance(1)
        finished = out.wait_played(1, 2.0)
        time.sleep(out.output_latency_s + 0.2)
        stats = out.stats()
    return {
        "read_before_abort": read_before,
        "abort_to_jump_s": t_silent - t_abort,
        "writer_returned": not writer.is_alive(),
        "finished": finished,
        "stats": dataclasses.asdict(stats),
        "events": [_ev(e) for e in events],
    }


def scenario_pause(args: dict) -> dict:
    """Play a ramp, pause for `pause_s`, resume; everything must still play, in order."""
    x = np.load(args["input"]).astype(np.float32)
    events: list = []
    out = _output(args, events)
    with out:
        time.sleep(0.05)
        out.begin_utterance(3)
        _write_chunks(out, x, 4096)
        out.end_utterance(3)
        time.sleep(args.get("pause_after_s", 0.3))
        out.pause()
        time.sleep(0.05)
        read_paused = out.ring.frames_read
        time.sleep(args.get("pause_s", 0.3))
        read_paused_end = out.ring.frames_read
        out.resume()
        played = out.wait_played(3, 10.0)
        time.sleep(out.output_latency_s + 0.15)
        stats = out.stats()
    return {
        "played": played,
        "read_while_paused": read_paused_end - read_paused,
        "stats": dataclasses.asdict(stats),
        "events": [_ev(e) for e in events],
    }


def scenario_devices(args: dict) -> dict:
    """List devices and open one by name substring and by index."""
    from autovoice.audio_io import list_devices

    devs = [dataclasses.asdict(d) for d in list_devices()]
    opened = {}
    for sel in args.get("open", []):
        try:
            with AudioOutput(22050, device=sel) as out:
                time.sleep(0.05)
                opened[str(sel)] = dataclasses.asdict(out.stats())
        except AudioDeviceError as exc:
            opened[str(sel)] = {"error": str(exc), "device": exc.device}
    return {"devices": devs, "opened": opened}


def scenario_reconnect(args: dict) -> dict:
    """Open, let the parent kill and restart the server, report states over time."""
    events: list = []
    out = _output(args, events)
    states = []
    x = (0.3 * np.sin(2 * np.pi * 300.0 * np.arange(22050) / 22050)).astype(np.float32)
    with out:
        print("READY", flush=True)
        deadline = time.monotonic() + args.get("run_s", 6.0)
        uid = 0
        while time.monotonic() < deadline:
            uid += 1
            out.begin_utterance(uid)
            out.write(x[:2205])
            out.end_utterance(uid)
            out.wait_played(uid, 2.0)
            states.append(out.stats().state)
            time.sleep(0.05)
        stats = out.stats()
    return {"states": states, "stats": dataclasses.asdict(stats), "utterances": uid}


def _thread_switches(exclude: int) -> dict[int, int]:
    """Context switches so far of each thread of this process but `exclude` (a native id)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == exclude:
            continue
        try:
            text = Path(f"/proc/self/task/{tid}/status").read_text()
        except FileNotFoundError:  # the thread ended
            continue
        out[int(tid)] = sum(
            int(line.split()[1])
            for line in text.splitlines()
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
        )
    return out


def _woken(before: dict[int, int], after: dict[int, int]) -> dict[str, int]:
    """Threads ("tid name") that switched between two `_thread_switches`, and how often."""
    woken = {}
    for tid, n in after.items():
        if n != before.get(tid, 0):
            try:
                name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            except FileNotFoundError:
                name = "?"
            woken[f"{tid} {name}"] = n - before.get(tid, 0)
    return woken


def _wait_for(pred, timeout_s: float) -> float | None:
    """Seconds until `pred()` held (polled every ms), or None on timeout."""
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout_s:
            return None
        time.sleep(0.001)
    return time.monotonic() - start


def scenario_idle(args: dict) -> dict:
    """Play, let the stream go idle, watch it sleep, abort while idle, then play again."""
    x = np.load(args["input"]).astype(np.float32)
    events: list = []
    out = _output(args, events)
    res: dict = {}
    me = threading.get_native_id()
    with out:
        for uid in (1, 2):
            out.begin_utterance(uid)
            out.write(x)
            out.end_utterance(uid)
            assert out.wait_played(uid, 10.0)
            res[f"state_after_{uid}"] = out.stats().state
            stops = out.stats().idle_stops
            res[f"idle_after_{uid}_s"] = _wait_for(lambda n=stops: out.stats().idle_stops > n, 10.0)
            res[f"state_idle_{uid}"] = out.stats().state
            if uid == 2:
                break
            time.sleep(args["settle_s"])  # the sound server suspends the sink meanwhile
            calls, switches = out.stats().callbacks, _thread_switches(me)
            time.sleep(args["quiet_s"])
            res["idle_callbacks"] = out.stats().callbacks - calls
            res["idle_switches"] = _woken(switches, _thread_switches(me))
            pactl = subprocess.run(["pactl", "list", "sinks", "short"], capture_output=True)
            res["idle_sinks"] = pactl.stdout.decode()
            aborted = time.monotonic()
            out.abort()
            res["abort_silenced_s"] = _wait_for(lambda t=aborted: out.last_silenced_s >= t, 1.0)
            res["state_after_abort"] = out.stats().state
        time.sleep(out.output_latency_s + 0.1)  # idle_stop_s is longer than this
        res["stats"] = dataclasses.asdict(out.stats())
    res["events"] = [_ev(e) for e in events]
    return res


def scenario_idle_device_loss(args: dict) -> dict:
    """Go idle; the parent restarts the sound server meanwhile; then play from idle."""
    x = np.load(args["input"]).astype(np.float32)
    events: list = []
    out = _output(args, events)
    res: dict = {}
    with out:
        _wait_for(lambda: out.stats().idle_stops > 0, 10.0)
        print("IDLE", flush=True)
        sys.stdin.readline()  # the parent has restarted the server
        out.wake()
        out.begin_utterance(1)
        out.write(x)
        out.end_utterance(1)
        res["played"] = out.wait_played(1, 20.0)
        time.sleep(out.output_latency_s + 0.1)
        res["stats"] = dataclasses.asdict(out.stats())
    res["events"] = [_ev(e) for e in events]
    return res


SCENARIOS = {
    "idle_device_loss": scenario_idle_device_loss,
    "idle": scenario_idle,
    "play": scenario_play,
    "abort": scenario_abort,
    "pause": scenario_pause,
    "devices": scenario_devices,
    "reconnect": scenario_reconnect,
}


def main() -> None:
    name = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    result = SCENARIOS[name](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
