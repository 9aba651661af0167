"""Batch scoring on Spark: the same risk list as :func:`models.scoring.score`, computed by the executors.

The features are the model's spec compiled to SQL and run by Spark
(:class:`features.histories.engine_spark.SparkEngine`); the registered MLflow
model goes to the executors inside ``mapInPandas`` (its pyfunc's
:class:`models.pyfunc.ServiceNeedModel`, since the reasons need the LightGBM
booster's SHAP values, which ``mlflow.pyfunc.spark_udf`` does not return). Rank
and percentile come from window functions, the explained share of each unit
from a window per unit, and the list is written by the executors as a Parquet
folder partitioned by ``unit``, moved into place when complete, with the same
JSON sidecar ``<out>.json`` as :func:`models.scoring.score` (its ``sha256`` is
:func:`features.histories.engine.output_digest` of the folder).

The current-use flags and a cohort model's cohort are computed by the
executors too (:class:`features.targets.labels_spark.CurrentUse`: the pandas
rules of :mod:`features.targets.labels` per bucket of clients, the population's
prior-cost quantiles on the cluster), and so are the grid's cut points
(:func:`fit_grid`). What reaches the driver: counts, a few order statistics
(the quantiles), one 8-byte row hash per client for the order-independent data
digest, and the top 5 %'s reason features. Tables already in the driver's
memory (a mapping or validated tables) keep the one-machine flags and cohort
on the driver.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract.io import atomic_path
from features.provenance import DIGEST_LENGTH, versions
from models.scoring import (LANGS, MIX_REASONS, TOP_SHARE, RiskList, ScoringError, _finite, _json_safe,
                            _reason_kinds, bound_columns, calibrated, load_model)

#: Spark schema of the per-client scores (first pass).
_SCORED = ("client_id string, unit string, municipality string, probability double, bound_code int, "
           "probability_bound string, probability_limit double, bin_observed_rate double, segment string, "
           "row_hash long")
#: Spark schema of the reasons (second pass, explained and top rows only).
_REASONS = ("client_id string, reasons_fi string, reasons_sv string, reasons_en string, reason_types string, "
            "mix string")


def typed_frame(part: pd.DataFrame, spec) -> pd.DataFrame:
    """A partition of the feature table in :meth:`ClientHistories.features`' column order and dtypes."""
    dtypes = {"int": "int64", "float": "float64", "str": "str"}
    out = {"client_id": part["client_id"].astype("str")}
    for c in spec.columns():
        out[c.name] = part[c.name].astype(dtypes[c.dtype])
    return pd.DataFrame(out).reset_index(drop=True)


def _score_partitions(model, spec, grid, names):
    """``mapInPandas`` function: calibrated probability, bound columns, segment and row hash per client."""
    def run(parts):
        for part in parts:
            X = typed_frame(part, spec)
            if X.empty:
                continue
            prob, codes = calibrated(model, X)
            bounds = bound_columns(model.estimator.calibrator_, codes)
            segment = (pd.array([names[c] for c in grid.predict(X)], dtype="string") if grid is not None
                       else pd.array([None] * len(X), dtype="string"))
            hashes = pd.util.hash_pandas_object(X, index=False).to_numpy().view(np.int64)
            yield pd.DataFrame({"client_id": X["client_id"], "unit": X["unit"].astype(str),
                                "municipality": X["municipality"].astype(str), "probability": prob,
                                "bound_code": codes.astype(np.int32),
                                "probability_bound": bounds["probability_bound"],
                                "probability_limit": bounds["probability_limit"],
                                "bin_observed_rate": bounds["bin_observed_rate"],
                                "segment": segment, "row_hash": hashes})
    return run


def _reason_partitions(model, spec, reasons: int):
    """``mapInPandas`` function: reasons of the explained rows and the features behind the top rows' reasons."""
    from models.explain import contributions, reason_features
    from models.scoring import _reasons

    kinds = _reason_kinds(model)

    def run(parts):
        for part in parts:
            if part.empty:
                continue
            explained = part["explained"].to_numpy(dtype=bool)
            X = typed_frame(part, spec)
            n = len(X)
            texts = {lang: np.full(n, None, dtype=object) for lang in LANGS}
            types = np.full(n, None, dtype=object)
            mix = np.full(n, None, dtype=object)
            rows = np.flatnonzero(explained)
            if len(rows):
                found = _reasons(model, X.iloc[rows], reasons)
                for lang in LANGS:
                    texts[lang][rows] = found[lang]
                for i, feats in zip(rows, found["features"]):
                    types[i] = "|".join(kinds.get(f, "level") for f in feats)
                    mix[i] = "|".join(feats)
            other = np.flatnonzero(~explained)  # top rows outside the explained share: the mix only
            if len(other):
                contrib, _ = contributions(model.booster, model.frame(X.iloc[other]))
                for i, feats in zip(other, reason_features(contrib, MIX_REASONS)):
                    mix[i] = "|".join(feats)
            yield pd.DataFrame({"client_id": X["client_id"],
                                **{f"reasons_{lang}": pd.array(texts[lang], dtype="string") for lang in LANGS},
                                "reason_types": pd.array(types, dtype="string"), "mix": pd.array(mix, dtype="string")})
    return run


