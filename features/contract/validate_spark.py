"""The data-contract checks on Spark: the same rules, problems and report as the streaming validation.

>>> check_contract_spark("lake/county_2024", engine)      # doctest: +SKIP
ContractError: 2 problem(s) found: ...

:mod:`features.contract.stream_scan` checks a table a batch at a time with the
functions of :mod:`features.contract.validation`, keeping the clients table
whole for the cross-table rules. Here each table's rows are spread over
buckets by a hash of their (trimmed) ``client_id``, so that every rule that
compares rows compares rows of one bucket:

- the row rules (reading and typing, codes, the pandera schema, the data
  period) run per bucket with the very same functions, on the rows in the
  order of the Parquet files (``_metadata.row_index``), labelled by their
  positions in the whole table as the streaming validation labels them;
- ``client_id`` uniqueness, and exact duplicate events, fall within a bucket
  (equal ids hash alike), where the first copy is the one earliest in the files;
- the cross-table rules (foreign key, dates before birth or after death) are a
  join: each dated table's bucket is grouped with the same bucket of the valid
  clients (``cogroup``), and :func:`~features.contract.validation.dated_problems`
  runs on it.

Each bucket returns its problems (rule, count, first position, at most
:data:`~features.contract.validation.EXAMPLES` example rows); the driver merges
them into the :class:`~features.contract.validation.ValidationReport` of the
streaming validation (the same problems, counts, examples and order), and
raises the same :class:`~features.contract.validation.ContractError`. Only
problems reach the driver, never a table. Parquet tables only (a Spark
lakehouse's format); a CSV table is refused with the command to run instead.
Strict mode only: the quarantine of a lenient run is one process's work.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from features.contract.io import BATCH_ROWS, require_table, type_batch
from features.contract.stream_scan import _CATEGORIES, _CROSS_ORDER
from features.contract.tables import TABLES
from features.contract.validation import (DUPLICATE_RULE, EXAMPLES, ContractError, Problem, ValidationReport,
                                          _code_problems, _duplicated_rows, _pandera_problems, _parse_problems,
                                          _period_problems, client_lookup, dated_problems, rule_problems)

#: Spark schema of what a bucket returns: its problems, and (clients) its valid clients' birth and death dates.
_OUT = ("kind string, category string, col string, rule string, structural boolean, n long, first_pos long, "
        "seq int, examples binary, client_id string, birth_date timestamp_ntz, death_date timestamp_ntz")
_LOOKUP = ["client_id", "birth_date", "death_date"]


class SparkCheckUnsupported(ValueError):
    """A folder the Spark checks cannot read (a CSV table): the message names the table and what to run instead."""


def _local(uri: str) -> str:
    """A file URI as Spark's ``_metadata.file_path`` gives it, as a plain absolute path."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("file", "") else uri


def _files(path: Path) -> list[Path]:
    """The Parquet files of a table, in the order the streaming validation reads them."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if not any(part.startswith(("_", ".")) for part in
                                                                p.relative_to(path).parts))


def _offsets(path: Path) -> tuple[dict[str, int], int, object]:
    """Each file's first position in the whole table, the table's rows, and its Arrow schema."""
    import pyarrow.parquet as pq

    offsets, total, schema = {}, 0, None
    for f in _files(path):
        meta = pq.ParquetFile(f)
        offsets[str(f.resolve())] = total
        total += meta.metadata.num_rows
        schema = schema or meta.schema_arrow
    if schema is None:
        raise SparkCheckUnsupported(f"table at {path}: no Parquet file in the folder")
    return offsets, total, schema


def _plain(schema):
    """An Arrow schema with dictionary columns as their values (what Spark gives back)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                      for f in schema])


