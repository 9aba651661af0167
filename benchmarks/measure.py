"""Measuring helpers shared by the benchmarks."""
from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM).

    Not ``ru_maxrss``: Linux carries that across fork and exec, so a child
    would report its parent's peak whenever the parent was the larger.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