def _checked(part_iter):
    """``mapInPandas`` function: each partition of the list checked against :class:`RiskList` on its way out."""
    for part in part_iter:
        part = part.astype({"rank": "int64", "as_of": "datetime64[us]"})
        for col in ("segment", "reasons_fi", "reasons_sv", "reasons_en", "probability_bound", "reason_types"):
            part[col] = part[col].astype("string")
        RiskList.validate(part, lazy=True)
        yield part


def _digest(scored) -> str:
    """:func:`features.provenance.frame_digest` (``with_key=True``) of the scored features, from their row hashes."""
    from pyspark.sql import functions as F

    hashes = scored.select("client_id", "row_hash").orderBy(F.col("client_id")).select("row_hash").toPandas()
    return hashlib.sha256(hashes["row_hash"].to_numpy(dtype=np.int64).view(np.uint64).tobytes()).hexdigest()[
        :DIGEST_LENGTH]


def score_spark(model_uri: str, data, as_of, out: str | Path, *, engine=None, master: str | None = None,
                reasons: int = 5, explain_share: float = 1.0, with_segments: bool = True,
                tracking_uri: str | None = None, progress=None) -> dict:
    """Score the model's cohort at ``as_of`` on Spark into a risk-list folder partitioned by unit.

    The same list as :func:`models.scoring.score` (clients, probabilities, ranks,
    reasons, flags, segments and digest), written by Spark's executors.

    Parameters
    ----------
    model_uri
        ``models:/high_use@champion``, ``models:/high_use/3`` or a logged model URI.
    data
        A data folder (validated into a local dataset first), or a validated dataset.
    as_of
        Index date; must lie inside the data.
    out
        The risk-list folder (a ``.parquet`` name is a folder here), on a path the driver
        can write (local or mounted); sidecar ``<out>.json``.
    engine
        A :class:`features.histories.engine_spark.SparkEngine`; None starts one on ``master``.
    reasons, explain_share
        As :func:`models.scoring.score_features`.
    with_segments
        Add the need × resources segment (rule-based, Finnish labels) of each client.

    Returns
    -------
    dict
        The sidecar contents.
    """
    from features.histories.engine_spark import SparkEngine

    from features.histories.engine_spark import is_remote

    t0 = time.perf_counter()
    if is_remote(out):
        raise ScoringError(f"risk list {out}: give a path the driver can write too (a local or mounted folder such as "
                           "/dbfs/...), since the sidecar and the folder's digest are written beside it")
    if not 0 < explain_share <= 1:
        raise ScoringError(f"explain share must be in (0, 1], got {explain_share}")
    ref = load_model(model_uri, tracking_uri)
    own = engine is None
    engine = engine if engine is not None else SparkEngine(master=master)
    try:
        if isinstance(data, (str, Path)):
            from features.contract.stream import open_dataset

            with open_dataset(data) as dataset:
                return _score(ref, model_uri, dataset, as_of, out, t0, engine, reasons=reasons,
                              explain_share=explain_share, with_segments=with_segments, progress=progress)
        return _score(ref, model_uri, data, as_of, out, t0, engine, reasons=reasons, explain_share=explain_share,
                      with_segments=with_segments, progress=progress)
    finally:
        if own:
            engine.close()


