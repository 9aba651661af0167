"""The small engine interface the feature SQL runs behind, and its DuckDB default.

An engine knows four things: how to expose a table under a name (a pandas
DataFrame, or a Parquet file or folder), which columns a table has, how to run
one SQL query into a pandas DataFrame, and how to write a query's result to
Parquet without bringing it into pandas (a file, or a folder partitioned by
some columns, published atomically). The SQL the compiler emits is DuckDB
dialect restricted to what sqlglot transpiles to Spark SQL, so the Spark engine
(:mod:`features.histories.engine_spark`) is the same four methods over a
SparkSession (see docs/features.md and docs/spark.md).

A written folder follows one layout whichever engine wrote it: Hive-style
``<column>=<value>/`` subfolders holding ``*.parquet`` files, and an empty
``_SUCCESS`` marker written last (:data:`SUCCESS`); readers take a folder only
when the marker is there (:func:`read_parquet_output`).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from features.contract.io import atomic_dir, atomic_path
from features.contract.stream import no_progress_bar

#: The marker file a complete Parquet output folder holds (Spark's name for it; DuckDB's writes add it too).
SUCCESS = "_SUCCESS"


def default_memory_limit(share: float = 0.25, cap_gb: float = 6.0) -> str:
    """DuckDB's memory limit when none is given: a quarter of physical memory, at most 6 GB.

    DuckDB's own default (80 % of memory) leaves nothing for the pandas frame the
    query returns; with a limit, large joins and aggregations spill to disk instead.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return f"{cap_gb:g}GB"
    return f"{max(0.5, min(cap_gb, share * total / 2**30)):.1f}GB"


@runtime_checkable
class Engine(Protocol):
    """What the feature pipeline needs from a SQL engine."""

    dialect: str

    def register(self, name: str, data: pd.DataFrame | str | Path) -> None:
        """Expose a DataFrame or a Parquet file/folder as table ``name``."""

    def columns(self, name: str) -> list[str]:
        """Column names of a registered table."""

    def query(self, sql: str) -> pd.DataFrame:
        """Run one query (in this engine's input dialect) and return the result."""

    def write(self, sql: str, path: str | Path, partition_by: Sequence[str] | None = None) -> None:
        """Run one query and write its result to Parquet at ``path``, atomically.

        A ``.parquet`` file name without ``partition_by`` gives one file; otherwise
        ``path`` becomes a folder of Hive-style partitions with a :data:`SUCCESS` marker.
        """


