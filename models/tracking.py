"""Where MLflow keeps runs: a local store under ``mlruns/`` by default, a server by setting.

MLflow's plain-file store is frozen upstream, so the local default is a
SQLite database ``mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts`` —
still one folder, no server. ``SOTE_TRACKING_URI`` (or ``MLFLOW_TRACKING_URI``)
points sote at a real tracking server instead.
"""
from __future__ import annotations

import os
from pathlib import Path


def default_store(root: str | Path = "mlruns") -> tuple[str, str]:
    """Tracking URI and artifact location of the local store under ``root``."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def configure_tracking(uri: str | None = None, root: str | Path = "mlruns") -> str:
    """Point MLflow at ``uri``, the environment's setting, or the local store; return the URI in use."""
    import mlflow

    uri = uri or os.environ.get("SOTE_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri, _ = default_store(root)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, root: str | Path = "mlruns") -> str:
    """Create the experiment if needed (artifacts beside a local SQLite store); return its id."""
    import mlflow

    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    uri = mlflow.get_tracking_uri()
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)