def _score(ref, model_uri, tables, as_of, out, t0, engine, *, reasons, explain_share, with_segments,
           progress) -> dict:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from features.histories.build import ClientHistories
    from features.histories.engine import output_digest
    from features.histories.engine_spark import write_frame
    from features.histories.output import typed_sql
    from features.targets.labels import event_span
    from features.targets.spec import Cohort
    from models.explain import reason_type_mix
    from models.listinfo import list_description

    say = progress or (lambda done, total: None)
    as_of = pd.Timestamp(as_of).normalize()
    first, last = event_span(tables)
    if not (first < as_of <= last + pd.Timedelta(days=1)):
        raise ScoringError(f"as-of date {as_of.date()} is outside the data ({first.date()} … {last.date()})")
    spark = engine.spark
    spec = ref.model.spec()
    model = ref.model
    histories = ClientHistories(tables, spec, engine=engine)
    features = engine.frame(typed_sql(spec, histories.sql(as_of))).persist()
    cached = [features]  # unpersisted at the end, whatever happens
    try:
        resident = features.count()
        grid, names = None, None
        if with_segments:
            grid = fit_grid(features)
            names = grid.segment_names("fi")
        cohort = model.cohort if model.cohort is not None and model.cohort != Cohort() else None
        flag_frame, members = _current_use(tables, as_of, engine, cohort, cached)
        if members is not None:
            features = features.join(members, "client_id", "left_semi")
        say(1, 4)
        scored = features.mapInPandas(_score_partitions(model, spec, grid, names), _SCORED).persist()
        cached.append(scored)
        n = scored.count()
        if n == 0:
            raise ScoringError(f"no client of {ref.name or model_uri}'s cohort is resident at {as_of.date()}")
        data_digest = _digest(scored)
        ranked = (scored.drop("row_hash")
                  .withColumn("rank", F.row_number().over(Window.orderBy(F.desc("probability"), F.asc("client_id"))))
                  .withColumn("percentile", F.lit(100.0) * (F.lit(1.0) - (F.col("rank") - 1) / F.lit(float(max(n, 1))))))
        by_unit = Window.partitionBy("unit")
        if explain_share >= 1:
            ranked = ranked.withColumn("explained", F.lit(bool(reasons)))
        else:
            within = F.row_number().over(by_unit.orderBy("rank"))
            limit = F.greatest(F.lit(1.0), F.ceil(F.lit(float(explain_share)) * F.count(F.lit(1)).over(by_unit)))
            ranked = ranked.withColumn("explained", F.lit(bool(reasons)) & (within <= limit))
        k = max(1, int(round(TOP_SHARE * n)))
        ranked = ranked.withColumn("top", F.col("rank") <= k).persist()
        cached.append(ranked)
        say(2, 4)
        if reasons:
            wanted = ranked.where(F.col("explained") | F.col("top")).select("client_id", "explained")
            found = (features.join(wanted, "client_id", "inner")
                     .mapInPandas(_reason_partitions(model, spec, reasons), _REASONS))
        else:
            found = spark.createDataFrame([], _REASONS)
        listed = (ranked.join(found, "client_id", "left").join(flag_frame, "client_id", "left")
                  .fillna(False, subset=["intensive_ongoing", "prior_high_use"])).persist()
        cached.append(listed)
        say(3, 4)
        # what the sidecar says, in one aggregate and the top rows
        stats = listed.agg(F.sum(F.when(F.col("probability_bound") == "over", 1).otherwise(0)).alias("over"),
                           F.sum(F.when(F.col("probability_bound") == "under", 1).otherwise(0)).alias("under"),
                           F.sum(F.col("intensive_ongoing").cast("int")).alias("intensive"),
                           F.sum(F.col("prior_high_use").cast("int")).alias("prior"),
                           F.sum(F.col("reasons_en").isNotNull().cast("int")).alias("explained")).toPandas().iloc[0]
        top_rows = (listed.where(F.col("top")).select("rank", "mix", "intensive_ongoing", "prior_high_use")
                    .toPandas().sort_values("rank"))
        top = {"share": TOP_SHARE, "clients": k}
        prior, intensive = top_rows["prior_high_use"].astype(bool), top_rows["intensive_ongoing"].astype(bool)
        top.update(prior_high_use=float(prior.mean()), intensive_ongoing=float(intensive.mean()),
                   either=float((prior | intensive).mean()))
        if reasons:
            feats = [str(m).split("|") if isinstance(m, str) and m else [] for m in top_rows["mix"]]
            top["reason_types"] = reason_type_mix(feats, model.dictionary, top=MIX_REASONS)
        columns = [F.col("client_id"), F.col("unit"), F.col("municipality"), F.col("probability"),
                   F.col("rank").cast("long").alias("rank"), F.col("percentile"), F.col("segment"),
                   *(F.col(f"reasons_{lang}") for lang in LANGS),
                   F.lit(ref.name).alias("model_name"), F.lit(ref.version).alias("model_version"),
                   F.lit(ref.run_id).alias("run_id"), F.lit(data_digest).alias("data_digest"),
                   F.lit(as_of.to_pydatetime()).cast("timestamp_ntz").alias("as_of"),
                   F.col("probability_bound"), F.col("probability_limit"), F.col("bin_observed_rate"),
                   F.col("intensive_ongoing"), F.col("prior_high_use"), F.col("reason_types")]
        final = listed.select(*columns)
        write_frame(final.mapInPandas(_checked, final.schema), out, partition_by=["unit"])
        say(4, 4)
    finally:
        for frame in cached:
            frame.unpersist()
        histories.close()
    calibrator = model.estimator.calibrator_
    about = list_description(model.target, model.cohort)
    name = Path(str(out)).name
    sidecar = {"risk_list": name, "rows": n, "resident": resident, "outside_cohort": resident - n,
               "as_of": str(as_of.date()), "model_uri": model_uri,
               "model_name": ref.name, "model_version": ref.version, "run_id": ref.run_id,
               **about,
               "probability_bounds": {"over": _finite(getattr(calibrator, "over_", None)),
                                      "under": _finite(getattr(calibrator, "under_", None)),
                                      "over_rows": int(stats["over"]), "under_rows": int(stats["under"])},
               "intensive_ongoing": int(stats["intensive"]), "prior_high_use": int(stats["prior"]),
               "top": top, "data_digest": data_digest,
               "sha256": output_digest(out), "chunk_size": None,
               "reasons": reasons, "explain_share": explain_share, "explained": int(stats["explained"]),
               "engine": "spark", "layout": "folder partitioned by unit",
               "versions": versions(), "seconds": round(time.perf_counter() - t0, 1)}
    with atomic_path(Path(str(out) + ".json")) as tmp:
        Path(tmp).write_text(json.dumps(_json_safe(sidecar), indent=2, ensure_ascii=False))
    return sidecar


