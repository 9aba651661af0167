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


def append_results(frame, path, **columns):
    """Stamp a benchmark's result rows (date first; then ``columns``, cpus, machine) and append them to a CSV.

    Parameters
    ----------
    frame
        One row per measured run (a pandas DataFrame; changed in place and returned).
    path
        The results CSV; the header is written only when the file is new.
    **columns
        Constant columns describing the run (e.g. ``risklist=name``).
    """
    import os
    import platform
    from pathlib import Path

    import pandas as pd

    frame.insert(0, "date", pd.Timestamp.now().strftime("%Y-%m-%d %H:%M"))
    for name, value in columns.items():
        frame[name] = value
    frame["cpus"] = os.cpu_count()
    frame["machine"] = platform.machine()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)
    return frame
