#!/usr/bin/env python3
"""GPU check: every GPU engine available here, against the CPU fp32 reference.

Runs on a lent GPU machine (PyTorch with CUDA, numpy, onnx, onnxruntime; TensorRT optional; no
piper-tts or phonemizer needed, no internet). Without `--voice` it uses the medium architecture
with seeded random weights, random phoneme ids and fixed durations (6 frames per phoneme): the
same compute as a real medium voice, nothing to carry. With `--voice PATH` it loads that Piper
`.onnx` (a half-precision copy made by `--make-fp16-copy` is 32 MB and fits the 64 MiB a call
can carry; weights are widened back to fp32 on load, so the reference uses the same weights).

Prints one table row per engine and precision: relative L2 error of the streamed audio vs the
CPU fp32 whole-utterance reference (same sample count required), the decoder alone on the
reference z, time to first audio p50/p99 (encode + first decoder window; no text frontend),
real-time factor, load time, graph replay == eager, peak GPU memory. Writes the same as JSON to
`$OUT/gpu_check.json` when $OUT is set (or `--json PATH`), rewritten after every row so a
timeout keeps what was measured. Stays within `--budget-s` (default 420 s) by skipping rows.

`--cpu-smoke` runs the same code on the CPU with a tiny model in seconds (a test calls it, so the
script cannot rot on machines without a GPU).

Usage:
    python scripts/gpu_check.py                       # on the GPU machine
    python scripts/gpu_check.py --voice voice16.onnx  # a carried fp16 copy of a real voice
    python scripts/gpu_check.py --make-fp16-copy SRC.onnx DST.onnx
    python scripts/gpu_check.py --cpu-smoke
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _stand_in_missing_text_side() -> list[str]:
    """Lent GPU machines have no piper-tts or PyYAML; the check needs neither (no frontend, no
    config file), but `autovoice.engines` imports them. Missing ones get inert stand-ins that
    raise if anything actually calls them."""
    import types

    def refuse(*_args, **_kwargs):
        raise RuntimeError("not installed on this machine (gpu_check runs without it)")

    missing = []
    for name in ("yaml", "piper", "piper.phoneme_ids"):
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.safe_load = module.phonemes_to_ids = refuse
            module.YAMLError = RuntimeError
            sys.modules[name] = module
            missing.append(name)
    if "piper.phoneme_ids" in missing and "piper" in sys.modules:
        sys.modules["piper"].phoneme_ids = sys.modules["piper.phoneme_ids"]
    return missing


STAND_INS = _stand_in_missing_text_side()

import torch  # noqa: E402

from autovoice.config import StreamingConfig  # noqa: E402
from autovoice.engines.base import Scales  # noqa: E402
from autovoice.engines.cuda_graph_backend import CudaGraphBackend  # noqa: E402
from autovoice.engines.gpu_plan import (  # noqa: E402
    decode_planned,
    decoder_windows,
    frame_buckets,
    phoneme_buckets,
    stream_plan,
)
from autovoice.engines.gpu_random import random_ids, random_vits  # noqa: E402
from autovoice.engines.torch_backend import TorchBackend  # noqa: E402
from autovoice.engines.torch_vits import load_vits, medium_hparams, tiny_hparams  # noqa: E402

_STREAMING = StreamingConfig()  # the configured defaults
FIRST_CHUNK = _STREAMING.first_chunk_frames
MAX_CHUNK = _STREAMING.max_chunk_frames
HALO = _STREAMING.halo_frames
EXACT = Scales(noise_scale=0.0, length_scale=1.0, noise_w=0.0)
GPU_LENGTHS = (12, 40, 90, 180)
SMOKE_LENGTHS = (8, 30)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-12))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def make_fp16_copy(src: Path, dst: Path) -> None:
    """Write `src` with its float initializers in fp16 (half the size) and copy its .json."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(array.astype(np.float16), init.name))
    onnx.save(model, str(dst))
    shutil.copyfile(str(src) + ".json", str(dst) + ".json")
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB) and {dst}.json")


