"""The small engine interface the feature SQL runs behind, and its DuckDB default.

An engine knows three things: how to expose a table under a name (a pandas
DataFrame, or a Parquet file or folder), which columns a table has, and how to
run one SQL query into a pandas DataFrame. The SQL the compiler emits is
DuckDB dialect restricted to what sqlglot transpiles to Spark SQL, so a Spark
engine is the same three methods over a SparkSession (see docs/features.md).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from features.contract.stream import no_progress_bar


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
        memory_limit = memory_limit or os.environ.get("SOTE_DUCKDB_MEMORY_LIMIT") or default_memory_limit()
        self._con.execute("SET memory_limit = ?", [memory_limit])
        # what does not fit spills to a private temporary folder, never into the working directory
        self._spill = tempfile.TemporaryDirectory(prefix="sote-duckdb-")
        self._con.execute("SET temp_directory = ?", [self._spill.name])
        no_progress_bar(self._con)
        self._frames: dict[str, pd.DataFrame] = {}
        self._sources: list[str] = []

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
        self._view(name, None)

    def _view(self, name: str, part: tuple[int, int] | None) -> None:
        where = ""
        if part is not None and "client_id" in self.columns(f"{name}__source"):
            where = f" WHERE hash(client_id) % {int(part[0])} = {int(part[1])}"
        self._con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM "{name}__source"{where}')

    def restrict(self, parts: int | None = None, part: int = 0) -> None:
        """Narrow every registered table with a ``client_id`` to one of ``parts`` shares of the clients.

        A client's rows all fall in the same share (by a hash of the id), so a
        query whose results are per client gives, share by share, exactly its
        rows over all clients; ``parts=None`` lifts the restriction.
        """
        for name in self._sources:
            self._view(name, None if parts is None or parts <= 1 else (parts, part))

    def columns(self, name: str) -> list[str]:
        return [row[0] for row in self._con.execute(f'DESCRIBE "{name}"').fetchall()]

    def query(self, sql: str) -> pd.DataFrame:
        return self._con.execute(sql).df()

    def close(self) -> None:
        """Close the connection and remove its spill folder."""
        self._con.close()
        self._spill.cleanup()
