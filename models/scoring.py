"""Batch scoring: a registered model scores its cohort at a date into an explained risk list.

The features are rebuilt with the feature spec the model carries, and only
the model's own cohort is scored: a target's model (say ``young_adult_mhsu``,
aged 18-29 with mental-health or substance contacts) ranks the clients it was
trained for; everyone else resident at the date is left out of the list (the
sidecar records how many).

Chunked, deterministic (same inputs → byte-identical Parquet) and atomic: the
list and its JSON sidecar are written to temporary names and renamed only
when complete, so a failed or interrupted run leaves the previous list intact.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features.contract.io import atomic_path, write_table
from features.provenance import frame_digest, versions

LANGS = ("fi", "sv", "en")


class RiskList(pa.DataFrameModel):
    """The contract of a risk list: one row per client of the model's cohort resident at the index date."""

    client_id: Series[str] = pa.Field(unique=True)
    unit: Series[str]
    municipality: Series[str]
    probability: Series[float] = pa.Field(ge=0, le=1)
    rank: Series[int] = pa.Field(ge=1)
    percentile: Series[float] = pa.Field(ge=0, le=100)
    segment: Series[str] = pa.Field(nullable=True)
    # None: not explained (outside the explained share of the unit); "": explained, nothing raises the risk
    reasons_fi: Series[str] = pa.Field(nullable=True)
    reasons_sv: Series[str] = pa.Field(nullable=True)
    reasons_en: Series[str] = pa.Field(nullable=True)
    model_name: Series[str]
    model_version: Series[str]
    run_id: Series[str]
    data_digest: Series[str]
    as_of: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = False


class ScoringError(ValueError):
    """Bad input to scoring, with a message meant for the person running it."""


@dataclass
class ModelRef:
    """A loaded pyfunc with what the risk list records about it."""

    uri: str
    name: str
    version: str
    run_id: str
    pyfunc: object
    model: object  # models.pyfunc.ServiceNeedModel