class DuckDBEngine:
    """In-process DuckDB engine (the embedded default).

    Parameters
    ----------
    threads
        Worker threads; None lets DuckDB decide (all cores).
    memory_limit
        DuckDB memory limit such as ``"8GB"``; None takes ``$SOTE_DUCKDB_MEMORY_LIMIT``,
        else :func:`default_memory_limit`. Beyond it DuckDB spills to a temporary
        folder of its own, removed by :meth:`close`.
    """

    dialect = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None):
        import duckdb

        self._con = duckdb.connect(":memory:")
        if threads is not None:
            self._con.execute(f"SET threads = {int(threads)}")
        named = "memory_limit" if memory_limit else "SOTE_DUCKDB_MEMORY_LIMIT"
        memory_limit = memory_limit or os.environ.get("SOTE_DUCKDB_MEMORY_LIMIT") or default_memory_limit()
        try:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as err:
            self._con.close()
            raise ValueError(f"{named}={memory_limit!r}: not a memory size DuckDB reads, such as 8GB or 500MB "
                             f"({err})") from None
        # what does not fit spills to a private temporary folder, never into the working directory
        self._spill = tempfile.TemporaryDirectory(prefix="sote-duckdb-")
        self._con.execute("SET temp_directory = ?", [self._spill.name])
        no_progress_bar(self._con)
        no_rescans(self._con)
        self._frames: dict[str, pd.DataFrame] = {}
        self._sources: list[str] = []
        self._bounds: dict[int, list] = {}

    def memory_limit_bytes(self) -> int:
        """The connection's memory limit in bytes, as DuckDB reports it (``"5.4 GiB"``)."""
        text = self._con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        return parse_size(text)

    def register(self, name: str, data: pd.DataFrame | str | Path) -> None:
        # each table is a source "<name>__source" and a view "<name>" over it, so that
        # restrict() can narrow every view to one share of the clients
        source = f"{name}__source"
        if isinstance(data, pd.DataFrame):
            self._frames[name] = data  # keep a reference: DuckDB scans it lazily
            self._con.register(source, data)
        else:
            path = Path(data)
            if path.is_dir():
                pattern = str(path / "**" / "*.parquet")
            elif path.suffix == ".parquet":
                pattern = str(path)
            else:
                raise ValueError(f"{path}: the DuckDB engine reads Parquet files or folders; "
                                 "load CSV with pandas first")
            quoted = pattern.replace("'", "''")
            self._con.execute(f'CREATE OR REPLACE VIEW "{source}" AS SELECT * FROM read_parquet(\'{quoted}\')')
        if name not in self._sources:
            self._sources.append(name)
        self._view(name, "")
        self._bounds.clear()  # a table changed: the share bounds are computed again

    def _view(self, name: str, where: str) -> None:
        if where and "client_id" not in self.columns(f"{name}__source"):
            where = ""
        self._con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM "{name}__source"{where}')

    def share_bounds(self, parts: int) -> list:
        """The ``parts - 1`` client ids that cut the ``clients`` table into shares of about equal size (ascending)."""
        if parts not in self._bounds:
            fractions = ", ".join(f"{i / parts!r}" for i in range(1, parts))
            row = self._con.execute(f'SELECT quantile_disc(client_id, [{fractions}]) FROM "clients__source"').fetchone()
            self._bounds[parts] = [b for b in (row[0] or []) if b is not None]
        return self._bounds[parts]

    def restrict(self, parts: int | None = None, part: int = 0) -> None:
        """Narrow every registered table with a ``client_id`` to one of ``parts`` shares of the clients.

        Share ``part`` is a range of client ids, cut at quantiles of the ``clients`` table's
        ids (:meth:`share_bounds`; a missing id goes with the first share): all of a client's
        rows fall in the same share, so a query whose results are per client gives, share
        by share, exactly its rows over all clients, and the range is a filter DuckDB
        pushes into each Parquet scan (no hash of every row per share). ``parts=None``
        lifts the restriction.
        """
        where = ""
        if parts is not None and parts > 1:
            bounds = self.share_bounds(parts)
            cond = []
            if part > 0:  # past the last bound when there are fewer distinct ids than shares: empty
                cond.append(f"client_id >= {_literal(bounds[part - 1])}" if part - 1 < len(bounds) else "FALSE")
            if part < len(bounds):
                cond.append(f"(client_id < {_literal(bounds[part])}" + (" OR client_id IS NULL)" if part == 0 else ")"))
            where = " WHERE " + " AND ".join(cond) if cond else ""
        for name in self._sources:
            self._view(name, where)

    def columns(self, name: str) -> list[str]:
        return [row[0] for row in self._con.execute(f'DESCRIBE "{name}"').fetchall()]

    def query(self, sql: str) -> pd.DataFrame:
        return self._con.execute(sql).df()

    def write(self, sql: str, path: str | Path, partition_by: Sequence[str] | None = None, *,
              shares: int = 1, order_by: str | None = None) -> int:
        """Write the result of ``sql`` to Parquet with DuckDB's ``COPY … TO`` (nothing comes into pandas).

        Parameters
        ----------
        sql
            One query in DuckDB's dialect.
        path
            A ``.parquet`` file (without ``partition_by``), or a folder: built aside and moved
            into place when complete (:func:`features.contract.io.atomic_path` / ``atomic_dir``).
        partition_by
            Columns to partition the folder by (``<column>=<value>/`` subfolders; the
            values leave the files, as Spark writes them).
        shares
            Run the query once per share of the clients (:meth:`restrict`), each
            share's rows into files of their own in the same folder (or, for a ``.parquet``
            file, into part files copied into the one file at the end), so that a
            per-client query larger than the memory limit completes.
        order_by
            Write the rows in this order (an ``ORDER BY`` expression). For one file written in
            shares the order is made when the parts are copied into the file, not in each share's
            query: there a sort of the share's rows would need memory beside the query's join and
            aggregate tables (a share of 660,000 clients then no longer fits a 4 GB limit).

        Returns
        -------
        int
            Rows written.
        """
        path = Path(path)
        options = "FORMAT parquet, COMPRESSION zstd"
        order = f" ORDER BY {order_by}" if order_by else ""
        if not partition_by and path.suffix == ".parquet" and not path.is_dir():
            with atomic_path(path) as tmp:
                if shares <= 1:
                    return self._copy(sql + order, tmp, options)
                # one file in shares: each share's rows into a part file, then the parts copied into one
                with tempfile.TemporaryDirectory(dir=self._spill.name) as folder:
                    parts = [Path(folder) / f"part-{share}.parquet" for share in range(shares)]
                    try:
                        for share, part in enumerate(parts):
                            self.restrict(shares, share)
                            self._copy(sql, part, options)
                    finally:
                        self.restrict(None)
                    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
                    return self._copy(f"SELECT * FROM read_parquet([{files}]){order}", tmp, options)
        sql += order
        with atomic_dir(path, option="output folder") as tmp:
            rows = 0
            try:
                for share in range(max(1, shares)):
                    if shares > 1:
                        self.restrict(shares, share)
                    if partition_by:
                        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in partition_by)
                        rows += self._copy(sql, tmp, f"{options}, PARTITION_BY ({cols}), OVERWRITE_OR_IGNORE true, "
                                                     f"FILENAME_PATTERN 'part-{share}-{{i}}'")
                    else:
                        rows += self._copy(sql, tmp / f"part-{share}.parquet", options)
            finally:
                if shares > 1:
                    self.restrict(None)
            (tmp / SUCCESS).touch()
            return rows

    def _copy(self, sql: str, target: Path, options: str) -> int:
        quoted = str(target).replace("'", "''")
        return int(self._con.execute(f"COPY ({sql}) TO '{quoted}' ({options})").fetchone()[0])

    def close(self) -> None:
        """Close the connection and remove its spill folder."""
        self._con.close()
        self._spill.cleanup()