def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "tensorrt": importlib.util.find_spec("tensorrt") is not None,
        "date": time.strftime("%Y-%m-%d"),
        "stand_ins": STAND_INS,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    return info


class Check:
    """The check's state: model, utterances, CPU reference, rows, budget."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.smoke = args.cpu_smoke
        self.device = "cpu" if self.smoke else "cuda"
        self.started = time.monotonic()
        if args.voice:
            self.model, _hp, _cfg = load_vits(Path(args.voice))
            self.model_name = Path(args.voice).name
        else:
            hp = tiny_hparams() if self.smoke else medium_hparams()
            self.model = random_vits(hp, seed=0, frames_per_phoneme=6.0)
            self.model_name = "tiny (random)" if self.smoke else "medium (random, seed 0)"
        self.hp = self.model.hp
        lengths = SMOKE_LENGTHS if self.smoke else GPU_LENGTHS
        self.utterances = [random_ids(self.hp.n_vocab, n, seed=n) for n in lengths]
        self.windows = decoder_windows(FIRST_CHUNK, MAX_CHUNK, HALO)
        self.rows: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {
            "environment": environment(self.device),
            "model": self.model_name,
            "phoneme_lengths": list(lengths),
            "streaming": {"first_chunk": FIRST_CHUNK, "max_chunk": MAX_CHUNK, "halo": HALO},
            "rows": self.rows,
        }
        self.reference()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def reference(self) -> None:
        """CPU fp32 whole-utterance audio and z of every utterance."""
        started = time.monotonic()
        cpu = self.torch_backend("cpu", copy.deepcopy(self.model))
        self.ref_z = [cpu.encode(ids, EXACT) for ids in self.utterances]
        self.ref_audio = [cpu.decode(z) for z in self.ref_z]
        self.audio_s = sum(len(a) for a in self.ref_audio) / 22050
        self.report["reference"] = {
            "frames": [int(z.shape[1]) for z in self.ref_z],
            "audio_s": round(self.audio_s, 2),
            "seconds": round(time.monotonic() - started, 1),
        }

    def torch_backend(self, device: str, model: Any) -> TorchBackend:
        model.to(device)
        hp = self.hp
        return TorchBackend(
            model=model,
            device=torch.device(device),
            sample_rate=22050,
            hop_samples=hp.hop_samples,
            z_channels=hp.inter_channels,
            num_speakers=hp.n_speakers,
        )

    def graph_backend(self, precision: str, capture: bool) -> CudaGraphBackend:
        return CudaGraphBackend.from_model(
            copy.deepcopy(self.model),
            device=self.device,
            precision=precision,
            phoneme_sizes=phoneme_buckets(200),
            frame_sizes=frame_buckets(2048 if not self.smoke else 256),
            windows=self.windows,
            capture=capture,
        )

    def stream(self, backend: Any, ids: list[int]) -> tuple[np.ndarray, float, float]:
        """Streamed audio of one utterance, seconds to first audio, seconds in all."""
        windows = getattr(backend, "decoder_windows", ())
        started = time.perf_counter()
        z = backend.encode(ids, EXACT)
        plans = stream_plan(z.shape[1], FIRST_CHUNK, MAX_CHUNK, HALO, windows)
        pieces = []
        first = 0.0
        for audio in decode_planned(backend, z, None, plans):
            if not pieces:
                first = time.perf_counter() - started
            pieces.append(audio)
        return np.concatenate(pieces), first, time.perf_counter() - started

    def measure(self, label: str, precision: str, make: Any, twin: Any = None) -> None:
        row: dict[str, Any] = {"engine": label, "precision": precision}
        self.rows.append(row)
        if self.elapsed() > self.args.budget_s:
            row["error"] = "skipped (time budget)"
            return self.flush()
        try:
            if self.device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            started = time.monotonic()
            backend = make()
            row["load_s"] = round(time.monotonic() - started, 2)
            for key in ("graphs_active",):
                if hasattr(backend, key):
                    row[key] = getattr(backend, key)
            outputs = [self.stream(backend, ids)[0] for ids in self.utterances]  # warm-up too
            same = all(len(o) == len(r) for o, r in zip(outputs, self.ref_audio, strict=True))
            row["same_length"] = same
            if same:
                row["parity_rel"] = _rel(np.concatenate(outputs), np.concatenate(self.ref_audio))
            decoded = [
                np.concatenate(list(decode_planned(backend, z, None, self._plans(backend, z))))
                for z in self.ref_z
            ]
            row["decoder_rel"] = _rel(np.concatenate(decoded), np.concatenate(self.ref_audio))
            firsts, totals = [], 0.0
            for _ in range(self.args.reps):
                for ids in self.utterances:
                    _audio, first, total = self.stream(backend, ids)
                    firsts.append(first)
                    totals += total
            row["ttfa_p50_ms"] = round(1e3 * _percentile(firsts, 50), 2)
            row["ttfa_p99_ms"] = round(1e3 * _percentile(firsts, 99), 2)
            row["rtf"] = round(totals / (self.args.reps * self.audio_s), 4)
            if twin is not None:
                eager = twin()
                a = np.concatenate(outputs)
                b = np.concatenate([self.stream(eager, ids)[0] for ids in self.utterances])
                row["replay_vs_eager_rel"] = _rel(a, b) if len(a) == len(b) else float("nan")
                eager.close()
            row["eager_calls"] = getattr(backend, "eager_calls", None)
            if self.device == "cuda":
                row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
            backend.close()
        except Exception as exc:  # one engine failing must not lose the rest of the table
            row["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        return self.flush()

    def _plans(self, backend: Any, z: np.ndarray) -> list:
        windows = getattr(backend, "decoder_windows", ())
        return stream_plan(z.shape[1], FIRST_CHUNK, MAX_CHUNK, HALO, windows)

    def onnx_export(self) -> None:
        """Exported stages (TensorRT's input) in onnxruntime on the CPU vs the torch modules."""
        import onnxruntime as ort

        from autovoice.engines.gpu_export import (
            _Decoder,
            _Flow,
            _Text,
            example_inputs,
            export_stages,
        )

        result: dict[str, Any] = {}
        self.report["onnx_export"] = result
        if self.elapsed() > self.args.budget_s:
            result["error"] = "skipped (time budget)"
            return
        try:
            model = copy.deepcopy(self.model).cpu()
            with tempfile.TemporaryDirectory() as tmp:
                started = time.monotonic()
                paths = export_stages(model, Path(tmp))
                result["export_s"] = round(time.monotonic() - started, 1)
                wrappers = {"text": _Text, "flow": _Flow, "decoder": _Decoder}
                for stage, path in paths.items():
                    inputs = example_inputs(model, stage, 40)
                    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                    names = [i.name for i in session.get_inputs()]
                    got = session.run(
                        None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
                    )
                    with torch.inference_mode():
                        want = wrappers[stage](model)(*inputs)
                    want = want if isinstance(want, tuple) else (want,)
                    result[f"{stage}_rel"] = max(
                        _rel(g, w.numpy()) for g, w in zip(got, want, strict=True)
                    )
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        self.flush()

    def flush(self) -> None:
        self.report["elapsed_s"] = round(self.elapsed(), 1)
        path = self.args.json or (
            Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else None
        )
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(self.report, indent=1, default=str))