def _records(category: str, problems: list[Problem], pos: np.ndarray) -> list[dict]:
    """One output row per problem, its rows and examples relabelled by whole-table positions."""
    out = []
    for seq, p in enumerate(problems):
        if p.rows is None:
            out.append({"kind": "problem", "category": category, "col": p.column, "rule": p.rule, "structural": True,
                        "n": 0, "first_pos": -1, "seq": seq, "examples": None})
            continue
        examples = p.examples.copy()
        examples.index = pd.Index(pos[np.asarray(examples.index, dtype=np.int64)], dtype="int64")
        out.append({"kind": "problem", "category": category, "col": p.column, "rule": p.rule, "structural": False,
                    "n": int(len(p.rows)), "first_pos": int(pos[p.rows].min()) if len(p.rows) else -1, "seq": seq,
                    "examples": pickle.dumps(examples)})
    return out


def _typed_bucket(table: str, rows: pd.DataFrame, schema, fmt, offsets: dict[str, int]):
    """A bucket's raw rows in file order, typed as the streaming validation types a batch; and their positions."""
    import pyarrow as pa

    from features.contract.io import arrow_to_pandas

    pos = (rows["_file"].map(lambda f: offsets[_local(f)]).to_numpy(np.int64) + rows["_row"].to_numpy(np.int64))
    order = np.argsort(pos, kind="stable")
    rows, pos = rows.iloc[order], pos[order]
    raw = pa.Table.from_pandas(rows[schema.names].reset_index(drop=True), schema=schema, preserve_index=False,
                               safe=False)
    frame, parse = type_batch(table, arrow_to_pandas(raw), 0, fmt)
    return frame, parse, pos


def _checker(table: str, schema, fmt, offsets: dict[str, int], period, with_lookup: bool):
    """The function run on one bucket of a table (with the bucket's valid clients when ``with_lookup``)."""
    def alone(rows: pd.DataFrame) -> pd.DataFrame:
        return run(rows, None)

    def joined(rows: pd.DataFrame, clients: pd.DataFrame) -> pd.DataFrame:
        return run(rows, clients)

    def run(rows: pd.DataFrame, clients: pd.DataFrame | None) -> pd.DataFrame:
        if not len(rows):
            return pd.DataFrame(columns=[c.split()[0] for c in _OUT.split(", ")])
        frame, parse, pos = _typed_bucket(table, rows, schema, fmt, offsets)
        found = {"parse": _parse_problems(parse, {table: frame}),
                 "code": _code_problems({table: frame}) if table == "diagnoses" else []}
        unreadable = {(p.table, p.column): p.rows for p in found["parse"] + found["code"] if p.rows is not None}
        found["rules"] = rule_problems(table, frame, unreadable)
        found["period"] = _period_problems({table: frame}, period)
        found["cross"] = []
        if with_lookup:
            clients = clients if clients is not None and len(clients.columns) else pd.DataFrame(
                {"client_id": pd.Series([], dtype="string"), "birth_date": pd.Series([], dtype="datetime64[ns]"),
                 "death_date": pd.Series([], dtype="datetime64[ns]")})
            lookup = clients.astype({"client_id": "string"}).drop_duplicates("client_id").set_index("client_id")
            found["cross"] = dated_problems(table, frame, lookup[["birth_date", "death_date"]])
        out = [r for cat in _CATEGORIES for r in _records(cat, found[cat], pos)]
        if table == "events" and with_lookup and len(frame):
            dup = np.flatnonzero(_duplicated_rows(frame))
            if len(dup):
                out += _records("duplicates", [Problem("events", "(all)", DUPLICATE_RULE, dup,
                                                       frame.iloc[dup[:EXAMPLES]])], pos)
        result = pd.DataFrame(out, columns=["kind", "category", "col", "rule", "structural", "n", "first_pos",
                                            "seq", "examples"])
        if table == "clients":
            bad = [p.rows for cat in ("parse", "code", "rules") for p in found[cat] if p.rows is not None]
            lookup = client_lookup(frame, np.unique(np.concatenate(bad)) if bad else np.array([], dtype=np.int64))
            if lookup is not None:
                valid = lookup.reset_index()[_LOOKUP].assign(kind="lookup")
                result = pd.concat([result, valid], ignore_index=True)
        for col in _LOOKUP:
            if col not in result:
                result[col] = None
        for col in ("kind", "category", "col", "rule", "client_id"):  # plain objects: Arrow-backed text fails here
            result[col] = pd.Series(result[col].astype(object).where(result[col].notna(), None).to_numpy(object),
                                    dtype=object)
        result["structural"] = result["structural"].fillna(False).astype(bool)
        result = result.fillna({"n": 0, "first_pos": -1, "seq": 0}).astype(
            {"n": "int64", "first_pos": "int64", "seq": "int32"})
        for col in ("birth_date", "death_date"):
            result[col] = pd.to_datetime(result[col]).astype("datetime64[ns]")
        return result[[c.split()[0] for c in _OUT.split(", ")]]
    return joined if with_lookup else alone


