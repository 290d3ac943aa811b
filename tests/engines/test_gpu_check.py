"""`scripts/gpu_check.py --cpu-smoke`: the GPU check's code runs on the CPU with a tiny model,
so the script a lent GPU machine runs cannot rot here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_smoke_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    report = _load_script().main(["--cpu-smoke", "--reps", "1", "--json", str(out)])
    table = capsys.readouterr().out
    assert "cuda-graph logic" in table and "ttfa p50" in table
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(report["rows"], default=str))
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
