"""How much a running daemon pays to keep its voice list current (`VoiceRegistry`).

Makes N stub voices (the default voice's config beside a 2 KiB model) in 40 language
directories, then times the first scan, a listing with nothing changed (the daemon's cost per
`voices` / LIST SYNTHESIS_VOICES / Wyoming info), and the rescan after one voice is added.

    .venv/bin/python scripts/bench_voice_registry.py [--voices 120]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autovoice.engines.voice import default_voice_path  # noqa: E402
from autovoice.engines.voice_registry import VoiceRegistry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=120)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="autovoice-registry-"))
    config = Path(f"{default_voice_path()}.json").read_bytes()
    try:
        for i in range(args.voices):
            sub = root / f"lang{i % 40}"
            sub.mkdir(exist_ok=True)
            (sub / f"v{i}.onnx").write_bytes(b"\0" * 2048)
            (sub / f"v{i}.onnx.json").write_bytes(config)
        past = time.time_ns() - 10**10  # as if installed a while ago
        for directory in [root, *root.iterdir()]:
            os.utime(directory, ns=(past, past))
        registry = VoiceRegistry(root)
        started = time.perf_counter()
        count = len(registry.voices())
        first_ms = (time.perf_counter() - started) * 1e3
        times = []
        for _ in range(100):
            started = time.perf_counter()
            registry.voices()
            times.append((time.perf_counter() - started) * 1e3)
        times.sort()
        rescans = registry.scans - 1
        (root / "lang0" / "new.onnx.json").write_bytes(config)
        (root / "lang0" / "new.onnx").write_bytes(b"\0" * 2048)
        started = time.perf_counter()
        after = len(registry.voices())
        rescan_ms = (time.perf_counter() - started) * 1e3
        print(
            f"{count} voices: first scan {first_ms:.1f} ms; unchanged list p50 {times[50]:.2f} ms,"
            f" max {times[-1]:.2f} ms ({rescans} rescans); after an install "
            f"{rescan_ms:.1f} ms ({after} voices)"
        )
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
