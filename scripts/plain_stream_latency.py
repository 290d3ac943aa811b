#!/usr/bin/env python3
"""A plain PortAudio stream's delay to the device, per block size / latency / rate / channels.

A child process (no AutoVoice code) opens a stream on ALSA's default PCM, which
`autovoice.bench.heard` points at its tee'd paced PulseAudio null sink, and plays 12 tone
bursts, each from a moment it prints; measured at the device: moment -> first audible sample,
and burst end -> last audible sample. The yardstick for what our own stream should reach.

    .venv/bin/python scripts/plain_stream_latency.py RATE,CHANNELS,BLOCK,LATENCY ...
    e.g. 22050,2,220,low 22050,2,66,low 22050,2,0,low   (BLOCK 0: PortAudio's choice)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from autovoice.bench.heard import start_heard_device

_PLAYER = r"""
import sys, time, sounddevice as sd
rate, ch, block, lat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lat = float(lat) if lat[0].isdigit() else lat
st = {"on": None, "off": None}
def cb(out, n, t, s):
    now = time.monotonic()
    on = st["on"] is not None and now >= st["on"] and (st["off"] is None or now < st["off"])
    out[:] = 0.25 if on else 0.0
with sd.OutputStream(samplerate=rate, channels=ch, dtype="float32", latency=lat,
                     blocksize=block, callback=cb) as s:
    time.sleep(0.5)
    print("latency", s.latency, flush=True)
    for i in range(12):
        st["off"] = None; st["on"] = time.monotonic(); print("on", st["on"], flush=True)
        time.sleep(0.25)
        st["off"] = time.monotonic(); print("off", st["off"], flush=True)
        time.sleep(0.25)
"""


def main() -> None:
    with start_heard_device() as dev:
        for spec in sys.argv[1:]:
            rate, channels, block, latency = spec.split(",")
            result = subprocess.run(
                [sys.executable, "-c", _PLAYER, rate, channels, block, latency],
                env={**os.environ, **dev.env},
                capture_output=True,
                text=True,
                timeout=60,
            )
            marks = [line.split() for line in result.stdout.splitlines()]
            ons = [float(v) for k, v in marks if k == "on"]
            offs = [float(v) for k, v in marks if k == "off"]
            reported = next((float(v) for k, v in marks if k == "latency"), float("nan"))
            onset = [(dev.capture.first_audible_after(t, 1.0) or t) - t for t in ons]
            tail = [(dev.capture.last_audible_between(t, t + 0.2) or t) - t for t in offs]
            print(
                f"{spec:22} reported {reported * 1e3:5.1f} ms  moment -> device p50 "
                f"{statistics.median(onset) * 1e3:5.1f} ms  stop -> silence p50 "
                f"{statistics.median(tail) * 1e3:5.1f} ms  ALSA underruns "
                f"{result.stderr.count('underrun occurred')}",
                flush=True,
            )


if __name__ == "__main__":
    main()
