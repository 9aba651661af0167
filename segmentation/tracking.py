"""MLflow tracking for sote: the one store set-up, and segmentations as runs.

:func:`use_experiment` is the single place that points MLflow at a store and
an experiment; training (:mod:`models.train`), scoring and the CLI call it
too. The default store is local: a SQLite database ``mlruns/mlflow.db`` with
artifacts in ``mlruns/artifacts`` (MLflow's plain-file store is frozen
upstream), one folder and no server. ``SOTE_TRACKING_URI`` (or
``MLFLOW_TRACKING_URI``) or an explicit URI points sote at a tracking server
instead.

For segmentations only aggregates are logged (one row per segment or per
candidate k), never the client-level assignments: no client id reaches the
tracking store.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from features.disclosure import suppress_small_cells
from features.provenance import frame_digest
from segmentation.segments import SegmentationResult

#: Folder of the local store, relative to the working directory.
DEFAULT_ROOT = "mlruns"


def default_store(root: str | Path = DEFAULT_ROOT) -> tuple[str, str]:
    """Tracking URI and artifact location of the local store under ``root`` (created if needed)."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def configure_tracking(uri: str | None = None, root: str | Path = DEFAULT_ROOT) -> str:
    """Point MLflow at ``uri``, the environment's setting, or the local store; return the URI in use."""
    import mlflow

    uri = uri or os.environ.get("SOTE_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri, _ = default_store(root)
    mlflow.set_tracking_uri(uri)
    return uri


def use_experiment(name: str, tracking_uri: str | None = None) -> str:
    """Configure the store (:func:`configure_tracking`), create ``name`` if needed and make it active.

    A new experiment on a local SQLite store keeps its artifacts beside the
    database (``<store>/artifacts``). Returns the experiment id.
    """
    import mlflow

    configure_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        uri = mlflow.get_tracking_uri()
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
        experiment_id = client.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def segmentation_metrics(result: SegmentationResult) -> dict[str, float]:
    """The figures a run records: k, silhouette of the chosen k, bootstrap stability, cost concentration."""
    model = result.model
    out: dict[str, float] = {"segments": float(len(result.profiles)), "clients": float(len(result.assignments))}
    scores = getattr(model, "scores_", None)
    if scores is not None and len(scores) and "silhouette" in scores:
        chosen = scores.loc[scores["k"] == getattr(model, "k_", None), "silhouette"]
        if len(chosen) and pd.notna(chosen.iloc[0]):
            out["silhouette"] = float(chosen.iloc[0])
    chosen = None
    if result.selection is not None and "chosen" in result.selection:
        chosen = result.selection[result.selection["chosen"]]
    elif scores is not None and "chosen" in scores:
        chosen = scores[scores["chosen"].astype(bool)]
    if chosen is not None and len(chosen):
        for col in ("eta2", "eta2_bands", "min_share"):
            if col in chosen and pd.notna(chosen[col].iloc[0]):
                out[f"chosen_{col}"] = float(chosen[col].iloc[0])
    stability = getattr(model, "stability_", np.nan)
    if stability is not None and np.isfinite(stability):
        out["stability_ari"] = float(stability)
    for key, value in result.concentration.items():
        if isinstance(value, (int, float, np.floating)):
            out[f"cost_{key}"] = float(value)
    return out


def log_segmentation(result: SegmentationResult, features: pd.DataFrame, *, as_of: str,
                     report_html: str | None = None, run_name: str | None = None,
                     comparison: pd.DataFrame | None = None) -> str:
    """Log one segmentation as an MLflow run in the active experiment; return the run id.

    :func:`track_segmentation` picks the store and experiment first.

    Parameters
    ----------
    result
        What :func:`segmentation.segments.segment_clients` returned.
    features
        The feature table it was fitted on (only its digest is logged).
    as_of
        The index date, as a tag.
    report_html
        The HTML report (:func:`segmentation.report.segmentation_html`), logged as
        ``segments.html`` when given.
    comparison
        Method-comparison table (:func:`segmentation.compare.compare_methods`),
        logged as ``segments/method_comparison.csv``.
    """
    import mlflow

    model = result.model
    params = {"method": result.method, "as_of": as_of, "features_digest": frame_digest(features)}
    for name in ("k", "k_range", "sample_size", "n_bootstrap", "min_cluster_share", "select", "min_segment_share",
                 "min_stability", "n_refits", "random_state"):
        if hasattr(model, name):
            params[name] = getattr(model, name)
    with mlflow.start_run(run_name=run_name or f"segments {result.method} {as_of}") as run:
        mlflow.log_params(params)
        mlflow.set_tags({"kind": "segmentation", "as_of": as_of})
        mlflow.log_metrics(segmentation_metrics(result))
        # per-segment figures leave the machine: a segment under the small-cell limit is blanked
        profiles = suppress_small_cells(result.profiles, n="clients", outcomes=None, keep=("segment", "segment_name"))
        mlflow.log_text(profiles.to_csv(index=False), "segments/profiles.csv")
        scores = getattr(model, "scores_", None)
        if scores is not None and len(scores):
            mlflow.log_text(scores.to_csv(index=False), "segments/k_selection.csv")
        if result.selection is not None:
            mlflow.log_text(result.selection.to_csv(index=False), "segments/method_selection.csv")
        if comparison is not None and len(comparison):
            mlflow.log_text(comparison.to_csv(index=False), "segments/method_comparison.csv")
        if result.concentration:
            figures = {k: float(v) for k, v in result.concentration.items() if not isinstance(v, pd.DataFrame)}
            mlflow.log_text(json.dumps(figures, indent=2), "segments/concentration.json")
            by_segment = result.concentration.get("by_segment")
            if isinstance(by_segment, pd.DataFrame):
                by_segment = suppress_small_cells(by_segment.reset_index() if "segment" not in by_segment
                                                  else by_segment, n="clients", outcomes=None, keep=("segment",))
                mlflow.log_text(by_segment.to_csv(index=False), "segments/cost_share_by_segment.csv")
        if report_html is not None:
            mlflow.log_text(report_html, "segments/segments.html")
        return run.info.run_id


def track_segmentation(result: SegmentationResult, features: pd.DataFrame, as_of: str,
                       report_html: str | None = None, experiment: str = "sote-segments",
                       tracking_uri: str | None = None, comparison: pd.DataFrame | None = None) -> str:
    """Log a segmentation's aggregates and report as a run of ``experiment``; return the run id.

    The store is ``tracking_uri``, the environment's setting or the local
    ``./mlruns`` (:func:`use_experiment`).
    """
    use_experiment(experiment, tracking_uri)
    return log_segmentation(result, features, as_of=as_of, report_html=report_html, comparison=comparison)