def load_model(uri: str, tracking_uri: str | None = None) -> ModelRef:
    """Load a registered (``models:/name@alias`` or ``models:/name/3``) or logged model."""
    import mlflow

    from models.pyfunc import ServiceNeedModel
    from segmentation.tracking import configure_tracking

    configure_tracking(tracking_uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except Exception as err:  # noqa: BLE001 - MLflow raises several types for "not there"
        raise ScoringError(f"cannot load model {uri!r}: {str(err).splitlines()[0]}") from err
    name, version = uri, ""
    if uri.startswith("models:/"):
        ref = uri[len("models:/"):]
        client = mlflow.MlflowClient()
        try:
            if "@" in ref:
                name, alias = ref.split("@", 1)
                version = str(client.get_model_version_by_alias(name, alias).version)
            elif "/" in ref:
                name, version = ref.split("/", 1)
        except Exception:  # noqa: BLE001 - a logged (unregistered) model id has no registry entry
            name, version = ref, ""
    run_id = pyfunc.metadata.run_id or ""
    model = pyfunc.unwrap_python_model()
    if not isinstance(model, ServiceNeedModel) or not hasattr(model, "estimator"):
        raise ScoringError(f"model {uri!r} is not a service-need model of this sote version; train it again")
    return ModelRef(uri, name, version, run_id, pyfunc, model)


def cohort_of(ref: ModelRef, tables, features: pd.DataFrame, as_of) -> pd.DataFrame:
    """The rows of ``features`` in the model's cohort at ``as_of`` (the cohort rule of its target)."""
    from features.targets.labels import cohort_members
    from features.targets.spec import Cohort

    cohort = ref.model.cohort
    if cohort is None or cohort == Cohort():
        return features  # the whole population
    members = cohort_members(tables.tables, as_of, cohort).index
    return features[features["client_id"].astype(str).isin(members)]


def _reasons(model, X: pd.DataFrame, top: int) -> dict[str, list[str]]:
    from models.explain import contributions, reason_sentences

    frame = model.frame(X)
    contrib, _ = contributions(model.booster, frame)
    sentences = reason_sentences(contrib, frame, model.dictionary, top=top, langs=LANGS)
    return {lang: [" | ".join(r) for r in sentences[lang]] for lang in LANGS}


def explained_rows(units: pd.Series, rank: np.ndarray, share: float) -> np.ndarray:
    """Rows to explain: the highest-ranked ``share`` of each unit's clients (at least one per unit)."""
    if share >= 1:
        return np.arange(len(rank))
    frame = pd.DataFrame({"unit": units.to_numpy(), "rank": rank})
    within = frame.groupby("unit", sort=False)["rank"].rank(method="first")
    size = frame.groupby("unit", sort=False)["rank"].transform("size")
    return np.flatnonzero(within.to_numpy() <= np.maximum(1, np.ceil(share * size.to_numpy())))


def score_features(ref: ModelRef, features: pd.DataFrame, as_of, *, segments: pd.Series | None = None,
                   chunk_size: int = 50_000, reasons: int = 5, explain_share: float = 1.0,
                   progress=None) -> pd.DataFrame:
    """Score a feature table in chunks into a risk list (validated against :class:`RiskList`).

    Parameters
    ----------
    ref
        The loaded model (:func:`load_model`).
    features
        Feature table from the model's spec, one row per client.
    segments
        Segment name per client id, or None.
    chunk_size
        Clients per chunk (bounds memory; the output does not depend on it).
    reasons
        Plain-language reasons per client (0: none).
    explain_share
        Share of each unit's highest-ranked clients who get reasons (1: all).
        SHAP contributions are the costly part of scoring; a case manager reads
        the top of their own unit's list, so ``0.2`` explains every client they
        could reach and leaves the rest ``None`` (not explained).
    """
    if chunk_size < 1:
        raise ScoringError("chunk size must be positive")
    if not 0 < explain_share <= 1:
        raise ScoringError(f"explain share must be in (0, 1], got {explain_share}")
    features = features.sort_values("client_id", kind="stable").reset_index(drop=True)
    n = len(features)
    prob = np.empty(n)
    texts = {lang: np.full(n, None, dtype=object) for lang in LANGS}
    for start in range(0, n, chunk_size):
        part = features.iloc[start:start + chunk_size]
        prob[start:start + len(part)] = ref.model.predict_proba(part)[:, 1]
        if progress:
            progress(min(start + chunk_size, n), 2 * n if reasons else n)
    order = np.lexsort((features["client_id"].to_numpy(), -prob))  # ties broken by id: deterministic
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    if reasons:
        rows = explained_rows(features["unit"].astype(str), rank, explain_share)
        for start in range(0, len(rows), chunk_size):
            take = rows[start:start + chunk_size]
            for lang, lines in _reasons(ref.model, features.iloc[take], reasons).items():
                texts[lang][take] = lines
            if progress:
                progress(n + int(n * (start + len(take)) / max(len(rows), 1)), 2 * n)
    seg = (segments.reindex(features["client_id"].to_numpy()).to_numpy(dtype=object) if segments is not None
           else np.full(n, None, dtype=object))
    out = pd.DataFrame({
        "client_id": features["client_id"].astype(str).to_numpy(),
        "unit": features["unit"].astype(str).to_numpy(),
        "municipality": features["municipality"].astype(str).to_numpy(),
        "probability": prob,
        "rank": rank,
        "percentile": 100.0 * (1.0 - (rank - 1) / max(n, 1)),
        "segment": pd.array(seg, dtype="string"),
        **{f"reasons_{lang}": pd.array(texts[lang], dtype="string") for lang in LANGS},
        "model_name": ref.name, "model_version": ref.version, "run_id": ref.run_id,
        "data_digest": frame_digest(features, with_key=True),
        "as_of": pd.Timestamp(as_of).normalize(),
    }).sort_values("rank", kind="stable").reset_index(drop=True)
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return RiskList.validate(out, lazy=True)


def score(model_uri: str, data, as_of, out: str | Path, *, chunk_size: int = 50_000, reasons: int = 5,
          explain_share: float = 1.0, with_segments: bool = True, tracking_uri: str | None = None,
          histories=None, progress=None) -> dict:
    """Score the model's cohort at ``as_of`` and write the risk list atomically.

    Features are built with the spec the model carries; clients resident at
    ``as_of`` but outside the model's cohort (:func:`cohort_of`) are left out
    of the list, and the sidecar records how many (``outside_cohort``).

    Parameters
    ----------
    model_uri
        ``models:/high_use@champion``, ``models:/high_use/3`` or a logged model URI.
    data
        A data folder or validated tables.
    as_of
        Index date; must lie inside the data.
    reasons, explain_share, chunk_size
        See :func:`score_features`.
    out
        Risk-list Parquet (or CSV) path; a JSON sidecar ``<out>.json`` records the run.
    with_segments
        Add the need × resources segment (rule-based, Finnish labels) of each client.
    histories
        A :class:`features.histories.build.ClientHistories` over the same data to reuse
        (with ``cache=True``, several models scored at one date build the
        features once); used only when its spec is the model's spec.

    Returns
    -------
    dict
        The sidecar contents.
    """
    from features.histories.build import build_features
    from features.contract.load import load_tables

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ScoringError(f"risk list {out}: use a .parquet or .csv file name")
    ref = load_model(model_uri, tracking_uri)
    tables = load_tables(data) if isinstance(data, (str, Path)) else data
    as_of = pd.Timestamp(as_of).normalize()
    ev = tables.tables["events"]["start"]
    first, last = ev.min(), ev.max()
    if not (first < as_of <= last + pd.Timedelta(days=1)):
        raise ScoringError(f"as-of date {as_of.date()} is outside the data ({first.date()} … {last.date()})")
    if histories is not None and histories.spec == ref.model.spec():
        features = histories.features(as_of)
    else:
        features = build_features(tables, as_of, spec=ref.model.spec())
    segments = None
    if with_segments:
        from segmentation.grid import NeedResourceGrid

        grid = NeedResourceGrid().fit(features)
        names = grid.segment_names("fi")
        segments = pd.Series([names[c] for c in grid.labels_], index=features["client_id"].astype(str).to_numpy())
    resident = len(features)
    features = cohort_of(ref, tables, features, as_of)
    if features.empty:
        raise ScoringError(f"no client of {ref.name or model_uri}'s cohort is resident at {as_of.date()}")
    risk = score_features(ref, features, as_of, segments=segments, chunk_size=chunk_size, reasons=reasons,
                          explain_share=explain_share, progress=progress)
    write_table(risk, out)
    sidecar = {"risk_list": out.name, "rows": len(risk), "resident": resident, "outside_cohort": resident - len(risk),
               "as_of": str(as_of.date()), "model_uri": model_uri,
               "model_name": ref.name, "model_version": ref.version, "run_id": ref.run_id,
               "data_digest": risk["data_digest"].iloc[0] if len(risk) else "",
               "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "chunk_size": chunk_size,
               "reasons": reasons, "explain_share": explain_share,
               "explained": int(risk["reasons_en"].notna().sum()), "versions": versions(),
               "seconds": round(time.perf_counter() - t0, 1)}
    with atomic_path(out.with_name(out.name + ".json")) as tmp:
        Path(tmp).write_text(json.dumps(sidecar, indent=2))
    return sidecar
