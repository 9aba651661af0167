"""What a drift comparison reads: feature tables and risk lists, and the binned summary of a reference.

:func:`reference_summary` reduces a reference (a feature table, a risk list,
or a model's training rows and scores) to binned summaries
(:mod:`models.drift`): never rows, every count over at least 50 clients, no
client id. :mod:`models.train` stores it with each model as
``reference/summary.json``; :func:`load_reference` reads it back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS
from models import drift
from models.drift import MonitoringConfig, load_monitoring_config

#: Where a trained model keeps its reference summary (an artifact of its run).
SUMMARY_ARTIFACT = "reference/summary.json"
SUMMARY_FORMAT = "sote-drift-reference/1"
#: Columns of a risk list compared as features (the rest are identifiers, texts or the score).
RISKLIST_FEATURES = ("unit", "municipality", "intensive_ongoing", "prior_high_use")
#: Never compared: identifiers, dates and labels.
NOT_FEATURES = ("client_id", "as_of", "label")
#: Risk bands of a list, as multiples of the reference's base rate (:data:`models.risklists.BANDS`).
BAND_MULTIPLES = {"raised": 1.5, "high": 3.0}


def is_risklist(frame: pd.DataFrame) -> bool:
    return {"probability", "rank", "model_name"} <= set(frame.columns)


def read_input(source, option: str = "input") -> pd.DataFrame:
    """A feature table or risk list from a DataFrame or a ``.parquet`` / ``.csv`` file.

    A file whose columns make it a risk list is read and checked with
    :func:`models.risklists.read_risklist`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For another suffix, or a file that cannot be read.
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if path.is_dir():  # a Parquet folder written by an engine (sote features/score --engine spark)
        from features.histories.engine import read_parquet_output

        try:
            names = read_parquet_output(path).schema.names
        except ValueError as err:
            raise ValueError(f"{option} {path}: {err}") from err
        if {"probability", "rank", "model_name"} <= set(names):
            from models.risklists import read_risklist

            return read_risklist(path)
        return read_parquet_output(path).to_pandas().sort_values("client_id", ignore_index=True)
    if not path.is_file():
        raise FileNotFoundError(f"{option} not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a broken file
            raise ValueError(f"{option} {path} is not a readable Parquet file: {str(err).splitlines()[0]}") from err
    elif path.suffix == ".csv":
        names = list(pd.read_csv(path, nrows=0).columns)
    else:
        raise ValueError(f"{option} {path}: use a .parquet or .csv file (a feature table or a risk list)")
    if {"probability", "rank", "model_name"} <= set(names):
        from models.risklists import read_risklist

        return read_risklist(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"client_id": str, "sex": str, "language": str, "municipality": str,
                                    "unit": str})


def grid_segments(features: pd.DataFrame, thresholds: dict | None = None) -> tuple[pd.Series, dict] | None:
    """Need × resources cells of each row (:class:`segmentation.grid.NeedResourceGrid`) and the grid's cut points.

    With ``thresholds`` (a reference's ``thresholds_``) the grid is not refitted:
    current clients are placed by the reference's cut points. None when the
    table lacks the grid's columns.
    """
    from segmentation.grid import CELLS, NeedResourceGrid, load_grid_config

    grid = NeedResourceGrid()
    try:
        if thresholds is None:
            grid.fit(features)
        else:
            grid.config_, grid.thresholds_ = load_grid_config(), dict(thresholds)
        codes = grid.predict(features)
    except (ValueError, KeyError):
        return None
    return pd.Series(np.asarray(CELLS, dtype=object)[codes], index=features.index), dict(grid.thresholds_)


def _kind_of(values: pd.Series) -> str:
    return "numeric" if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) else "categorical"


def reference_summary(frame: pd.DataFrame, columns=None, *, scores=None, units=None, segments=None,
                      grid_thresholds: dict | None = None, config: MonitoringConfig | None = None,
                      about: dict | None = None) -> dict:
    """The binned summary of a reference: what a model stores at training and what :func:`monitor` compares with.

    Parameters
    ----------
    frame
        Feature table (or risk list) of the reference clients.
    columns
        Columns to summarise (default: every column but identifiers, dates and labels).
    scores
        The model's probabilities for the rows (score PSI and risk bands), or None.
    units
        Each row's unit (share above the bands per unit), or None.
    segments
        Each row's segment, or None.
    grid_thresholds
        When ``segments`` are need × resources grid cells: the grid's cut points,
        so current clients can be placed the same way.
    config
        Bins and category limit (default: the packaged config).
    about
        Extra keys recorded (target, index date, digest, …).

    Returns
    -------
    dict
        JSON-ready: ``format``, ``n``, ``features`` (name -> :func:`models.drift.numeric_summary`
        or :func:`models.drift.categorical_summary`), ``skipped`` (text columns with
        too many levels), and ``score``, ``units``, ``segments`` when given. No rows,
        no client ids (a level equal to one is withheld), and every count covers
        at least 50 clients.
    """
    config = config or load_monitoring_config()
    ids = frame["client_id"].astype(str).tolist() if "client_id" in frame else []
    if columns is None:
        columns = [c for c in frame.columns if c not in NOT_FEATURES]
    features, skipped = {}, []
    for name in columns:
        values = frame[name]
        if _kind_of(values) == "numeric":
            features[name] = drift.numeric_summary(values.astype(float), config.bins)
        elif values.nunique(dropna=True) > config.max_categories:
            skipped.append(name)
        else:
            features[name] = drift.categorical_summary(values, withheld=ids)
    out = {"format": SUMMARY_FORMAT, "n": int(len(frame)), **(about or {}), "bins": config.bins,
           "min_bin_clients": MIN_GROUP_CLIENTS, "features": features, "skipped": skipped}
    if scores is not None:
        p = np.asarray(scores, dtype=float)
        base = float(np.nanmean(p)) if len(p) else float("nan")
        out["score"] = {**drift.numeric_summary(pd.Series(p), config.bins), "base_rate": base}
        if units is not None:
            out["units"] = unit_bands(p, pd.Series(np.asarray(units, dtype=object)).astype(str), base, set(ids))
    if segments is not None:
        seg = pd.Series(np.asarray(segments, dtype=object))
        out["segments"] = {**drift.categorical_summary(seg, withheld=ids), "grid_thresholds": grid_thresholds}
    return out