def _bucketed(spark, path: Path, buckets: int):
    """A table's rows with their file and row index, and a bucket from the trimmed ``client_id`` (0 without one)."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(path))
    df = df.select(*[F.col(f"`{c}`") for c in df.columns], F.col("_metadata.file_path").alias("_file"),
                   F.col("_metadata.row_index").alias("_row"))
    if "client_id" not in df.columns:
        return df.withColumn("_bucket", F.lit(0))
    key = F.regexp_replace(F.col("client_id").cast("string"), r"(?U)^\s+|\s+$", "")
    return df.withColumn("_bucket", F.when(key == "", None).otherwise(F.pmod(F.xxhash64(key), F.lit(buckets))))


def _merge(table: str, category: str, rows: list) -> list[Problem]:
    """A table's problems of one category, merged over buckets, in the order the streaming validation gives them."""
    from features.contract.dataset import PERIOD_COLUMNS
    from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS

    merged: dict[tuple[str, str], dict] = {}
    for r in rows:
        m = merged.setdefault((r["col"], r["rule"]), {"structural": False, "n": 0, "examples": [], "first": None})
        m["structural"] |= bool(r["structural"])
        m["n"] += int(r["n"])
        if r["examples"] is not None:
            m["examples"].append(pickle.loads(r["examples"]))
        first = (int(r["first_pos"]) // BATCH_ROWS if r["first_pos"] >= 0 else -1, int(r["seq"]))
        m["first"] = first if m["first"] is None else min(m["first"], first)
    problems = []
    for (col, rule), m in merged.items():
        if m["structural"] and not m["n"]:
            problems.append((m["first"], Problem(table, col, rule, None)))
            continue
        examples = (pd.concat(m["examples"]).sort_index(kind="stable").iloc[:EXAMPLES] if m["examples"]
                    else pd.DataFrame())
        # the rows themselves stay on the cluster: the report needs their number (a view of that length, no memory)
        problems.append((m["first"], Problem(table, col, rule, np.broadcast_to(np.int64(-1), (m["n"],)), examples)))
    if category == "parse":
        order = [*DATE_COLUMNS[table], *FLOAT_COLUMNS[table]]
        key = lambda fp: (order.index(fp[1].column) if fp[1].column in order else len(order), fp[0])  # noqa: E731
    elif category == "period":
        order = list(PERIOD_COLUMNS.get(table, ()))
        key = lambda fp: (order.index(fp[1].column) if fp[1].column in order else len(order), fp[0])  # noqa: E731
    elif category == "cross":
        key = lambda fp: (_CROSS_ORDER.index(fp[1].rule) if fp[1].rule in _CROSS_ORDER else 3, fp[0])  # noqa: E731
    elif category == "rules":
        # pandera's order of the checks, from one example row of each problem validated together (as the
        # streaming validation orders a table read in several batches); a duplicated id's row goes in twice
        samples = [p.examples.iloc[:1] for _, p in problems if not p.examples.empty]
        samples += [p.examples.iloc[:1].set_axis([-1 - i]) for i, (_, p) in enumerate(problems)
                    if not p.examples.empty and p.rule.startswith("unique")]
        sample = pd.concat(samples) if samples else None
        rank = {}
        if sample is not None:
            sample = sample.loc[~sample.index.duplicated()]
            rank = {(p.column, p.rule): i for i, p in enumerate(_pandera_problems(table, sample))}
        key = lambda fp: (rank.get((fp[1].column, fp[1].rule), len(rank)), fp[0])  # noqa: E731
    else:
        key = lambda fp: fp[0]  # noqa: E731
    return [p for _, p in sorted(problems, key=key)]


def _structure(table: str, schema, fmt) -> list[dict]:
    """A table's structural problems (a missing column, a wrong type), found on its empty header as in one process."""
    from features.contract.io import arrow_to_pandas

    frame, parse = type_batch(table, arrow_to_pandas(schema.empty_table()), 0, fmt)
    return [{"col": p.column, "rule": p.rule, "structural": True, "n": 0, "first_pos": -1, "seq": i,
             "examples": None} for i, p in enumerate(rule_problems(table, frame, {})) if p.rows is None]


def check_contract_spark(data: str | Path, engine, *, buckets: int | None = None) -> ValidationReport:
    """Check a folder of Parquet tables against the data contract on Spark; raise as the streaming validation does.

    Parameters
    ----------
    data
        A data folder with one Parquet file or folder per canonical table (and optionally ``dataset.yaml``).
    engine
        A :class:`~features.histories.engine_spark.SparkEngine`.
    buckets
        Buckets of clients (default: the session's shuffle partitions).

    Returns
    -------
    ValidationReport
        Without problems, and the rows of each table.

    Raises
    ------
    features.contract.validation.ContractError
        With the report :func:`features.contract.stream.open_dataset` gives (the same problems, counts,
        example rows and order; ``report.to_text()`` is the same text).
    FileNotFoundError
        If the folder or a table is missing.
    SparkCheckUnsupported
        If a table is CSV.
    """
    from pyspark.sql import functions as F

    from features.contract.dataset import read_declaration

    data = Path(data)
    declaration = read_declaration(data)
    if not data.is_dir():
        raise FileNotFoundError(f"data directory not found: {data}")
    paths = {}
    for table in TABLES:
        paths[table] = require_table(data, table)
        if not (paths[table].is_dir() or paths[table].suffix == ".parquet"):
            raise SparkCheckUnsupported(f"table '{table}' is {paths[table].name}: the Spark checks read Parquet; "
                                        f"validate the folder in one process (`sote validate {data} --out DIR`)")
    spark = engine.spark
    n = int(buckets or spark.conf.get("spark.sql.shuffle.partitions"))
    period = declaration.period
    rows_in, found, lookup, clients_out = {}, {}, None, None
    try:
        for table in TABLES:
            offsets, rows_in[table], schema = _offsets(paths[table])
            schema = _plain(schema)
            fmt = declaration.date_format.get(table)
            df = _bucketed(spark, paths[table], n)
            if table == "clients":
                out = df.groupBy("_bucket").applyInPandas(_checker(table, schema, fmt, offsets, period, False), _OUT)
                out = clients_out = out.persist()
                if set(_LOOKUP) <= set(schema.names):  # else no cross-table rules, as in one process
                    lookup = (out.where("kind = 'lookup'").select(*_LOOKUP)
                              .withColumn("_bucket", F.pmod(F.xxhash64("client_id"), F.lit(n))))
            elif lookup is not None:
                out = df.groupBy("_bucket").cogroup(lookup.groupBy("_bucket")).applyInPandas(
                    _checker(table, schema, fmt, offsets, period, True), _OUT)
            else:
                out = df.groupBy("_bucket").applyInPandas(_checker(table, schema, fmt, offsets, period, False),
                                                          _OUT)
            found[table] = [r.asDict() for r in out.where("kind = 'problem'").drop(*_LOOKUP).collect()]
            found[table] += [{"category": "rules", **r} for r in _structure(table, schema, fmt)]
    finally:
        if clients_out is not None:
            clients_out.unpersist()
    problems = [p for cat in _CATEGORIES for table in TABLES
                for p in _merge(table, cat, [r for r in found[table] if r["category"] == cat])]
    problems += _merge("events", "duplicates", [r for r in found["events"] if r["category"] == "duplicates"])
    report = ValidationReport(problems, rows_in, dict(rows_in))
    if problems:
        raise ContractError(report)
    return report
