"""Does batching overlapping requests pay? The onnx decoder (most of a chunk's work) on two
requests' latent windows: one batch of 2, against two runs one after another, against two threads
running at once (what the synthesis pool does). Interleaved, so machine load hits all three alike.

    python scripts/bench_batching.py [--frames 32 128] [--repeats 20]

Prints the median milliseconds per pair of windows for each way.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

from autovoice.engines.onnx_backend import OnnxBackend
from autovoice.engines.voice import default_voice_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    backend = OnnxBackend.load(default_voice_path())
    decoder = backend.decoder
    name = decoder.get_inputs()[0].name
    rng = np.random.default_rng(0)
    for frames in args.frames:
        one = rng.standard_normal((1, backend.z_channels, frames)).astype(np.float32)
        other = rng.standard_normal((1, backend.z_channels, frames)).astype(np.float32)
        pair = np.concatenate([one, other])

        def serial(one=one, other=other) -> None:
            decoder.run(None, {name: one})
            decoder.run(None, {name: other})

        def batched(pair=pair) -> None:
            decoder.run(None, {name: pair})

        def threads(one=one, other=other) -> None:
            workers = [
                threading.Thread(target=decoder.run, args=(None, {name: z})) for z in (one, other)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        ways = {"serial": serial, "batch of 2": batched, "2 threads": threads}
        for way in ways.values():  # warm-up
            way()
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.repeats):
            for label, way in ways.items():
                started = time.perf_counter()
                way()
                times[label].append((time.perf_counter() - started) * 1e3)
        row = ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in times.items())
        print(f"{frames:4d} frames x 2 requests: {row}")


if __name__ == "__main__":
    main()
