"""Labels of a declared target on Spark: the pandas rules of :mod:`features.targets.labels`, run per bucket of clients.

>>> engine = SparkEngine(master="spark://head:7077")                       # doctest: +SKIP
>>> build_labels_spark(dataset, "2024-01-01", "high_use", "labels_2024", engine=engine)  # doctest: +SKIP

Every rule of a label reads one client's own rows, except two: the prior-cost
cohort bound (``max_prior_cost_quantile``: a quantile of last year's cost over
the whole population at T) and the ``cost_quantile`` outcomes (a quantile of
the horizon cost over the cohort, or over the population). So:

1. the executors read the rows :func:`features.targets.labels.window_tables`
   reads (the same DuckDB conditions, transpiled to Spark SQL), tag each row
   with a bucket (a hash of ``client_id``), group the rows by bucket and run
   :func:`features.targets.labels.build_labels` itself on each bucket's clients,
   with the two global rules taken out (the prior-cost bound dropped from the
   cohort, each ``cost_quantile`` replaced by an outcome that is never met), which
   gives every client's cohort membership, horizon cost, other outcomes and
   horizon columns; each bucket's rows are put back in the order of the Parquet
   files first (``_metadata.row_index``), so that the sums add up in the same
   order as on one machine and the costs are equal to the last bit;
2. the quantiles are computed over the whole cohort or population on the
   cluster (two order statistics fetched from a sorted column, interpolated as
   numpy's default does), the prior-cost bound first, then the horizon
   thresholds over the cohort it leaves;
3. the cohort's rows, with their labels, are written by the executors as a
   Parquet folder (:func:`features.histories.engine_spark.write_frame`: atomic).

Only counts and the few order statistics reach the driver. Parity with the
one-machine labels is tested for every built-in target in ``tests/spark``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.targets.labels import (EVENT_COLUMNS, Cohort, Outcome, Target, _groups_sql, _needs_assessments,
                                     _timestamp, _text, build_labels, cohort_history_days, cohort_members,
                                     get_target, population, prior_cost)

#: Spark schema of one client's row out of the per-bucket pass.
_PER_CLIENT = ("client_id string, in_cohort boolean, prior_cost double, label_other long, horizon_cost double, "
               "horizon_events long, observed_days long, died_in_horizon boolean, moved_out_in_horizon boolean")
#: Columns of the clients table the label rules read (the others stay in the Parquet).
CLIENT_COLUMNS = ["client_id", "birth_date", "death_date", "moved_in", "moved_out"]
#: Columns of the label table, in :func:`features.targets.labels.build_labels`' order.
LABEL_COLUMNS = ["client_id", "as_of", "target", "label", "horizon_cost", "horizon_events", "observed_days",
                 "died_in_horizon", "moved_out_in_horizon", "threshold"]
_NEVER = Outcome("count", services=(), min=1)  # no event is of no service: never met


def linear_quantile(n: int, q: float, order_stat) -> float:
    """numpy's default (linear) quantile of ``n`` values from at most two of their order statistics.

    The same arithmetic as :func:`numpy.quantile` (virtual index ``(n - 1) q``,
    interpolation from the nearer end), so the result equals it to the last bit.

    Parameters
    ----------
    n
        How many values.
    q
        The quantile, in [0, 1].
    order_stat
        Called with a list of 0-based positions in the sorted values; returns their values in that order.

    Returns
    -------
    float
        NaN when ``n`` is 0.
    """
    if n == 0:
        return float("nan")
    virtual = float(np.float64(n - 1) * np.float64(q))
    if virtual >= n - 1:
        return float(order_stat([n - 1])[0])
    lo = math.floor(virtual)
    a, b = (np.float64(v) for v in order_stat([lo, lo + 1]))
    gamma = np.float64(virtual - lo)
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def _order_stats(frame, column: str):
    """``order_stat`` for :func:`linear_quantile` over a Spark column: the values at 0-based sorted positions."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    def fetch(positions: list[int]) -> list[float]:
        ranked = frame.select(F.col(column).cast("double").alias("v")).withColumn(
            "pos", F.row_number().over(Window.orderBy("v")) - 1)
        got = {int(r["pos"]): float(r["v"]) for r in ranked.where(F.col("pos").isin(positions)).collect()}
        return [got[p] for p in positions]
    return fetch


