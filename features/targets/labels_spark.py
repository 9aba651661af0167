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
                                     _timestamp, build_labels, cohort_history_days, cohort_members,
                                     current_use_flags, event_window_condition, get_target, population,
                                     prior_cost)

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


def _bound_free(cohort: Cohort) -> Cohort:
    """The cohort without its prior-cost bound (the one rule that reads the whole population)."""
    return dataclasses.replace(cohort, max_prior_cost_quantile=None, prior_cost_days=None)


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
    cohort = _bound_free(target.cohort)
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


def _window_conditions(target: Target, as_of: pd.Timestamp) -> dict[str, str]:
    """The DuckDB-dialect conditions of the rows :func:`features.targets.labels.window_tables` reads for ``target``."""
    t = as_of
    end = _timestamp(t + pd.Timedelta(days=target.horizon_days))
    sql = {"clients": "TRUE", "events": event_window_condition(end, t, cohort_history_days(target.cohort), ())}
    if target.cohort.diagnosis_groups:
        sql["diagnoses"] = (f"date < {end} AND code IS NOT NULL AND ({_groups_sql(target.cohort.diagnosis_groups)})")
    if _needs_assessments(target.outcome):
        sql["assessments"] = f"date < {end}"
    return sql


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


def tagged_rows(data, conditions: Mapping[str, str], *, engine, buckets: int | None = None):
    """The rows of some tables that meet ``conditions``, in one Spark DataFrame tagged with a bucket of clients.

    Each table is read from the Parquet with its file and row position
    (``_file``, ``_row``: the order :func:`_bucket_frames` puts a bucket's rows
    back in), filtered by its condition (DuckDB dialect, transpiled) and tagged
    with ``_table`` and ``_bucket`` (a hash of ``client_id`` modulo ``buckets``).

    Parameters
    ----------
    data
        A validated dataset, or a folder of validated Parquet (one ``<table>.parquet`` per table).
    conditions
        Table name -> the condition its rows must meet (``"TRUE"``: every row); clients and events at least.
    engine
        A :class:`~features.histories.engine_spark.SparkEngine`.
    buckets
        How many buckets (default: the session's shuffle partitions).

    Returns
    -------
    tuple
        The tagged union (not yet computed) and the columns read from each table (for :func:`_bucket_frames`).
    """
    from pyspark.sql import functions as F

    spark = engine.spark
    paths = _paths(data)
    columns = {}
    for table in conditions:
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
    n = int(buckets or spark.conf.get("spark.sql.shuffle.partitions"))
    union = None
    for table, cols in columns.items():
        sql = (f"SELECT {', '.join(_quoted(c) for c in cols)}, _file, _row FROM sote_labels_{table} "
               f"WHERE {conditions[table]}")
        frame = engine.frame(sql).withColumn("_table", F.lit(table))
        union = frame if union is None else union.unionByName(frame, allowMissingColumns=True)
    return union.withColumn("_bucket", F.pmod(F.xxhash64("client_id"), F.lit(n))), columns


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
    t = pd.Timestamp(as_of).normalize()
    union, columns = tagged_rows(data, _window_conditions(target, t), engine=engine, buckets=buckets)
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


#: Spark schema of one client's row out of the current-use pass.
_CURRENT = ("client_id string, prior_cost double, intensive_ongoing boolean, in_cohort boolean, "
            "cohort_prior_cost double")


def bucket_current_use(tables: Mapping[str, pd.DataFrame], as_of, *, quantile: float, days: int,
                       services: tuple[str, ...], cohort: Cohort | None = None) -> pd.DataFrame:
    """The per-client part of the current-use flags and of a cohort for some clients (one bucket).

    :func:`features.targets.labels.current_use_flags` itself on the bucket's
    tables, whose ``prior_cost`` (in cents) and ``intensive_ongoing`` are per
    client; its threshold and ``prior_top`` are the bucket's and are dropped
    (the population's quantile is taken over every bucket afterwards). For a
    cohort, :func:`features.targets.labels.cohort_members` without the
    prior-cost bound gives ``in_cohort``, and the bound's prior cost (in cents,
    :func:`features.targets.labels.prior_cost` as the cohort rounds it) is
    ``cohort_prior_cost`` (NaN without a bound).

    Parameters
    ----------
    tables
        The bucket's canonical tables (the rows of :func:`current_use_conditions`).
    as_of
        The index date T.
    quantile, days, services
        As :func:`~features.targets.labels.current_use_flags`.
    cohort
        A model's cohort, or None (every client in it).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`_CURRENT`, one row per client of the population at T in the bucket.
    """
    t = pd.Timestamp(as_of).normalize()
    flags = current_use_flags(tables, t, quantile=quantile, days=days, services=services)
    ids = pd.Index(flags["client_id"].astype("str"))
    in_cohort = np.ones(len(ids), bool)
    bound = np.full(len(ids), np.nan)
    if cohort is not None and cohort != Cohort():
        in_cohort = ids.isin(cohort_members(tables, t, _bound_free(cohort)).index)
        if cohort.max_prior_cost_quantile is not None:
            if cohort.prior_window_days == days:  # the same rule over the same window: the flags' cost
                bound = flags["prior_cost"].to_numpy(float)
            else:
                pop = population(tables["clients"], t)
                cost = prior_cost(tables, t, cohort.prior_window_days, population_index=pop.index).round(2)
                bound = cost.reindex(ids).to_numpy(float)
    return pd.DataFrame({"client_id": ids.to_numpy(object), "prior_cost": flags["prior_cost"].to_numpy(float),
                         "intensive_ongoing": flags["intensive_ongoing"].to_numpy(bool), "in_cohort": in_cohort,
                         "cohort_prior_cost": bound})


