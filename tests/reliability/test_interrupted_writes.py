"""Case 9: a killed run leaves no litter; stale temporaries of sote's own naming are swept at the next run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from features.contract.io import sweep_stale, write_table
from features.contract.outputs import TEMP_PATTERN

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from pathlib import Path
from features.contract.io import atomic_dir, atomic_path
target, kind = Path(sys.argv[1]), sys.argv[2]
if kind == "file":
    with atomic_path(target) as tmp:
        tmp.write_text("half a risk list")
        print("ready", flush=True)
        time.sleep(60)
else:
    with atomic_dir(target) as tmp:
        (tmp / "clients.parquet").write_text("half a table")
        print("ready", flush=True)
        time.sleep(60)
"""


def _litter(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if TEMP_PATTERN.match(p.name)]


@pytest.mark.parametrize("kind, sig", [("file", signal.SIGTERM), ("dir", signal.SIGINT)])
def test_a_signal_mid_write_removes_the_temporary_and_keeps_the_previous_output(tmp_path, kind, sig):
    target = tmp_path / ("risk.parquet" if kind == "file" else "county")
    if kind == "file":
        write_table(pd.DataFrame({"x": [1]}), target)  # an earlier output of sote
        before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert _litter(tmp_path), "the writer should have a temporary while it writes"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
    assert _litter(tmp_path) == []
    if kind == "file":
        assert target.read_bytes() == before
    else:
        assert not target.exists()


def test_a_synth_run_killed_by_sigterm_leaves_no_folder_behind(tmp_path):
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sote"), "synth", "--out", str(tmp_path / "county2"),
                             "--clients", "4000", "--truth-reps", "1", "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not _litter(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "synth finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".sote-manifest.json") == []


def test_stale_temporaries_of_dead_runs_are_swept_and_nothing_else(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    old = time.time() - 3600
    stale_file = tmp_path / f".risk.parquet.sote-{dead}-0badc0de.tmp"
    stale_dir = tmp_path / f".county.sote-{dead}-0badc0de.tmp"
    live = tmp_path / f".other.parquet.sote-{os.getppid()}-00c0ffee.tmp"  # a running process's write
    mine = tmp_path / ".thesis.txt.tmp"  # the user's own file with a similar name
    stale_file.write_text("x")
    stale_dir.mkdir()
    (stale_dir / "clients.parquet").write_text("x")
    for p in (live, mine):
        p.write_text("keep")
    for p in (stale_file, stale_dir, live, mine):
        os.utime(p, (old, old))
    write_table(pd.DataFrame({"x": [1]}), tmp_path / "risk.parquet")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.read_text() == "keep" and mine.read_text() == "keep"
    fresh = tmp_path / f".new.parquet.sote-{dead}-0000abcd.tmp"
    fresh.write_text("x")  # newer than this process: a run that started after us; left alone
    assert sweep_stale(tmp_path) == [] and fresh.exists()