def spark_quantile(frame, column: str, q: float) -> float:
    """numpy's default quantile of a Spark DataFrame's column (NaN without rows); two values reach the driver."""
    return linear_quantile(frame.count(), q, _order_stats(frame, column))


def _cost_parts(outcome: Outcome) -> list[Outcome]:
    """The ``cost_quantile`` outcomes in an outcome, in the order ``_evaluate`` meets them (depth first)."""
    if outcome.kind == "cost_quantile":
        return [outcome]
    return [part for sub in outcome.of for part in _cost_parts(sub)]


def _without_costs(outcome: Outcome) -> Outcome:
    """The outcome with each ``cost_quantile`` (a global threshold) replaced by one never met."""
    if outcome.kind == "cost_quantile":
        return _NEVER
    if outcome.kind == "any_of":
        return dataclasses.replace(outcome, of=tuple(_without_costs(o) for o in outcome.of))
    return outcome


def _needs_population(target: Target) -> bool:
    """Whether a global rule reads clients outside the cohort (the prior-cost bound, a population threshold)."""
    return target.cohort.max_prior_cost_quantile is not None or any(
        p.population == "all" for p in _cost_parts(target.outcome))


def bucket_labels(tables: Mapping[str, pd.DataFrame], as_of, target: Target) -> pd.DataFrame:
    """The per-client part of a target's labels for some clients (one bucket), by the one-machine code.

    ``build_labels`` with the global rules taken out: the cohort without its
    prior-cost bound and the outcome without its ``cost_quantile`` parts; when a
    global rule reads the population (the bound, ``population: all``), every
    client of the population at T gets a row, with ``in_cohort`` saying whether
    the rest of the cohort's rules keep them.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`_PER_CLIENT`: ``prior_cost`` (in cents, as the
        cohort compares it; NaN without a bound), ``label_other`` (the outcome's
        non-cost parts met).
    """
    t = pd.Timestamp(as_of).normalize()
    cohort = dataclasses.replace(target.cohort, max_prior_cost_quantile=None, prior_cost_days=None)
    scope = Cohort() if _needs_population(target) else cohort
    part = Target(target.name, target.description, scope, _without_costs(target.outcome), target.horizon_days)
    lab = build_labels(tables, t, part)
    ids = pd.Index(lab["client_id"].astype("str"))
    in_cohort = ids.isin(cohort_members(tables, t, cohort).index) if scope is not cohort else np.ones(len(ids), bool)
    if target.cohort.max_prior_cost_quantile is not None:
        pop = population(tables["clients"], t)
        cost = prior_cost(tables, t, target.cohort.prior_window_days, population_index=pop.index).round(2)
        prior = cost.reindex(ids).to_numpy(float)
    else:
        prior = np.full(len(ids), np.nan)
    return pd.DataFrame({"client_id": ids.to_numpy(object), "in_cohort": in_cohort, "prior_cost": prior,
                         "label_other": lab["label"].to_numpy("int64"), "horizon_cost": lab["horizon_cost"].to_numpy(float),
                         "horizon_events": lab["horizon_events"].to_numpy("int64"),
                         "observed_days": lab["observed_days"].to_numpy("int64"),
                         "died_in_horizon": lab["died_in_horizon"].to_numpy(bool),
                         "moved_out_in_horizon": lab["moved_out_in_horizon"].to_numpy(bool)})


