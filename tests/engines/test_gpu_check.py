"""`scripts/gpu_check.py --cpu-smoke`: the GPU check's code runs on the CPU with a tiny model,
so the script a lent GPU machine runs cannot rot here. It runs as on a lent machine: without
piper-tts and PyYAML (blocked here by modules that raise ImportError)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_smoke_runs_without_piper_and_yaml(tmp_path):
    blocked = tmp_path / "blocked"
    for name in ("piper", "yaml"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    env = dict(os.environ, PYTHONPATH=str(blocked), OUT=str(tmp_path / "out"))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--reps", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cuda-graph logic" in done.stdout and "ttfa p50" in done.stdout
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["environment"]["stand_ins"] == ["yaml", "piper", "piper.phoneme_ids"]
    for row in report["rows"]:
        assert "error" not in row, row
        assert row["same_length"] and row["parity_rel"] < 1e-5
        assert row["ttfa_p50_ms"] > 0 and row["rtf"] > 0
    graph_row = report["rows"][1]
    assert graph_row["replay_vs_eager_rel"] == 0.0
    export = report["onnx_export"]
    assert max(export[f"{s}_rel"] for s in ("text", "flow", "decoder")) < 1e-5


def test_gpu_mode_refuses_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(SystemExit):
        _load_script().main([])
