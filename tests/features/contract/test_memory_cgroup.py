"""Streaming validation completes inside a kernel-enforced memory limit that kills the in-memory path.

The limit is a memory cgroup (v1 ``memory.limit_in_bytes``, or v2 ``memory.max``) the
child process is moved into before it starts Python: the kernel enforces it on
resident memory (an address-space rlimit cannot: DuckDB and Arrow reserve gigabytes
of virtual memory they never touch; measured VmPeak 2.4 GB for a streaming run that
peaks at 0.27 GB resident). Without a writable memory cgroup (not root, a container
without the controller) the test is skipped with the reason; the peak-memory check
in ``test_stream_memory.py`` runs everywhere.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_stream_memory import CHILD, make_county  # noqa: E402  (same folder)

V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup/unified")


def make_limit(limit_mb: int) -> tuple[Path, Path]:
    """A fresh memory cgroup limited to ``limit_mb``; returns (its folder, the file a pid is written to)."""
    name = f"sote-test-{uuid.uuid4().hex[:12]}"
    for root, limit_file in ((V1, "memory.limit_in_bytes"), (Path("/sys/fs/cgroup"), "memory.max"), (V2, "memory.max")):
        folder = root / name
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            (folder / limit_file).write_text(str(limit_mb * 2**20))
            if limit_file == "memory.limit_in_bytes" and (folder / "memory.memsw.limit_in_bytes").exists():
                (folder / "memory.memsw.limit_in_bytes").write_text(str(limit_mb * 2**20))
            return folder, folder / "cgroup.procs"
        except OSError:
            folder.rmdir()
    pytest.skip("no writable memory cgroup here (needs root and the memory controller)")


def run_limited(limit_mb: int, mode: str, data: Path, batch_rows: int) -> subprocess.CompletedProcess:
    """Run one validation (``CHILD`` of test_stream_memory) as a child confined to ``limit_mb`` of memory."""
    folder, procs = make_limit(limit_mb)
    try:
        # the shell joins the cgroup, then becomes Python: every byte of the run is counted
        script = f'echo $$ > "{procs}" && exec "{sys.executable}" -c "$0" "$@"'
        return subprocess.run(["sh", "-c", script, CHILD, mode, str(data), str(batch_rows)],
                              capture_output=True, text=True, timeout=300)
    finally:
        for _ in range(50):
            try:
                folder.rmdir()
                break
            except OSError:  # the killed child's memory is still being uncharged
                time.sleep(0.1)


def check_limited(tmp_path, events: int, batch_rows: int, limit_mb: int) -> None:
    """Streaming validation of ``events`` completes inside ``limit_mb``; the in-memory path is stopped by it."""
    large = make_county(tmp_path / "large", events=events)
    streamed = run_limited(limit_mb, "stream", large, batch_rows)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert streamed.stdout.split("\n")[-3].split()[0] == str(events)  # every event validated and kept
    in_memory = run_limited(limit_mb, "in_memory", large, batch_rows)
    killed = in_memory.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL) or "MemoryError" in in_memory.stderr
    assert killed, f"the in-memory path was not stopped by the {limit_mb} MB limit (exit {in_memory.returncode})"


def test_streaming_validation_completes_inside_a_limit_that_kills_the_in_memory_path(tmp_path):
    # measured: 2 M events streamed in batches of 50,000 peak at 271 MB resident, the in-memory path at 564 MB
    check_limited(tmp_path, events=2_000_000, batch_rows=50_000, limit_mb=400)


@pytest.mark.slow
def test_streaming_validation_completes_inside_a_limit_at_eight_million_events(tmp_path):
    # the slow twin at four times the size: streamed in batches of 200,000 (~0.5 GB), the in-memory path needs ~2 GB
    check_limited(tmp_path, events=8_000_000, batch_rows=200_000, limit_mb=700)