def _window_sql(target: Target, as_of: pd.Timestamp, columns: Mapping[str, list[str]]) -> dict[str, str]:
    """The DuckDB-dialect queries of the rows :func:`features.targets.labels.window_tables` reads for ``target``."""
    t = as_of
    end = _timestamp(t + pd.Timedelta(days=target.horizon_days))
    history = cohort_history_days(target.cohort)
    where = f"start < {end}"
    if history is not None:
        from features.contract.tables import EPISODE_SERVICES

        lo = _timestamp(t - pd.Timedelta(days=max(int(history), 1)))
        where += (f' AND (start >= {lo} OR "end" >= {lo} OR ("end" IS NULL AND service IN '
                  f'({", ".join(_text(v) for v in sorted(EPISODE_SERVICES))})))')
    sql = {"clients": "TRUE", "events": where}
    if target.cohort.diagnosis_groups:
        sql["diagnoses"] = (f"date < {end} AND code IS NOT NULL AND ({_groups_sql(target.cohort.diagnosis_groups)})")
    if _needs_assessments(target.outcome):
        sql["assessments"] = f"date < {end}"
    return {table: (f"SELECT {', '.join(_quoted(c) for c in columns[table])}, "
                    f"_file, _row FROM sote_labels_{table} WHERE {w}")
            for table, w in sql.items()}


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


_TABLE_COLUMNS = {"events": EVENT_COLUMNS, "diagnoses": ["client_id", "date", "system", "code"],
                  "assessments": ["client_id", "date", "scale", "value"]}


def _bucket_frames(rows: pd.DataFrame, columns: Mapping[str, list[str]]) -> dict[str, pd.DataFrame]:
    """One bucket's union of tagged rows as canonical tables in the files' row order, with the contract's dtypes."""
    import pyarrow as pa

    from features.contract.stream import to_pandas
    from features.contract.tables import TABLES
    from features.histories.build import empty_table

    out = {table: empty_table(table) for table in TABLES}
    for table, cols in columns.items():
        sub = rows.loc[rows["_table"].eq(table).to_numpy()].sort_values(["_file", "_row"], kind="stable")
        out[table] = to_pandas(table, pa.Table.from_pandas(sub[cols].reset_index(drop=True), preserve_index=False))
    return out


def _per_client(target: Target, as_of: pd.Timestamp, columns: Mapping[str, list[str]]):
    """``applyInPandas`` function over one bucket's tagged rows."""
    def run(rows: pd.DataFrame) -> pd.DataFrame:
        return bucket_labels(_bucket_frames(rows, columns), as_of, target)
    return run


def _paths(data) -> dict[str, Path | str]:
    from features.contract.tables import TABLES
    from features.targets.labels import is_dataset

    if is_dataset(data):
        return dict(data.paths())
    return {table: Path(data) / f"{table}.parquet" for table in TABLES}


def per_client_frame(data, as_of, target: Target, *, engine, buckets: int | None = None):
    """The Spark DataFrame of :func:`bucket_labels` over every bucket of clients (not yet computed).

    Parameters
    ----------
    data
        A validated dataset, or a folder of validated Parquet (one ``<table>.parquet`` per table).
    as_of
        The index date T.
    target
        The target.
    engine
        A :class:`~features.histories.engine_spark.SparkEngine`.
    buckets
        Groups of clients each run through the pandas rules at once (default: the session's shuffle partitions).
    """
    from pyspark.sql import functions as F

    t = pd.Timestamp(as_of).normalize()
    spark = engine.spark
    paths = _paths(data)
    columns = {}
    for table in ("clients", "events", "diagnoses", "assessments"):
        if not Path(str(paths[table])).exists() and "://" not in str(paths[table]):
            if table in ("clients", "events"):
                raise FileNotFoundError(f"table {table!r}: {paths[table]} not found")
            continue
        read = spark.read.parquet(str(paths[table]))
        present = list(read.columns)
        read.select("*", F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_row")
                    ).createOrReplaceTempView(f"sote_labels_{table}")
        wanted = CLIENT_COLUMNS if table == "clients" else _TABLE_COLUMNS[table]
        columns[table] = [c for c in wanted if c in present]
    queries = _window_sql(target, t, columns)
    columns = {table: cols for table, cols in columns.items() if table in queries}
    n = int(buckets or spark.conf.get("spark.sql.shuffle.partitions"))
    union = None
    for table, sql in queries.items():
        frame = engine.frame(sql).withColumn("_table", F.lit(table))
        union = frame if union is None else union.unionByName(frame, allowMissingColumns=True)
    union = union.withColumn("_bucket", F.pmod(F.xxhash64("client_id"), F.lit(n)))
    return union.groupBy("_bucket").applyInPandas(_per_client(target, t, columns), schema=_PER_CLIENT)


