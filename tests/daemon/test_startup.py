"""Start-up: with `engine: auto` on a machine without an NVIDIA GPU, `autovoice serve` speaks
without ever importing torch (the GPU probe decides; torch costs seconds and hundreds of MB).

torch is made unimportable for the daemon by a package of that name first on its path, which
leaves a mark when imported: the daemon must load, speak and stop without leaving one.
"""

from __future__ import annotations

import os

import pytest

from autovoice.daemon.testing import DaemonProcess, RawConnection
from autovoice.engines.gpu_probe import probe_nvidia_gpu
from tests.audio_fixtures import REPO_ROOT
from tests.daemon.conftest import write_config

pytestmark = pytest.mark.timeout(180)

TORCH_TRAP = """\
import os
open(os.environ["AUTOVOICE_TEST_TORCH_MARK"], "w").write("torch was imported")
raise ImportError("torch is hidden by the test")
"""


@pytest.mark.skipif(
    probe_nvidia_gpu().present is not False, reason="a GPU may be here: auto would use torch"
)
def test_auto_engine_without_gpu_serves_without_importing_torch(tmp_path):
    trap = tmp_path / "trap"
    (trap / "torch").mkdir(parents=True)
    (trap / "torch" / "__init__.py").write_text(TORCH_TRAP)
    mark = tmp_path / "torch-imported"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(trap), env.get("PYTHONPATH")]))
    env["AUTOVOICE_TEST_TORCH_MARK"] = str(mark)
    config = write_config(tmp_path / "config.yaml")
    config.write_text(config.read_text().replace("engine: onnx", "engine: auto"))
    daemon = DaemonProcess(
        tmp_path / "s.sock",
        ["--config", str(config), "--device", "null"],
        env=env,
        cwd=REPO_ROOT,
    )
    with daemon, RawConnection.connect(daemon.socket_path) as conn:
        conn.send({"cmd": "speak", "text": "No torch was needed for this.", "id": 1})
        conn.expect_types(1, ["queued", "started", "first_audio", "done"])
        status = conn.request({"cmd": "status", "id": "s"})["status"]
    assert status["engine"] == "onnx"
    assert any("no CUDA device" in line for line in status["engines"]["skipped"]), status
    assert not mark.exists(), daemon.log