def unit_bands(p: np.ndarray, units: pd.Series, base: float, withheld=frozenset()) -> dict:
    """Per unit with at least 50 clients: clients and the shares at or above each band (``base`` × multiple).

    A unit named like one of ``withheld`` (the clients' ids) is left out.
    """
    frame = pd.DataFrame({"unit": units.to_numpy(), **{b: p >= m * base for b, m in BAND_MULTIPLES.items()}})
    out = {}
    for unit, rows in frame.groupby("unit", sort=True):
        if len(rows) >= MIN_GROUP_CLIENTS and str(unit) not in withheld:
            out[str(unit)] = {"n": int(len(rows)), **{b: float(rows[b].mean()) for b in BAND_MULTIPLES}}
    return out


@dataclass
class Side:
    """One side of a comparison as read: its kind, rows, scores, units and segments."""

    kind: str  # "features" | "risklist" | "summary"
    frame: pd.DataFrame | None = None
    scores: np.ndarray | None = None
    units: pd.Series | None = None
    segments: pd.Series | None = None
    digest: str = ""
    grid: dict | None = None

    def columns(self, model_columns=None) -> list[str]:
        if self.kind == "risklist":
            return [c for c in RISKLIST_FEATURES if c in self.frame]
        names = model_columns if model_columns is not None else self.frame.columns
        return [c for c in names if c not in NOT_FEATURES and c in self.frame]


def _aligned(segments, frame: pd.DataFrame) -> pd.Series | None:
    if segments is None:
        return None
    if isinstance(segments, pd.Series) and "client_id" in frame and not segments.index.equals(frame.index):
        return pd.Series(segments.reindex(frame["client_id"].astype(str).to_numpy()).to_numpy(), index=frame.index)
    return pd.Series(np.asarray(segments, dtype=object), index=frame.index)


def side_of(frame: pd.DataFrame, model, segments=None, grid: dict | None = None) -> Side:
    from features.provenance import frame_digest

    if is_risklist(frame):
        seg = _aligned(segments, frame) if segments is not None else frame["segment"]
        return Side("risklist", frame, frame["probability"].to_numpy(float), frame["unit"].astype(str), seg,
                     frame_digest(frame.drop(columns=[c for c in frame.columns if c.startswith("reasons_")])))
    scores = model.predict_proba(frame)[:, 1] if model is not None else None
    units = frame["unit"].astype(str) if "unit" in frame else None
    side = Side("features", frame, scores, units, _aligned(segments, frame), frame_digest(frame))
    if segments is None:
        found = grid_segments(frame, grid)
        if found is not None:
            side.segments, side.grid = found
    return side


def load_reference(model_uri: str, tracking_uri: str | None = None):
    """The loaded model (:func:`models.scoring.load_model`) and the reference summary stored with it.

    Raises
    ------
    ValueError
        If the model's run holds no ``reference/summary.json`` (trained before
        summaries were stored: pass a reference table instead).
    """
    import mlflow

    from models.scoring import load_model

    ref = load_model(model_uri, tracking_uri)
    try:
        text = mlflow.artifacts.load_text(f"runs:/{ref.run_id}/{SUMMARY_ARTIFACT}")
    except Exception as err:  # noqa: BLE001 - MLflow raises several types for "no such artifact"
        raise ValueError(f"model {model_uri} stores no reference summary ({SUMMARY_ARTIFACT} in run {ref.run_id}); "
                         "it was trained before summaries were stored: give a reference feature table or risk "
                         "list instead, or train it again") from err
    summary = json.loads(text)
    if summary.get("format") != SUMMARY_FORMAT:
        raise ValueError(f"model {model_uri}: reference summary of format {summary.get('format')!r}, expected "
                         f"{SUMMARY_FORMAT!r}")
    return ref, summary


def model_reference(model, training: pd.DataFrame, about: dict | None = None,
                    config: MonitoringConfig | None = None) -> dict:
    """The reference summary a model stores at training: its features, scores, units and segments there.

    Parameters
    ----------
    model
        The fitted :class:`~models.pyfunc.ServiceNeedModel`.
    training
        The training date's feature table (the rows the model learned from).
    about
        Recorded with it: target, index date, the rows' digest.
    """
    scores = model.predict_proba(training)[:, 1]
    found = grid_segments(training)
    segments, thresholds = found if found is not None else (None, None)
    return reference_summary(training, model.columns, scores=scores,
                             units=training["unit"] if "unit" in training else None, segments=segments,
                             grid_thresholds=thresholds, config=config, about=about)