def build_labels_spark(data, as_of, target: str | Target, out: str | Path, *, engine,
                       targets: str | Path | Mapping[str, Target] | None = None,
                       buckets: int | None = None) -> dict:
    """Labels of one target as of ``as_of``, computed and written by Spark: the rows of :func:`build_labels`.

    Parameters
    ----------
    data
        A validated dataset (:func:`features.contract.stream.open_dataset`), or a folder of validated Parquet.
    as_of
        Index date T.
    target
        A target name from the targets file, or a :class:`Target`.
    out
        The Parquet folder to write (local: atomic; a remote URI: Spark's commit protocol).
    engine
        A :class:`~features.histories.engine_spark.SparkEngine`.
    targets
        Targets YAML path or loaded mapping (the packaged file when None).
    buckets
        Client buckets of the per-client pass (default: the session's shuffle partitions).

    Returns
    -------
    dict
        ``rows`` (cohort members), ``positive``, ``thresholds`` (the cost quantiles, in the order of the
        outcome's parts) and ``prior_cost_threshold`` (None without a prior-cost bound).

    Raises
    ------
    TargetError
        If the target is not declared.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from features.histories.engine_spark import write_frame

    if isinstance(target, str):
        target = get_target(target, targets)
    t = pd.Timestamp(as_of).normalize()
    per_client = per_client_frame(data, t, target, engine=engine, buckets=buckets).persist(
        StorageLevel.MEMORY_AND_DISK)
    try:
        cohort = per_client.where("in_cohort")
        prior_threshold = None
        if target.cohort.max_prior_cost_quantile is not None:
            prior_threshold = spark_quantile(per_client, "prior_cost", target.cohort.max_prior_cost_quantile)
            cohort = cohort.where(F.col("prior_cost") <= F.lit(prior_threshold))
        label = F.col("label_other") != 0
        thresholds = []
        for part in _cost_parts(target.outcome):
            over = per_client if part.population == "all" else cohort
            th = spark_quantile(over, "horizon_cost", part.quantile)
            thresholds.append(th)
            label = label | (F.col("horizon_cost") > F.lit(th))
        first = next((th for th in thresholds if not np.isnan(th)), float("nan"))
        labelled = cohort.select(
            "client_id", F.lit(t.to_pydatetime()).cast("timestamp_ntz").alias("as_of"),
            F.lit(target.name).alias("target"), label.cast("long").alias("label"), "horizon_cost", "horizon_events",
            "observed_days", "died_in_horizon", "moved_out_in_horizon",
            F.lit(first).cast("double").alias("threshold")).orderBy("client_id")
        write_frame(labelled, out)
        counts = engine.spark.read.parquet(str(out)).agg(F.count("*").alias("n"), F.sum("label").alias("p")).first()
    finally:
        per_client.unpersist()
    return {"rows": int(counts["n"]), "positive": int(counts["p"] or 0), "thresholds": thresholds,
            "prior_cost_threshold": prior_threshold}


def read_labels(path: str | Path) -> pd.DataFrame:
    """A label folder written by :func:`build_labels_spark` as :func:`build_labels` returns it (sorted by client)."""
    from features.histories.engine import read_parquet_output

    frame = read_parquet_output(path).to_pandas()
    frame["client_id"] = frame["client_id"].astype("str")
    return frame[LABEL_COLUMNS].sort_values("client_id", ignore_index=True)