def run_gpu(check: Check) -> None:
    def torch_cuda() -> TorchBackend:
        return check.torch_backend("cuda", copy.deepcopy(check.model))

    check.measure("torch-cuda (eager)", "fp32", torch_cuda)
    precisions = ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    for precision in precisions:
        check.measure(
            "cuda-graph",
            precision,
            lambda p=precision: check.graph_backend(p, capture=True),
            twin=lambda p=precision: check.graph_backend(p, capture=False),
        )
    check.measure("cuda-graph (capture off)", "fp32", lambda: check.graph_backend("fp32", False))
    if importlib.util.find_spec("tensorrt") is not None:
        from autovoice.engines import tensorrt_backend
        from autovoice.engines.gpu_trt_cache import PlanCache

        cache = PlanCache(Path(os.environ.get("OUT") or tempfile.mkdtemp()) / "trt")
        for precision in ("fp32", "fp16"):

            def build(p=precision):
                return tensorrt_backend.build_backend(
                    copy.deepcopy(check.model).cpu(),
                    f"check-{check.model_name}",
                    p,
                    cache,
                    max_phonemes=512,
                    max_frames=2048,
                    windows=check.windows,
                    sample_rate=22050,
                )

            check.measure("tensorrt", precision, build)
    else:
        check.rows.append({"engine": "tensorrt", "error": "not installed"})
    check.onnx_export()


