"""Logging segmentations to the configured MLflow store (the application-level wiring)."""
from __future__ import annotations


def track_segmentation(result, features, as_of: str, report_html: str | None = None,
                       experiment: str = "sote-segments", tracking_uri: str | None = None) -> str:
    """Log a segmentation's aggregates and report as a run of ``experiment``; return the run id.

    The store is ``tracking_uri``, the environment's setting or the local
    ``./mlruns`` (see :mod:`models.tracking`).
    """
    import mlflow

    from models.tracking import configure_tracking, ensure_experiment
    from segmentation.tracking import log_segmentation

    configure_tracking(tracking_uri)
    ensure_experiment(experiment)
    mlflow.set_experiment(experiment)
    return log_segmentation(result, features, as_of=as_of, report_html=report_html)
