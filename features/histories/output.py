"""Feature tables written by the engine straight to Parquet, typed as :meth:`ClientHistories.features` returns them.

:func:`typed_sql` wraps the compiled query in casts so that every engine writes
the same column types (``client_id`` and text columns as strings, counts as
64-bit integers, the rest as doubles); :func:`write_features` has the engine
write it (DuckDB's ``COPY``, or Spark's executors), so a county-sized table
never comes into pandas; :func:`read_features` reads a file or folder back.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.histories.engine import read_parquet_output
from features.histories.spec import FeatureSpec
from features.histories.sql import SELECTED

#: SQL type of each feature dtype (DuckDB dialect; sqlglot carries them to Spark).
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR"}
#: The column a feature folder is partitioned by unless told otherwise.
PARTITION_BY = ("municipality",)


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def typed_sql(spec: FeatureSpec, sql: str) -> str:
    """``sql`` (a compiled feature query) with ``client_id`` and the spec's columns cast to their dtypes."""
    casts = [f"CAST(client_id AS VARCHAR) AS client_id"]
    casts += [f"CAST({_name(c.name)} AS {SQL_TYPES[c.dtype]}) AS {_name(c.name)}" for c in spec.columns()]
    return "SELECT " + ", ".join(casts) + f" FROM ({sql}) AS features"


def write_features(histories, as_of, path: str | Path,
                   partition_by: Sequence[str] | None = PARTITION_BY, *, clients=None,
                   sort: bool = False) -> int | None:
    """Have ``histories``' engine write the feature table as of ``as_of`` to Parquet at ``path``.

    Parameters
    ----------
    histories
        A :class:`features.histories.build.ClientHistories` whose engine can write
        (:class:`~features.histories.engine.DuckDBEngine`, :class:`~features.histories.engine_spark.SparkEngine`).
    as_of
        Index date T.
    path
        A folder (partitioned by ``partition_by``, with a ``_SUCCESS`` marker) or,
        with ``partition_by=None`` and the DuckDB engine, a ``.parquet`` file. With
        DuckDB, a table of more clients than ``histories.clients_per_query`` is
        written share by share (:meth:`DuckDBEngine.write`'s ``shares``).
    partition_by
        Feature columns to partition by (default: municipality).
    clients
        Optional client ids: only their rows are written (as
        :meth:`ClientHistories.features` with ``clients``).
    sort
        Write the rows in ``client_id`` order (a one-file DuckDB output then reads as
        :meth:`ClientHistories.features` returns the table; shares are id ranges, so
        each share is sorted on its own).

    Returns
    -------
    int or None
        Rows written, where the engine reports them.
    """
    if clients is not None:
        histories.select_clients(clients)
    sql = typed_sql(histories.spec, histories.sql(as_of, SELECTED if clients is not None else None))
    engine = histories.engine
    partition_by = list(partition_by) if partition_by else None
    if hasattr(engine, "restrict"):
        # DuckDB: a population above clients_per_query is written share by share, as features() builds it
        shares = histories.shares()
        if shares > 1:
            return engine.write(sql, path, partition_by=partition_by, shares=shares,
                                order_by="client_id" if sort else None)
    if sort:
        sql += " ORDER BY client_id"
    return engine.write(sql, path, partition_by=partition_by)


def read_features(path: str | Path, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """A feature table written by :func:`write_features` (or ``sote features``), sorted by client, in spec order.

    With ``spec``, the columns come in the spec's order and types (``client_id`` first).
    """
    frame = read_parquet_output(path).to_pandas()
    if spec is not None:
        order = ["client_id"] + [c.name for c in spec.columns()]
        missing = [c for c in order if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not a feature table of this spec; missing columns {', '.join(missing[:5])}")
        frame = frame[order]
    return frame.sort_values("client_id", kind="stable", ignore_index=True)