def run_smoke(check: Check) -> None:
    check.measure(
        "torch-cpu", "fp32", lambda: check.torch_backend("cpu", copy.deepcopy(check.model))
    )
    check.measure(
        "cuda-graph logic (cpu, eager)",
        "fp32",
        lambda: check.graph_backend("fp32", capture=False),
        twin=lambda: check.graph_backend("fp32", capture=False),
    )
    check.onnx_export()


COLUMNS = (
    ("engine", 28, "{}"),
    ("precision", 5, "{}"),
    ("parity_rel", 9, "{:.1e}"),
    ("decoder_rel", 9, "{:.1e}"),
    ("ttfa_p50_ms", 8, "{:.2f}"),
    ("ttfa_p99_ms", 8, "{:.2f}"),
    ("rtf", 7, "{:.4f}"),
    ("load_s", 6, "{:.1f}"),
    ("replay_vs_eager_rel", 9, "{:.1e}"),
    ("peak_gpu_mib", 6, "{}"),
)


def print_table(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"\nGPU check {env.get('date')}: {env.get('gpu', 'CPU smoke')} | torch {env['torch']} "
        f"| model {report['model']} | reference {report['reference']}"
    )
    heads = [
        "engine",
        "prec",
        "parity",
        "decoder",
        "ttfa p50",
        "ttfa p99",
        "RTF",
        "load s",
        "replay=eager",
        "MiB",
    ]
    print(" | ".join(h.ljust(w) for h, (_k, w, _f) in zip(heads, COLUMNS, strict=True)))
    for row in report["rows"]:
        cells = []
        for key, width, fmt in COLUMNS:
            value = row.get(key)
            cells.append(("-" if value is None else fmt.format(value)).ljust(width))
        line = " | ".join(cells)
        if row.get("error"):
            line += f"  ERROR {row['error']}"
        elif row.get("same_length") is False:
            line += "  (sample count differs from the reference: durations moved)"
        print(line)
    print(f"onnx export vs torch: {report.get('onnx_export')}")
    print(f"elapsed {report.get('elapsed_s')} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voice", help="a Piper .onnx (e.g. an fp16 copy); default random weights")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--reps", type=int, default=None, help="timing repetitions")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip rows after this")
    parser.add_argument("--json", type=Path, help="JSON path (default $OUT/gpu_check.json)")
    parser.add_argument("--make-fp16-copy", nargs=2, metavar=("SRC", "DST"), type=Path)
    args = parser.parse_args(argv)
    if args.make_fp16_copy:
        make_fp16_copy(*args.make_fp16_copy)
        return {}
    if args.reps is None:
        args.reps = 2 if args.cpu_smoke else 20
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error("no CUDA device here: run with --cpu-smoke, or on a GPU machine")
    check = Check(args)
    (run_smoke if args.cpu_smoke else run_gpu)(check)
    check.flush()
    print_table(check.report)
    return check.report


if __name__ == "__main__":
    main()
