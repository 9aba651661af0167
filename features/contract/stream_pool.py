"""Worker processes that run the fast path of streaming validation on a table's batches at once.

A large Parquet table is cut into *tasks* of whole row groups (about
``batch_rows`` rows each). The validating process takes the first task itself
(its first rows go through pandas: they fix the written schema), then hands
the others to worker processes (forked: Linux only), which read their row groups and run
:func:`features.contract.stream_fast.check_batch` on each batch. Results come
back in task order, at most a few tasks ahead (memory stays bounded by the
batch): a batch the fast path took is recorded and written by the validating
process, in row order, exactly as if it had taken it itself; a batch that needs
pandas comes back as read and goes through pandas there. So the output and
the report are those of one process, only sooner.

The number of workers is :func:`workers` (``SOTE_VALIDATE_WORKERS``, default:
the cores, at most 2); a table under :data:`MIN_ROWS` rows, a CSV file or a
Parquet folder is validated in one process.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Tables with fewer rows are validated in one process: starting a worker costs about a second of CPU and
#: its own ~150 MB of libraries, which a small table does not repay (and under a memory limit on the whole
#: process tree, e.g. a container's, the workers' memory counts too).
MIN_ROWS = 5_000_000
#: Tasks handed out ahead of the one being recorded, per worker.
AHEAD = 2

_state: dict = {}


def workers() -> int:
    """Worker processes for validation: ``$SOTE_VALIDATE_WORKERS`` if set (0 or 1: none), else min(2, cores).

    None where processes cannot be forked (not Linux): a spawned worker imports the caller's main script
    again, which a script without an ``if __name__ == "__main__"`` guard does not survive.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or not sys.platform.startswith("linux"):
        return 0
    raw = os.environ.get("SOTE_VALIDATE_WORKERS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"SOTE_VALIDATE_WORKERS={raw!r} is not a whole number of worker processes") from None
    else:
        n = min(2, os.cpu_count() or 1)
    return n if n >= 2 else 0


def tasks(path: Path, batch_rows: int) -> list[tuple[list[int], int]] | None:
    """The row groups of a Parquet file in tasks of about ``batch_rows`` rows: (row groups, first row); None if not a
    large single Parquet file."""
    if not path.is_file() or path.suffix != ".parquet":
        return None
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError, ValueError):
        return None  # the reader names the problem
    if meta.num_rows < MIN_ROWS:
        return None
    out, groups, first, rows = [], [], 0, 0
    for i in range(meta.num_row_groups):
        groups.append(i)
        rows += meta.row_group(i).num_rows
        if rows >= batch_rows:
            out.append((groups, first))
            groups, first, rows = [], first + rows, 0
    if groups:
        out.append((groups, first))
    return out if len(out) > 2 else None


def read_task(path: Path, table: str, groups: list[int], batch_rows: int):
    """The batches of some row groups of a table file, as :func:`features.contract.io.iter_arrow_batches` reads them."""
    from features.contract.io import UnreadableTable, coalesce

    try:
        source = pq.ParquetFile(path)
        yield from coalesce(source.iter_batches(batch_size=batch_rows, row_groups=groups), source.schema_arrow,
                            batch_rows)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise UnreadableTable(f"table '{table}' ({path}) cannot be read as Parquet (damaged or incomplete "
                              f"file?): {str(err).strip()}") from None


def _start(lookup: pd.DataFrame | None, latest: pd.Timestamp, parent: int) -> None:
    from features.contract.stream_fast import FastLookup

    # a worker whose validating process died (killed outright) exits instead of waiting on its pipes forever
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    _state.clear()
    _state.update(lookup=FastLookup(lookup) if lookup is not None else None, latest=latest, paths={})


def _orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _work(path: Path, table: str, groups: list[int], batch_rows: int, options: dict, spill: Path) -> list:
    """One task in a worker: each batch as a FastBatch, or as read (pa.Table) when it needs pandas.

    A FastBatch's rows to write go back through an Arrow IPC file ``spill`` + ``.<i>`` (memory-mapped by the
    validating process: one copy instead of pickling them through a pipe); its ``table`` is then the file's path.
    """
    from features.contract.stream_fast import FastPath, check_batch

    key = ("fast", table)
    if key not in _state:
        _state[key] = FastPath(table, _state["latest"], _state["lookup"])
    fast = _state[key]
    out = []
    for i, raw in enumerate(read_task(path, table, groups, batch_rows)):
        found = check_batch(fast, raw, **options)
        if found is not None and found.table is not None:
            file = spill.with_name(f"{spill.name}.{i}")
            with pa.OSFile(str(file), "wb") as sink, pa.ipc.new_file(sink, found.table.schema) as writer:
                writer.write_table(found.table)
            found.table = file
        out.append(raw if found is None else found)
    return out


def _load(found):
    """A worker's FastBatch with its rows read back from their IPC file (removed)."""
    if isinstance(found.table, Path):
        file = found.table
        with pa.memory_map(str(file)) as source:
            found.table = pa.ipc.open_file(source).read_all()
        file.unlink()
    return found


class Pool:
    """Worker processes for one validation (started when the first large table needs them).

    ``spill`` is a folder of the validation's own (removed with it) for the rows coming back.
    """

    def __init__(self, n: int, lookup: pd.DataFrame | None, latest: pd.Timestamp, spill: Path):
        self.n, self.lookup, self.latest = n, lookup, latest
        self.spill, self.tasks = spill, 0
        self.executor: ProcessPoolExecutor | None = None

    def run(self, scan, path: Path, jobs: list[tuple[list[int], int]], batch_rows: int, date_format) -> None:
        """Validate the rows of ``jobs`` (all but a table's first task) with the workers, recording them in order."""
        if self.executor is None:
            # forked (a copy of this process: nothing imported again, the lookup not pickled); after the
            # table's first task, when no reader thread is busy
            self.executor = ProcessPoolExecutor(self.n, mp_context=multiprocessing.get_context("fork"),
                                                initializer=_start, initargs=(self.lookup, self.latest, os.getpid()))
        options = scan.fast_options()
        pending: deque = deque()
        queue = iter(jobs)
        for _ in range(self.n * AHEAD):
            self._submit(pending, queue, scan.table, path, batch_rows, options)
        while pending:
            offset, future = pending.popleft()
            results = future.result()
            self._submit(pending, queue, scan.table, path, batch_rows, options)
            for result in results:
                n = result.num_rows if isinstance(result, pa.Table) else result.rows
                if isinstance(result, pa.Table):
                    scan.arrow_batch(result, offset, date_format, fast=False)
                else:
                    scan.take_fast(_load(result), offset)
                offset += n

    def _submit(self, pending: deque, queue, table: str, path: Path, batch_rows: int, options: dict) -> None:
        job = next(queue, None)
        if job is not None:
            groups, first = job
            self.tasks += 1
            spill = self.spill / f"{table}-{self.tasks}"
            pending.append((first, self.executor.submit(_work, path, table, groups, batch_rows, options, spill)))

    def close(self, *, failed: bool = False) -> None:
        """Stop the workers; after a failure (``failed``) without waiting for the tasks they are running."""
        if self.executor is not None:
            self.executor.shutdown(wait=not failed, cancel_futures=True)
            self.executor = None
