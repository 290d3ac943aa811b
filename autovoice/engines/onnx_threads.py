"""onnxruntime's threads: a sleeping pool per session, or one spinning pool for the process.

By default each session has its own intra-op pool whose idle threads sleep at once: safe beside
any other onnxruntime user in the process. A process that owns its onnxruntime environment (the
daemon) can instead call `enable_shared_pool`: every session then runs on onnxruntime's one
process-wide pool, whose threads spin for a moment after each run, so the next small run (the
prior, a flow window, a decoder chunk: thousands of tiny ops) starts without waking threads.
With one pool only one set of threads spins; a spinning pool per session would starve the
others on a small machine.

onnxruntime refuses per-session pools once its global pool exists, so after
`enable_shared_pool` every session in the process must come from `session_options`.

Thread: any (call `enable_shared_pool` before loading voices). RT-safe: no.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["enable_shared_pool", "session_options", "shared_pool_threads"]

# onnxruntime's environment is process-wide; this mirrors whether its global pool was made.
_shared_threads: int | None = None
_lock = threading.Lock()


def _thread_count(threads: int) -> int:
    return threads or (os.cpu_count() or 1)


def enable_shared_pool(threads: int = 0) -> int:
    """Make onnxruntime's process-wide pool (`threads`, 0 = one per core); return its size.

    Idempotent: a later call keeps the first size (onnxruntime cannot resize it).
    """
    global _shared_threads
    from onnxruntime.capi import _pybind_state

    with _lock:
        if _shared_threads is None:
            try:
                _pybind_state.set_global_thread_pool_sizes(_thread_count(threads), 1)
            except _pybind_state.Fail as exc:  # made before us, by other code: use it
                if "already been created" not in str(exc):
                    raise
            _shared_threads = _thread_count(threads)
        return _shared_threads


def shared_pool_threads() -> int | None:
    """Size of the shared pool, or None while sessions get pools of their own."""
    return _shared_threads


def session_options(threads: int = 0) -> Any:
    """`onnxruntime.SessionOptions` for a CPU session, on the shared pool when enabled.

    Args:
        threads: Intra-op threads of a session's own pool (0 = one per core); ignored on the
            shared pool, which has its own size.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if _shared_threads is not None:
        options.use_per_session_threads = False
        return options
    options.intra_op_num_threads = _thread_count(threads)
    options.inter_op_num_threads = 1
    # idle threads sleep: a spinning pool per session starves the others and the daemon's own
    # threads (audio callback, event loop) on small machines
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
