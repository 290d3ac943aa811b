"""Is there an NVIDIA GPU? Found out without importing torch (2 s and ~300 MB on a CPU machine).

Two cheap steps: a Linux machine whose driver exposes no device node (`/dev/nvidiactl`, or WSL's
`/dev/dxg`) has no usable GPU; otherwise the CUDA driver itself (`libcuda.so.1`, loaded with
ctypes) is asked how many devices it sees (`cuInit`, `cuDeviceGetCount`; it honours
`CUDA_VISIBLE_DEVICES` as torch does). PyTorch's CUDA needs that same driver library, so when it
is missing or finds no device, no torch engine could use a GPU either. On other systems the
probe cannot tell (`present` is None) and the caller asks torch.

Thread: any (start-up and reload). RT-safe: no.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GpuProbe", "probe_nvidia_gpu"]

DEVICE_NODES = ("nvidiactl", "dxg")
"""Device nodes of the NVIDIA driver (native Linux and containers; WSL2), under /dev."""
LIBCUDA = "libcuda.so.1"
CUDA_SUCCESS = 0
CUDA_ERROR_NO_DEVICE = 100


@dataclass(frozen=True)
class GpuProbe:
    """What the probe found.

    Attributes:
        present: True: the driver sees `count` GPUs; False: none can be used; None: this
            system cannot be probed without torch.
        count: Devices the CUDA driver reports (0 unless present).
        reason: One line saying how it was decided.
    """

    present: bool | None
    count: int
    reason: str


def probe_nvidia_gpu(dev: Path = Path("/dev"), libcuda: str = LIBCUDA) -> GpuProbe:
    """Probe for an NVIDIA GPU the CUDA driver can use, without importing torch.

    Args:
        dev: Where device nodes live (a test may point it elsewhere).
        libcuda: The CUDA driver library to load.
    """
    if not sys.platform.startswith("linux"):
        return GpuProbe(None, 0, f"cannot probe on {sys.platform}")
    if not any((dev / name).exists() for name in DEVICE_NODES):
        nodes = " or ".join(str(dev / name) for name in DEVICE_NODES)
        return GpuProbe(False, 0, f"no NVIDIA driver device node: {nodes}")
    try:
        cuda = ctypes.CDLL(libcuda)
    except OSError as exc:
        return GpuProbe(False, 0, f"CUDA driver not loadable ({exc})")
    result = cuda.cuInit(0)
    if result == CUDA_ERROR_NO_DEVICE:
        return GpuProbe(False, 0, "the CUDA driver sees no device")
    if result != CUDA_SUCCESS:
        return GpuProbe(False, 0, f"cuInit failed (CUresult {result})")
    count = ctypes.c_int(0)
    result = cuda.cuDeviceGetCount(ctypes.byref(count))
    if result != CUDA_SUCCESS:
        return GpuProbe(False, 0, f"cuDeviceGetCount failed (CUresult {result})")
    if count.value < 1:
        return GpuProbe(False, 0, "the CUDA driver sees no device")
    return GpuProbe(True, count.value, f"the CUDA driver sees {count.value} device(s)")
