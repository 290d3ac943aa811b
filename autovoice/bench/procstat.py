"""CPU time and context switches of a running process, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["proc_cpu_s", "thread_switches"]


def proc_cpu_s(pid: int) -> float:
    """utime + stime of process `pid`, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_switches(pid: int) -> dict[str, int]:
    """Context switches so far of each thread of process `pid` ("tid name" -> count)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            name = (task / "comm").read_text().strip()
        except FileNotFoundError:  # the thread ended
            continue
        out[f"{task.name} {name}"] = sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return out
