#!/usr/bin/env python3
"""Where the milliseconds of time-to-first-audio go, stage by stage, in-process.

For each benchmark sentence: text -> first unit (espeak-ng phonemes + ids); the encoder on that
unit (text encoder and durations; with the onnx engine the flow runs lazily, per window); and
the first chunk (the flow over its window, where lazy, then the decoder with its halo). Compare
with `autovoice bench` (through the daemon and the device) to see what the daemon and audio add.

    .venv/bin/python scripts/profile_ttfa.py [--repeats 20] [--engine onnx] [--threads N]
        [--first-unit PHONEMES] [--first-chunk FRAMES] [--halo FRAMES] [--no-trim]
"""

from __future__ import annotations

import argparse
import statistics
import time

from autovoice.bench.sentences import SENTENCES
from autovoice.config import config_from_dict
from autovoice.engines import SpeakOptions, Synthesizer
from autovoice.engines.gpu_plan import decode_one
from autovoice.engines.lead_in import lead_frames
from autovoice.engines.streaming import chunk_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--engine", default="onnx")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all)")
    parser.add_argument("--first-unit", type=int, help="streaming.first_unit_phonemes")
    parser.add_argument("--first-chunk", type=int, help="streaming.first_chunk_frames")
    parser.add_argument("--halo", type=int, help="streaming.halo_frames")
    parser.add_argument("--no-trim", action="store_true", help="streaming.trim_lead_in false")
    args = parser.parse_args()
    streaming = {}
    if args.first_unit is not None:
        streaming["first_unit_phonemes"] = args.first_unit
    if args.first_chunk is not None:
        streaming["first_chunk_frames"] = args.first_chunk
    if args.halo is not None:
        streaming["halo_frames"] = args.halo
    if args.no_trim:
        streaming["trim_lead_in"] = False
    config = config_from_dict(
        {
            "engine": args.engine,
            "engines": {"onnx": {"threads": args.threads}},
            "streaming": streaming,
        }
    )
    synth = Synthesizer.load(config)
    s = config.streaming
    scales, _ = synth.scales(SpeakOptions())
    print(
        f"engine {synth.engine_name}, threads {args.threads or 'all'}, first unit "
        f"{s.first_unit_phonemes} phonemes, first chunk {s.first_chunk_frames} frames, "
        f"medians of {args.repeats}"
    )
    print(
        f"{'length':8} {'phonemes':>8} {'frontend':>9} {'encoder':>8} {'1st chunk':>9} "
        f"{'total':>7}   (ms)"
    )
    encode = getattr(synth.backend, "encode_lazy", synth.backend.encode)
    bos = synth.voice.phoneme_id_map.get("^", [None])[0]
    for kind, texts in SENTENCES.items():
        rows = []
        for _ in range(args.repeats):
            for text in texts:
                t0 = time.perf_counter()
                unit = next(synth.frontend.units(text))
                t1 = time.perf_counter()
                z = encode(list(unit.ids), scales)
                t2 = time.perf_counter()
                skip, extra = (0, 0)
                if s.trim_lead_in:  # as the daemon does: the quiet BOS frames are not decoded
                    skip, extra = lead_frames(unit.ids, getattr(z, "durations", None), bos)
                plan = chunk_plan(
                    z.shape[1],
                    s.first_chunk_frames + extra,
                    s.max_chunk_frames,
                    s.halo_frames,
                    skip,
                )[0]
                decode_one(synth.backend, z, None, plan)
                t3 = time.perf_counter()
                rows.append((len(unit.phonemes), t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        med = [statistics.median(r[i] for r in rows) for i in range(5)]
        print(
            f"{kind:8} {med[0]:>8.0f} {med[1] * 1e3:>9.1f} {med[2] * 1e3:>8.1f} "
            f"{med[3] * 1e3:>9.1f} {med[4] * 1e3:>7.1f}"
        )
    synth.close()


if __name__ == "__main__":
    main()
