"""A training set built on Spark and sampled down for LightGBM on one machine.

>>> engine = SparkEngine(master="spark://head:7077")                                      # doctest: +SKIP
>>> training = build_training_set_spark(dataset, ["2022-01-01", "2023-01-01"], "high_use",
...                                     engine=engine, max_rows=300_000)                   # doctest: +SKIP

The rows of :func:`features.targets.labels.build_training_set` with the same
``max_rows`` and ``seed``, computed by the cluster: for each index date the
labels are :func:`~features.targets.labels_spark.build_labels_spark` (written
by the executors into a temporary folder), the cohort is sampled within each
label by :func:`~features.targets.labels.stratified_rows` over the labels
sorted by ``client_id`` (the one column of 0/1 labels comes to the driver, and
the chosen positions go back as a broadcast list), and the spec's feature
query runs on Spark for the whole population, joined on the cluster to the
sampled clients. Only the sampled rows — the training set LightGBM fits on —
are collected. Training itself stays on one machine (``docs/scale.md``: 300,000
rows of 262 features is ~0.6 GB and ~10 min of LightGBM on two cores).
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.targets.labels import Target, get_target, stratified_rows
from features.targets.labels_spark import LABEL_COLUMNS, build_labels_spark


def _sampled_labels(labels, max_rows: int | None, seed: int):
    """The label rows :func:`stratified_rows` keeps, chosen on the driver from the label column alone."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n = labels.count()
    if max_rows is None or n <= max_rows:
        return labels, n
    y = labels.orderBy("client_id").select(F.col("label").cast("int").alias("label")).toPandas()["label"]
    positions = stratified_rows(y.to_numpy(), max_rows, seed)
    chosen = labels.sparkSession.createDataFrame(pd.DataFrame({"_pos": positions.astype("int64")}), "_pos long")
    ranked = labels.withColumn("_pos", F.row_number().over(Window.orderBy("client_id")) - 1)
    return ranked.join(F.broadcast(chosen), "_pos", "left_semi").drop("_pos"), n


def _label_frame(rows: pd.DataFrame, like: Mapping[str, np.dtype]) -> pd.DataFrame:
    """Collected label rows as :func:`build_labels` returns them: its columns, dtypes and order."""
    rows = rows[LABEL_COLUMNS].copy()
    rows["client_id"] = rows["client_id"].astype("str")
    for col, dtype in like.items():
        if col not in ("client_id", "as_of"):
            rows[col] = rows[col].astype(dtype)
    return rows.sort_values("client_id", ignore_index=True)


def build_training_set_spark(data, as_of_dates: Iterable, target: str | Target, spec=None, *, engine,
                             targets=None, max_rows: int | None = None, seed: int = 0,
                             workdir: str | Path | None = None) -> pd.DataFrame:
    """Features and labels of one target for several index dates, built by Spark, sampled, collected.

    Parameters
    ----------
    data
        A validated dataset (:func:`features.contract.stream.open_dataset`) or a folder of validated Parquet.
    as_of_dates
        Index dates T, in the order the rows are stacked.
    target
        A target name from the targets file, or a :class:`~features.targets.spec.Target`.
    spec
        Feature spec (a :class:`FeatureSpec`, a YAML path, or None for the packaged default).
    engine
        A :class:`~features.histories.engine_spark.SparkEngine`.
    targets
        Targets YAML path or loaded mapping (the packaged file when None).
    max_rows
        At most this many cohort members per date (None: all), sampled within each label as
        :func:`features.targets.labels.build_training_set` samples them (the same rows for the same ``seed``).
    seed
        Seed of the sampling.
    workdir
        Where the executors write each date's labels before they are sampled (a folder every executor and the
        driver can read: on a cluster, shared storage); a temporary folder in it is removed at the end.
        Default: the system's temporary folder (a local or single-machine cluster).

    Returns
    -------
    pandas.DataFrame
        The frame :func:`~features.targets.labels.build_training_set` returns for the same arguments:
        ``client_id, as_of``, the features, ``label`` and the horizon columns, sorted by ``as_of`` and
        ``client_id``; ``attrs["rows_available"]`` the cohort size per date before sampling.

    Raises
    ------
    ValueError
        If ``as_of_dates`` is empty, or a sampled cohort member has no feature row.
    """
    from features.histories.build import ClientHistories, _typed
    from features.histories.output import typed_sql
    from features.targets.labels import build_labels

    if isinstance(target, str):
        target = get_target(target, targets)
    dates = [pd.Timestamp(t).normalize() for t in as_of_dates]
    if not dates:
        raise ValueError("as_of_dates is empty")
    spark = engine.spark
    dtypes = build_labels(_no_tables(), dates[0], target, validate=False).dtypes.to_dict()
    scratch = Path(tempfile.mkdtemp(prefix="sote-training-", dir=workdir))
    frames, available = [], []
    try:
        with ClientHistories(data, spec, engine=engine, validate=False) as histories:
            for i, t in enumerate(dates):
                folder = scratch / f"labels_{i}"
                build_labels_spark(data, t, target, folder, engine=engine)
                labels, n = _sampled_labels(spark.read.parquet(str(folder)), max_rows, seed)
                available.append(n)
                features = engine.frame(typed_sql(histories.spec, histories.sql(t)))
                feats = _typed(features.join(labels.select("client_id"), "client_id", "left_semi").toPandas(),
                               histories.spec)
                chosen = _label_frame(labels.toPandas(), dtypes).drop(columns=["as_of"])
                missing = ~chosen["client_id"].isin(feats["client_id"])
                if missing.any():
                    raise ValueError(f"{target.name} at {t.date()}: {int(missing.sum())} sampled cohort members have "
                                     f"no feature row (population rules differ?); e.g. row "
                                     f"{int(np.flatnonzero(missing)[0])} of the sampled labels")
                joined = feats.merge(chosen, on="client_id", how="inner", validate="one_to_one")
                with warnings.catch_warnings():  # one block per feature column: insert adds one, no copy
                    warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
                    joined.insert(1, "as_of", t)
                frames.append(joined)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    out = out.reset_index(drop=True)
    out.attrs["rows_available"] = available
    return out


def _no_tables() -> dict[str, pd.DataFrame]:
    """Empty canonical tables: :func:`build_labels` on them gives the label table's columns and dtypes."""
    from features.contract.tables import TABLES
    from features.histories.build import empty_table

    return {table: empty_table(table) for table in TABLES}