def fit_grid(features):
    """The need × resources grid fitted on a Spark feature table, its cut points computed on the cluster.

    :meth:`segmentation.grid.NeedResourceGrid.fit` learns one number per
    ``top_share`` rule: pandas' ``Series.quantile(1 - share)`` of the column
    over the clients with a value (pandas drops the missing ones and calls
    :func:`numpy.quantile`). Here the same quantile is taken over the Spark
    column's non-missing values from two order statistics with numpy's
    arithmetic (:func:`features.targets.labels_spark.spark_quantile`), so the
    thresholds are equal to the bit (tested) and the other rules, which need no
    fitting, are the configuration's. Two values per ``top_share`` rule reach
    the driver instead of the grid's columns of every resident.

    Parameters
    ----------
    features
        The Spark DataFrame of the features of every resident (the grid's columns at least).

    Returns
    -------
    segmentation.grid.NeedResourceGrid
        Fitted (``config_``, ``thresholds_``) for :meth:`~segmentation.grid.NeedResourceGrid.predict`; without
        ``labels_`` (no client is labelled on the driver).

    Raises
    ------
    ValueError
        If the feature table lacks a column a grid rule reads (the message of ``NeedResourceGrid.fit``).
    """
    from pyspark.sql import functions as F

    from features.targets.labels_spark import spark_quantile
    from segmentation.grid import AXES, NeedResourceGrid, check_grid_columns, load_grid_config

    config = load_grid_config(None)
    check_grid_columns(config, features.columns)
    rules = [rule for axis in AXES for rule in config.axis(axis).rules]
    thresholds = {}
    for rule in rules:
        if rule.op == "top_share":
            value = F.col(rule.column).cast("double")
            known = features.select(value.alias("v")).where(F.col("v").isNotNull() & ~F.isnan("v"))
            thresholds[rule.column] = spark_quantile(known, "v", 1 - rule.value)
    return NeedResourceGrid.from_thresholds(thresholds)


def _current_use(tables, as_of, engine, cohort, cached: list):
    """The current-use flags (a Spark DataFrame) and the cohort's client ids (None without a cohort).

    A validated dataset (the usual input, e.g. ``sote score`` on a folder): computed by the executors
    (:class:`features.targets.labels_spark.CurrentUse`; its cached rows are appended to ``cached``, which the
    caller unpersists). Tables already in the driver's memory (a mapping or validated tables): the
    one-machine functions on them, the ids and two flags sent to the cluster.
    """
    from features.targets.labels import is_dataset

    flag_schema = "client_id string, intensive_ongoing boolean, prior_high_use boolean"
    if is_dataset(tables):
        from features.targets.labels_spark import CurrentUse

        use = CurrentUse.compute(tables, as_of, engine=engine, cohort=cohort)
        cached.append(use.frame)
        return use.flags(), (use.members() if cohort is not None else None)
    from features.contract.validation import ValidatedTables
    from features.targets.labels import cohort_members, current_use_flags

    spark = engine.spark
    source = tables.tables if isinstance(tables, ValidatedTables) else tables
    flags = current_use_flags(source, as_of)
    frame = spark.createDataFrame(
        pd.DataFrame({"client_id": flags["client_id"].astype(str).astype(object),
                      "intensive_ongoing": flags["intensive_ongoing"].astype(bool),
                      "prior_high_use": flags["prior_top"].astype(bool)}), flag_schema)
    members = None
    if cohort is not None:
        ids = cohort_members(source, as_of, cohort).index.astype(str)
        members = spark.createDataFrame(pd.DataFrame({"client_id": pd.Series(ids, dtype=object)}), "client_id string")
    return frame, members
