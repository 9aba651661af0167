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
from typing import Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features.contract.io import atomic_path, write_table
from features.provenance import frame_digest, versions

LANGS = ("fi", "sv", "en")
#: Share of a list, from the top, whose reason types are measured (the sidecar's ``reason_types_top5pct``).
TOP_SHARE = 0.05
#: Reasons per client counted in the reason-type mix.
MIX_REASONS = 3
#: Columns :func:`score` adds to the core risk list (optional in :class:`RiskList` for older lists).
OPTIONAL_COLUMNS = ("probability_bound", "probability_limit", "bin_observed_rate", "intensive_ongoing",
                    "prior_high_use", "reason_types")


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
    # Written by score() since issue 13; optional so that lists written before still read.
    # "over" / "under": the probability is a calibration boundary bin, shown as over / under probability_limit
    probability_bound: Optional[Series[str]] = pa.Field(nullable=True, isin=["over", "under"])
    probability_limit: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=1)
    # outcome rate of the calibration bin of a bounded value (missing when that bin is a small cell)
    bin_observed_rate: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=1)
    # already receiving intensive services (features.targets.spec.intensive_services) at the index date
    intensive_ongoing: Optional[Series[bool]]
    # in the top decile of last year's cost over the population at the index date
    prior_high_use: Optional[Series[bool]]
    # the reason type (change, level, demographic) of each reason, "|"-separated as the reasons
    reason_types: Optional[Series[str]] = pa.Field(nullable=True)

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
    """The rows of ``features`` in the model's cohort at ``as_of`` (the cohort rule of its target).

    ``tables``: validated tables, a mapping of table name to DataFrame, or a validated dataset.
    """
    from features.contract.validation import ValidatedTables
    from features.targets.labels import cohort_members
    from features.targets.spec import Cohort

    cohort = ref.model.cohort
    if cohort is None or cohort == Cohort():
        return features  # the whole population
    members = cohort_members(tables.tables if isinstance(tables, ValidatedTables) else tables, as_of, cohort).index
    return features[features["client_id"].astype(str).isin(members)]


def _reasons(model, X: pd.DataFrame, top: int) -> dict[str, list]:
    """Reasons in each language (``" | "``-joined) and, under ``"features"``, the features behind them."""
    from models.explain import contributions, reason_features, reason_sentences

    frame = model.frame(X)
    contrib, _ = contributions(model.booster, frame)
    sentences = reason_sentences(contrib, frame, model.dictionary, top=top, langs=LANGS)
    return {**{lang: [" | ".join(r) for r in sentences[lang]] for lang in LANGS},
            "features": reason_features(contrib, top)}


def _reason_kinds(model) -> dict[str, str]:
    dictionary = model.dictionary
    return dictionary.set_index("feature")["reason_type"].to_dict() if "reason_type" in dictionary else {}