def current_use_conditions(as_of, *, days: int, services, cohort: Cohort | None = None) -> dict[str, str]:
    """The rows (DuckDB conditions) the flags and the cohort read: :func:`features.targets.labels.window_tables`'
    windows of :func:`~features.targets.labels.current_use_flags` and of
    :func:`~features.targets.labels.cohort_members`, as one window wide enough for both."""
    t = pd.Timestamp(as_of).normalize()
    history: int | None = days
    groups: tuple[str, ...] = ()
    if cohort is not None:
        own = cohort_history_days(cohort)
        history = None if own is None else max(days, own)
        groups = tuple(cohort.diagnosis_groups)
    end = _timestamp(t)
    sql = {"clients": "TRUE", "events": event_window_condition(end, t, history, services)}
    if groups:
        sql["diagnoses"] = f"date < {end} AND code IS NOT NULL AND ({_groups_sql(groups)})"
    return sql


class CurrentUse:
    """The current-use flags of the population at T and a model's cohort, computed by the executors.

    >>> use = CurrentUse.compute(dataset, "2024-01-01", engine=engine, cohort=model.cohort)  # doctest: +SKIP
    >>> listed = scored.join(use.flags(), "client_id", "left")                                # doctest: +SKIP

    The executors read the rows the one-machine functions read (the windows of
    :func:`~features.targets.labels.current_use_flags` and
    :func:`~features.targets.labels.cohort_members`), spread them over buckets
    of clients, and run those functions on each bucket
    (:func:`bucket_current_use`); the per-client rows are cached. The two rules
    that read the whole population -- the flags' prior-cost threshold and the
    cohort's prior-cost bound -- are quantiles over every bucket on the cluster
    (:func:`spark_quantile`, numpy's arithmetic: equal to the bit). Only counts
    and four order statistics reach the driver.

    Attributes
    ----------
    frame
        The cached per-client rows (:data:`_CURRENT`), one per client of the population at T.
    threshold
        The population's ``quantile`` of last year's cost (``prior_cost_threshold`` of the flags).
    cohort_threshold
        The cohort's prior-cost bound (None without one).
    cohort
        The cohort (None: the whole population).
    """

    def __init__(self, frame, threshold: float, cohort: Cohort | None, cohort_threshold: float | None):
        self.frame, self.threshold, self.cohort, self.cohort_threshold = frame, threshold, cohort, cohort_threshold

    @classmethod
    def compute(cls, data, as_of, *, engine, cohort: Cohort | None = None, quantile: float = 0.9,
                days: int | None = None, services=None, targets: str | Path | None = None,
                buckets: int | None = None) -> CurrentUse:
        """Compute the per-client rows (cached) and the two population quantiles.

        Parameters
        ----------
        data
            A validated dataset, or a folder of validated Parquet.
        as_of
            The index date T.
        engine
            A :class:`~features.histories.engine_spark.SparkEngine`.
        cohort
            The model's cohort (None or the empty cohort: no cohort pass).
        quantile, days, services, targets
            As :func:`~features.targets.labels.current_use_flags` (``days``: 365 when None).
        buckets
            Client buckets (default: the session's shuffle partitions).
        """
        from pyspark import StorageLevel

        from features.targets.labels import DEFAULT_PRIOR_COST_DAYS, intensive_services

        t = pd.Timestamp(as_of).normalize()
        days = int(days or DEFAULT_PRIOR_COST_DAYS)
        services = tuple(services) if services is not None else tuple(intensive_services(targets))
        cohort = None if cohort is None or cohort == Cohort() else cohort
        union, columns = tagged_rows(data, current_use_conditions(t, days=days, services=services, cohort=cohort),
                                     engine=engine, buckets=buckets)

        def run(rows: pd.DataFrame) -> pd.DataFrame:
            return bucket_current_use(_bucket_frames(rows, columns), t, quantile=quantile, days=days,
                                      services=services, cohort=cohort)

        frame = union.groupBy("_bucket").applyInPandas(run, schema=_CURRENT).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            threshold = spark_quantile(frame, "prior_cost", quantile)
            bound = None
            if cohort is not None and cohort.max_prior_cost_quantile is not None:
                bound = spark_quantile(frame, "cohort_prior_cost", cohort.max_prior_cost_quantile)
        except BaseException:
            frame.unpersist()
            raise
        return cls(frame, threshold, cohort, bound)

    def flags(self):
        """``client_id``, ``intensive_ongoing``, ``prior_high_use`` (last year's cost strictly above the threshold)."""
        from pyspark.sql import functions as F

        return self.frame.select("client_id", "intensive_ongoing",
                                 (F.col("prior_cost") > F.lit(self.threshold)).alias("prior_high_use"))

    def members(self):
        """The client ids of the cohort at T (every client of the population without a cohort)."""
        from pyspark.sql import functions as F

        keep = F.col("in_cohort")
        if self.cohort_threshold is not None:
            keep = keep & (F.col("cohort_prior_cost") <= F.lit(self.cohort_threshold))
        return self.frame.where(keep).select("client_id")

    def unpersist(self) -> None:
        """Drop the cached per-client rows."""
        self.frame.unpersist()
