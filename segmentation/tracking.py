"""Segmentations as MLflow runs: choice of method and k, stability, profiles, concentration, the report.

Only aggregates are logged (one row per segment or per candidate k), never the
client-level assignments: no client id reaches the tracking store. The caller
points MLflow at a store and experiment first (``sote`` does this with
:mod:`models.tracking`).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from segmentation.segments import SegmentationResult


def features_digest(features: pd.DataFrame) -> str:
    """Digest of a feature table's values (client ids left out), to tell data versions apart."""
    values = features.drop(columns=["client_id"], errors="ignore")
    h = pd.util.hash_pandas_object(values, index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


def segmentation_metrics(result: SegmentationResult) -> dict[str, float]:
    """The figures a run records: k, silhouette of the chosen k, bootstrap stability, cost concentration."""
    model = result.model
    out: dict[str, float] = {"segments": float(len(result.profiles)), "clients": float(len(result.assignments))}
    scores = getattr(model, "scores_", None)
    if scores is not None and len(scores) and "silhouette" in scores:
        chosen = scores.loc[scores["k"] == getattr(model, "k_", None), "silhouette"]
        if len(chosen) and pd.notna(chosen.iloc[0]):
            out["silhouette"] = float(chosen.iloc[0])
    stability = getattr(model, "stability_", np.nan)
    if stability is not None and np.isfinite(stability):
        out["stability_ari"] = float(stability)
    for key, value in result.concentration.items():
        if isinstance(value, (int, float, np.floating)):
            out[f"cost_{key}"] = float(value)
    return out


def log_segmentation(result: SegmentationResult, features: pd.DataFrame, *, as_of: str,
                     report_html: str | None = None, run_name: str | None = None) -> str:
    """Log one segmentation as an MLflow run in the active experiment; return the run id.

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
    """
    import mlflow

    model = result.model
    params = {"method": result.method, "as_of": as_of, "features_digest": features_digest(features)}
    for name in ("k", "k_range", "sample_size", "n_bootstrap", "min_cluster_share", "random_state"):
        if hasattr(model, name):
            params[name] = getattr(model, name)
    with mlflow.start_run(run_name=run_name or f"segments {result.method} {as_of}") as run:
        mlflow.log_params(params)
        mlflow.set_tags({"kind": "segmentation", "as_of": as_of})
        mlflow.log_metrics(segmentation_metrics(result))
        mlflow.log_text(result.profiles.to_csv(index=False), "segments/profiles.csv")
        scores = getattr(model, "scores_", None)
        if scores is not None and len(scores):
            mlflow.log_text(scores.to_csv(index=False), "segments/k_selection.csv")
        if result.selection is not None:
            mlflow.log_text(result.selection.to_csv(index=False), "segments/method_selection.csv")
        if result.concentration:
            figures = {k: float(v) for k, v in result.concentration.items() if not isinstance(v, pd.DataFrame)}
            mlflow.log_text(json.dumps(figures, indent=2), "segments/concentration.json")
            by_segment = result.concentration.get("by_segment")
            if isinstance(by_segment, pd.DataFrame):
                mlflow.log_text(by_segment.to_csv(index=False), "segments/cost_share_by_segment.csv")
        if report_html is not None:
            mlflow.log_text(report_html, "segments/segments.html")
        return run.info.run_id