def calibrated(model, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities of the model's outcome and which are calibration boundary values.

    The same probabilities as ``model.predict_proba(X)[:, 1]``, and per row
    :data:`models.calibration.OVER` (1, the top isotonic bin), ``UNDER`` (-1)
    or ``MEASURED`` (0) from :meth:`models.calibration.ProbabilityCalibrator.bounds`.
    """
    estimator = model.estimator
    raw = estimator.raw_probability(model.features(X))
    calibrator = estimator.calibrator_
    return calibrator.predict(raw), calibrator.bounds(raw)


def bound_columns(calibrator, codes: np.ndarray) -> dict[str, object]:
    """The risk list's ``probability_bound``, ``probability_limit`` and ``bin_observed_rate`` columns.

    A bounded row is shown as "over" (top bin) or "under" (bottom bin) the
    calibrator's readable bound; the bin's observed outcome rate goes with it
    unless the bin is a small cell (:func:`features.disclosure.small_cell`).
    """
    from features.disclosure import small_cell
    from models.calibration import OVER, UNDER

    n = len(codes)
    bound = np.full(n, None, dtype=object)
    limit = np.full(n, np.nan)
    rate = np.full(n, np.nan)
    bins = getattr(calibrator, "bins_", None)
    for code, name, row, value in ((OVER, "over", -1, getattr(calibrator, "over_", np.nan)),
                                   (UNDER, "under", 0, getattr(calibrator, "under_", np.nan))):
        rows = codes == code
        if not rows.any() or bins is None:
            continue
        step = bins.iloc[row]
        bound[rows] = name
        limit[rows] = value
        if not small_cell(step["clients"], step["outcomes"]):
            rate[rows] = step["observed_rate"]
    return {"probability_bound": pd.array(bound, dtype="string"), "probability_limit": limit,
            "bin_observed_rate": rate}


def top_summary(risk: pd.DataFrame, features: list | None = None, dictionary: pd.DataFrame | None = None,
                share: float = TOP_SHARE, reasons: int = MIX_REASONS) -> dict:
    """What the top ``share`` of a list holds: already heavy users, intensive care, and the reason-type mix.

    Parameters
    ----------
    risk
        A risk list (best rank first or not).
    features
        Per row of ``risk`` in rank order of the top share, the features behind
        the reasons (:func:`models.explain.reason_features`); None leaves out the mix.
    dictionary
        The model's feature dictionary (``reason_type`` per feature).

    Returns
    -------
    dict
        ``share``, ``clients``; ``prior_high_use``, ``intensive_ongoing`` and
        ``either`` (shares of those clients, when the list has the flags);
        ``reason_types`` (:func:`models.explain.reason_type_mix` of their first
        ``reasons`` reasons).
    """
    from models.explain import reason_type_mix

    k = max(1, int(round(share * len(risk)))) if len(risk) else 0
    top = risk.nsmallest(k, "rank")
    out: dict = {"share": share, "clients": k}
    if "prior_high_use" in top and "intensive_ongoing" in top and k:
        prior, intensive = top["prior_high_use"].astype(bool), top["intensive_ongoing"].astype(bool)
        out.update(prior_high_use=float(prior.mean()), intensive_ongoing=float(intensive.mean()),
                   either=float((prior | intensive).mean()))
    if features is not None and dictionary is not None:
        out["reason_types"] = reason_type_mix(features, dictionary, top=reasons)
    return out


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
                   flags: pd.DataFrame | None = None, progress=None) -> pd.DataFrame:
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
    flags
        :func:`features.targets.labels.current_use_flags` at ``as_of`` (or None):
        adds ``intensive_ongoing`` and ``prior_high_use``.

    Returns
    -------
    pandas.DataFrame
        The list, best rank first, with the calibration-bound columns
        (:func:`bound_columns`) and ``reason_types``. ``attrs["top"]`` holds
        :func:`top_summary` of its top 5 % (the reason-type mix of their top-3
        reasons is measured whatever ``explain_share`` is; with ``reasons=0`` it is left out).
    """
    if chunk_size < 1:
        raise ScoringError("chunk size must be positive")
    if not 0 < explain_share <= 1:
        raise ScoringError(f"explain share must be in (0, 1], got {explain_share}")
    features = features.sort_values("client_id", kind="stable").reset_index(drop=True)
    n = len(features)
    prob = np.empty(n)
    codes = np.zeros(n, dtype=np.int8)
    texts = {lang: np.full(n, None, dtype=object) for lang in LANGS}
    kinds = np.full(n, None, dtype=object)
    chosen = np.full(n, None, dtype=object)  # features behind each explained client's reasons
    for start in range(0, n, chunk_size):
        part = features.iloc[start:start + chunk_size]
        prob[start:start + len(part)], codes[start:start + len(part)] = calibrated(ref.model, part)
        if progress:
            progress(min(start + chunk_size, n), 2 * n if reasons else n)
    order = np.lexsort((features["client_id"].to_numpy(), -prob))  # ties broken by id: deterministic
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    reason_type = _reason_kinds(ref.model)
    if reasons:
        rows = explained_rows(features["unit"].astype(str), rank, explain_share)
        for start in range(0, len(rows), chunk_size):
            take = rows[start:start + chunk_size]
            found = _reasons(ref.model, features.iloc[take], reasons)
            for lang in LANGS:
                texts[lang][take] = found[lang]
            for i, feats in zip(take, found["features"]):
                chosen[i] = feats
                kinds[i] = "|".join(reason_type.get(f, "level") for f in feats)
            if progress:
                progress(n + int(n * (start + len(take)) / max(len(rows), 1)), 2 * n)
    seg = (segments.reindex(features["client_id"].to_numpy()).to_numpy(dtype=object) if segments is not None
           else np.full(n, None, dtype=object))
    columns = {}
    if flags is not None:
        known = flags.set_index(flags["client_id"].astype(str))
        ids = features["client_id"].astype(str)
        columns = {"intensive_ongoing": known["intensive_ongoing"].reindex(ids).fillna(False).astype(bool).to_numpy(),
                   "prior_high_use": known["prior_top"].reindex(ids).fillna(False).astype(bool).to_numpy()}
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
        **bound_columns(ref.model.estimator.calibrator_, codes),
        **columns,
        "reason_types": pd.array(kinds, dtype="string"),
    }).sort_values("rank", kind="stable").reset_index(drop=True)
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    risk = RiskList.validate(out, lazy=True)
    top_feats = None
    if reasons:
        k = max(1, int(round(TOP_SHARE * n))) if n else 0
        top_rows = order[:k]
        missing = [i for i in top_rows if chosen[i] is None]  # outside every unit's explained share
        if missing:
            from models.explain import contributions, reason_features

            for start in range(0, len(missing), chunk_size):
                take = missing[start:start + chunk_size]
                contrib, _ = contributions(ref.model.booster, ref.model.frame(features.iloc[take]))
                for i, feats in zip(take, reason_features(contrib, MIX_REASONS)):
                    chosen[i] = feats
        top_feats = [chosen[i] for i in top_rows]
    risk.attrs["top"] = top_summary(risk, top_feats, ref.model.dictionary)
    return risk


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _json_safe(value):
    """``value`` with every NaN or infinity replaced by None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


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
        A data folder (validated into a dataset, :func:`features.contract.stream.open_dataset`,
        whose Parquet is scanned: only the windows the cohort and the flags need come
        into pandas), a validated dataset, or validated tables.
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
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ScoringError(f"risk list {out}: use a .parquet or .csv file name")
    ref = load_model(model_uri, tracking_uri)
    if isinstance(data, (str, Path)):
        from features.contract.stream import open_dataset

        with open_dataset(data) as dataset:
            return _score(ref, model_uri, dataset, as_of, out, t0, chunk_size=chunk_size, reasons=reasons,
                          explain_share=explain_share, with_segments=with_segments, histories=histories,
                          progress=progress)
    return _score(ref, model_uri, data, as_of, out, t0, chunk_size=chunk_size, reasons=reasons,
                  explain_share=explain_share, with_segments=with_segments, histories=histories, progress=progress)


def _score(ref: ModelRef, model_uri: str, tables, as_of, out: Path, t0: float, *, chunk_size, reasons,
           explain_share, with_segments, histories, progress) -> dict:
    """:func:`score` once the model is loaded and the data are open (a dataset or tables in pandas)."""
    from features.histories.build import build_features
    from features.targets.labels import event_span

    as_of = pd.Timestamp(as_of).normalize()
    first, last = event_span(tables)
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
    from features.targets.labels import current_use_flags
    from models.listinfo import list_description

    flags = current_use_flags(tables, as_of)
    risk = score_features(ref, features, as_of, segments=segments, chunk_size=chunk_size, reasons=reasons,
                          explain_share=explain_share, flags=flags, progress=progress)
    top = risk.attrs.pop("top")
    about = list_description(ref.model.target, ref.model.cohort)
    risk.attrs = {"sote_list": about}  # kept in the Parquet file's metadata; the sidecar says the same
    write_table(risk, out)
    calibrator = ref.model.estimator.calibrator_
    sidecar = {"risk_list": out.name, "rows": len(risk), "resident": resident, "outside_cohort": resident - len(risk),
               "as_of": str(as_of.date()), "model_uri": model_uri,
               "model_name": ref.name, "model_version": ref.version, "run_id": ref.run_id,
               **about,
               "probability_bounds": {"over": _finite(getattr(calibrator, "over_", None)),
                                      "under": _finite(getattr(calibrator, "under_", None)),
                                      "over_rows": int((risk["probability_bound"] == "over").sum()),
                                      "under_rows": int((risk["probability_bound"] == "under").sum())},
               "intensive_ongoing": int(risk["intensive_ongoing"].sum()),
               "prior_high_use": int(risk["prior_high_use"].sum()),
               "top": top,
               "data_digest": risk["data_digest"].iloc[0] if len(risk) else "",
               "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "chunk_size": chunk_size,
               "reasons": reasons, "explain_share": explain_share,
               "explained": int(risk["reasons_en"].notna().sum()), "versions": versions(),
               "seconds": round(time.perf_counter() - t0, 1)}
    with atomic_path(out.with_name(out.name + ".json")) as tmp:
        Path(tmp).write_text(json.dumps(_json_safe(sidecar), indent=2, ensure_ascii=False))
    return sidecar
