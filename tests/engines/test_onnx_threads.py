"""onnxruntime thread pools: a sleeping pool per session, or the daemon's one shared pool.

Each case runs in a fresh interpreter: onnxruntime's environment (and its global pool) is
process-wide, so it must not leak into the other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import json, os, sys
    from autovoice.engines import onnx_threads
    from autovoice.engines.base import Scales
    from autovoice.engines.onnx_backend import OnnxBackend
    from autovoice.engines.voice import default_voice_path

    def threads():
        return len(os.listdir("/proc/self/task"))

    before = threads()
    if sys.argv[1] == "shared":
        onnx_threads.enable_shared_pool(2)
        onnx_threads.enable_shared_pool(4)  # a second call keeps the first size
    first = OnnxBackend.load(default_voice_path(), threads=2)
    after_one = threads()
    second = OnnxBackend.load(default_voice_path(), threads=2)
    after_two = threads()
    z = first.encode(list(range(1, 30)), Scales(0.0, 1.0, 0.0))
    audio_one = first.decode(z)
    audio_two = second.decode(z)
    print(json.dumps({
        "pool_size": onnx_threads.shared_pool_threads(),
        "first": after_one - before,
        "second": after_two - after_one,
        "same_audio": bool((audio_one == audio_two).all()),
        "samples": len(audio_one),
    }))
    """
)


def _probe(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["per-session", "shared"])
def test_thread_pools(mode: str) -> None:
    result = _probe(mode)
    assert result["samples"] > 0 and result["same_audio"]
    if mode == "shared":
        assert result["pool_size"] == 2
        # one pool for the process, one worker beside the caller; a second voice adds none
        assert result["first"] == 1
        assert result["second"] == 0
    else:
        assert result["pool_size"] is None
        # a pool per session (prior, flow, decoder), one worker each with 2 threads
        assert result["first"] == 3
        assert result["second"] == 3
