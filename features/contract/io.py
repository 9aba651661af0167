"""Reading and writing the canonical tables (Parquet or CSV), atomically.

A data directory holds one file or folder per table: ``clients.parquet``,
``events.csv``, ``events/`` (a Parquet dataset), ... Reading types every
column and turns values that cannot be parsed (a date such as ``2023-13-45``)
into missing values, remembering them as :class:`ParseProblem` so that
validation names them instead of losing them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.codes import normalise_codes, normalise_system
from features.contract.tables import TABLES
from features.contract.distinct import categorical_to_string, per_unique
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS, STRING_COLUMNS


@dataclass
class ParseProblem:
    """Rows of one column whose raw value could not be read as the column's type."""

    table: str
    column: str
    rule: str
    index: pd.Index
    raw: pd.Series


def find_table(data_dir: str | Path, table: str) -> Path | None:
    """Path of a table in ``data_dir`` (Parquet file, CSV file or Parquet folder), or None."""
    data_dir = Path(data_dir)
    for name in (f"{table}.parquet", f"{table}.csv", f"{table}.csv.gz", table):
        path = data_dir / name
        if path.exists():
            return path
    return None


def _read_file(path: Path) -> pd.DataFrame:
    if path.is_dir() or path.suffix == ".parquet":
        table = pq.read_table(path)
        # Dates arrive as date32; pandas wants datetime64 for vectorised comparisons.
        cols = [c.cast(pa.timestamp("s")) if pa.types.is_date(c.type) else c for c in table.columns]
        frame = pa.table(cols, names=table.column_names).to_pandas()
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = categorical_to_string(frame[col])
        return frame
    return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])


def _typed(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[ParseProblem]]:
    problems: list[ParseProblem] = []
    frame = frame.copy()
    for col in STRING_COLUMNS[table]:
        if col in frame:
            frame[col] = per_unique(frame[col], lambda u: u.str.strip().replace("", pd.NA))
    for col, rule, parse in [
        *[(c, "parseable date (YYYY-MM-DD)", lambda s: pd.to_datetime(s, errors="coerce", format="mixed"))
          for c in DATE_COLUMNS[table]],
        *[(c, "parseable number", lambda s: pd.to_numeric(s, errors="coerce")) for c in FLOAT_COLUMNS[table]],
    ]:
        if col not in frame:
            continue
        raw = frame[col]
        if pd.api.types.is_string_dtype(raw) or raw.dtype == object:
            raw = raw.astype("string").str.strip().replace("", pd.NA)
        if pd.api.types.is_datetime64_any_dtype(raw) or (pd.api.types.is_float_dtype(raw) and "date" not in rule):
            parsed = raw
        else:
            parsed = parse(raw)
        if "date" in rule:
            parsed = pd.to_datetime(parsed).astype("datetime64[s]")
        else:
            parsed = parsed.astype(float)
        bad = parsed.isna() & raw.notna()
        if bad.any():
            problems.append(ParseProblem(table, col, rule, frame.index[bad], raw[bad].astype("string")))
        frame[col] = parsed
    if table == "diagnoses" and {"code", "system"} <= set(frame.columns):
        frame["system"] = normalise_system(frame["system"]).fillna(frame["system"])
        frame["code_raw"] = frame["code"]
        frame["code"] = normalise_codes(frame["code"], frame["system"])
    return frame, problems


def read_tables(data_dir: str | Path, tables: tuple[str, ...] = TABLES) -> tuple[dict[str, pd.DataFrame], list[ParseProblem]]:
    """Read and type the canonical tables of ``data_dir``.

    Returns
    -------
    tables : dict
        Table name to DataFrame, with dates as ``datetime64``, numbers as float
        and text as pandas strings. Diagnosis codes are normalised (the raw code
        is kept in ``code_raw``).
    problems : list of ParseProblem
        Values that could not be parsed; validation reports them.

    Raises
    ------
    FileNotFoundError
        If the directory or a required table is missing.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    out: dict[str, pd.DataFrame] = {}
    problems: list[ParseProblem] = []
    for table in tables:
        path = find_table(data_dir, table)
        if path is None:
            raise FileNotFoundError(
                f"table '{table}' not found in {data_dir} (expected {table}.parquet, {table}.csv or {table}/)")
        out[table], found = _typed(table, _read_file(path))
        problems.extend(found)
    return out, problems


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failed or interrupted write leaves any previous file at ``path`` intact
    and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: build it aside, then swap it in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame to Parquet or CSV (by suffix) atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