#: DuckDB optimizers that make the feature queries slower. ``partitioned_execution`` (DuckDB 2.0) splits a
#: GROUP BY on a low-cardinality column (a unit, a professional) into one branch per value, each
#: re-reading the whole Parquet file: on the 1.33 M county it re-read the events 20 times per share,
#: a quarter of the feature query's CPU.
SLOW_OPTIMIZERS = ("partitioned_execution",)


def no_rescans(con) -> None:
    """Disable :data:`SLOW_OPTIMIZERS` on a DuckDB connection (those its DuckDB version has; results are unchanged)."""
    known = {row[0] for row in con.execute("SELECT name FROM duckdb_optimizers()").fetchall()}
    names = [name for name in SLOW_OPTIMIZERS if name in known]
    if names:
        con.execute(f"SET disabled_optimizers = '{','.join(names)}'")


_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str) -> int:
    """Bytes in a size such as DuckDB writes or reads them: ``"5.4 GiB"``, ``"8GB"``, ``"512 MiB"``.

    Raises
    ------
    ValueError
        If ``text`` is not a number followed by a known unit.
    """
    import re

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", str(text))
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (a number and one of KB, MB, GB, KiB, MiB, GiB, …)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _literal(value) -> str:
    """A SQL literal for a client id (text, or a number if the ids are numbers)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def partition_columns(folder: str | Path) -> list[str]:
    """The Hive partition columns of an output folder, outermost first (``[]`` for a flat folder)."""
    names: list[str] = []
    level = Path(folder)
    while True:
        subs = sorted(p for p in level.iterdir() if p.is_dir() and "=" in p.name and p.name[0] not in "._")
        if not subs:
            return names
        names.append(subs[0].name.split("=", 1)[0])
        level = subs[0]


def read_parquet_output(path: str | Path, columns: Sequence[str] | None = None):
    """Read a Parquet output of :meth:`Engine.write`: one file, or a complete partitioned folder.

    Partition values come back as text (``"091"`` stays ``"091"``; no type is
    guessed from folder names) and as ordinary columns, after the file's own.

    Parameters
    ----------
    path
        A ``.parquet`` file or a folder holding :data:`SUCCESS`.
    columns
        Columns to read (default: all).

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a folder lacks the :data:`SUCCESS` marker (an unfinished or failed write)
        or holds no Parquet file.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    if path.is_file():
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    if not (path / SUCCESS).is_file():
        raise ValueError(f"{path} is a folder without the {SUCCESS} marker: an unfinished or failed write, "
                         "not a complete output")
    keys = partition_columns(path)
    partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive") if keys else None
    dataset = ds.dataset(path, format="parquet", partitioning=partitioning)
    if not dataset.files:
        raise ValueError(f"{path} holds no Parquet file")
    return dataset.to_table(columns=list(columns) if columns is not None else None)


def output_digest(path: str | Path) -> str:
    """SHA-256 of a Parquet output: of the file's bytes, or of a folder's data files whatever their names.

    For a folder, each ``*.parquet`` file contributes its partition folder and the
    digest of its bytes, sorted: Spark's part-file names carry a random id per run,
    so the same rows written twice give the same digest.
    """
    import hashlib

    path = Path(path)
    if path.is_file():
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()
    entries = sorted(f"{f.parent.relative_to(path).as_posix()}\0{output_digest(f)}"
                     for f in path.rglob("*.parquet") if not any(p.startswith((".", "_"))
                                                                 for p in f.relative_to(path).parts))
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()
