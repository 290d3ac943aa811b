"""The GPU probe: decides without torch, and agrees with torch where both can tell."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from autovoice.engines.gpu_probe import probe_nvidia_gpu


def test_no_driver_device_node_means_no_gpu(tmp_path):
    probe = probe_nvidia_gpu(dev=tmp_path)
    assert probe.present is False and probe.count == 0
    assert str(tmp_path / "nvidiactl") in probe.reason


def test_a_device_node_without_a_loadable_driver_means_no_gpu(tmp_path):
    (tmp_path / "nvidiactl").touch()  # a node is there, but no CUDA driver library is
    probe = probe_nvidia_gpu(dev=tmp_path, libcuda="libcuda-autovoice-absent.so.1")
    assert probe.present is False
    assert "CUDA driver not loadable" in probe.reason


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_probe_agrees_with_torch_and_does_not_import_it():
    """In a fresh interpreter: the probe leaves torch unimported, then torch says the same."""
    code = (
        "import sys\n"
        "from autovoice.engines.gpu_probe import probe_nvidia_gpu\n"
        "probe = probe_nvidia_gpu()\n"
        "assert 'torch' not in sys.modules, 'the probe imported torch'\n"
        "import torch\n"
        "print(probe.present, torch.cuda.is_available(), probe.reason)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split(maxsplit=2)
    present, torch_says = out[0], out[1]
    if present == "None":
        pytest.skip("this system cannot be probed without torch")
    assert present == torch_says, out
