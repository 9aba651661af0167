"""One call from a feature table to named segments, profiles and cost concentration."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from segmentation.cluster import METHODS, PRIOR_COST, Segmenter, cost_bands, eta_squared
from segmentation.concentration import gini, segment_cost_shares, top_shares
from segmentation.grid import NeedResourceGrid
from segmentation.needs import NeedSegments
from segmentation.profiles import profile_segments

ALL_METHODS = ("auto", *METHODS, "grid", "needs")
#: Methods whose segments are declared rules rather than learned from the data.
RULE_METHODS = ("grid", "needs")
#: Length of the "next year" whose cost the profiles and the concentration figures use.
NEXT_YEAR_DAYS = 365


@dataclass
class SegmentationResult:
    """Segments of one index date.

    Attributes
    ----------
    assignments
        One row per client: ``client_id``, ``segment`` (code), ``segment_name``.
    profiles
        One row per segment (see :func:`segmentation.profiles.profile_segments`).
    model
        The fitted :class:`Segmenter`, :class:`NeedResourceGrid` or :class:`NeedSegments` (reusable on another date).
    method
        The method used (``auto`` resolves to ``kmeans`` or ``gmm``).
    concentration
        Gini and top-1/5/10 % cost shares of the cost the profiles were measured on.
    selection
        For ``auto``: every candidate (method and k) with its figures (see
        :attr:`Segmenter.scores_`), the chosen one flagged ``chosen``.
    """

    assignments: pd.DataFrame
    profiles: pd.DataFrame
    model: object
    method: str
    concentration: dict = field(default_factory=dict)
    selection: pd.DataFrame | None = None

    def assign(self, features: pd.DataFrame) -> pd.Series:
        """Segment names of the clients of another feature table (e.g. a later date), indexed by ``client_id``.

        The fitted model is applied as is (no refit), so the names mean the same
        segments as in :attr:`profiles` — what segment migration needs.
        """
        names = self.profiles.set_index("segment")["segment_name"]
        return pd.Series(names.reindex(self.model.predict(features)).to_numpy(),
                         index=features["client_id"].astype(str).to_numpy(), name="segment_name")


def horizon_cost(events: pd.DataFrame, client_ids: pd.Series, as_of, days: int = NEXT_YEAR_DAYS) -> pd.Series:
    """Cost of each client's events starting in [as_of, as_of + days), aligned with ``client_ids``.

    Costs must already be filled (see :func:`features.contract.load.load_tables`); a
    missing cost is an error rather than a silent zero.
    """
    t0 = pd.Timestamp(as_of)
    ev = events[(events["start"] >= t0) & (events["start"] < t0 + pd.Timedelta(days=days))]
    if ev["cost_eur"].isna().any():
        raise ValueError("events have missing costs; load them with features.contract.load.load_tables (fills unit costs)")
    cost = ev.groupby("client_id", observed=True)["cost_eur"].sum()
    return pd.Series(cost.reindex(client_ids.to_numpy(), fill_value=0.0).to_numpy(), index=client_ids.index)


def segment_clients(features: pd.DataFrame, method: str = "kmeans", k: int | str = "auto", *,
                    next_year_cost: pd.Series | None = None, random_state: int = 0,
                    grid_config: str | Path | None = None, lang: str = "fi", needs_config: str | Path | None = None,
                    **segmenter_kw) -> SegmentationResult:
    """Segment the clients of a feature table.

    Parameters
    ----------
    features
        Client-history features as of one date (``client_id`` plus features).
    method
        ``kmeans``, ``gmm``, ``hdbscan``, ``grid`` (need × resources rules),
        ``needs`` (declared need-based segments, :mod:`segmentation.needs`) or
        ``auto``: k-means and the mixture each over ``k_range``, every
        candidate scored by the planner criteria of
        :class:`~segmentation.cluster.Segmenter` (stability, smallest
        segment, out-of-time η² of ``next_year_cost`` against as many bands
        of last year's cost); the largest eligible k is kept (ties: higher
        η², then higher stability).
    k
        Number of segments or ``"auto"`` (not used by ``grid`` and ``hdbscan``).
    next_year_cost
        Cost of each client over the following year (aligned with ``features``),
        for the profiles' next-year cost shares and the concentration figures,
        and for the data-driven methods' choice of k (never to fit segments).
    random_state
        Seed of every random step.
    grid_config, lang
        Grid rules file and label language for ``method="grid"`` (``lang`` also for ``needs``).
    needs_config
        Need-based segments file for ``method="needs"`` (the packaged one when None).
    **segmenter_kw
        Passed to :class:`~segmentation.cluster.Segmenter` (``k_range``, ``n_bootstrap``, …).
    """
    if method not in ALL_METHODS:
        raise ValueError(f"method must be one of {ALL_METHODS}, got {method!r}")
    selection = None
    y = None if next_year_cost is None else np.asarray(next_year_cost, dtype=float)
    if method == "grid":
        model = NeedResourceGrid(grid_config).fit(features)
        codes = model.labels_
        names = model.segment_names(lang)
    elif method == "needs":
        model = NeedSegments(needs_config).fit(features)
        codes = model.labels_
        names = model.segment_names(lang)
    else:
        if method == "auto":
            candidates = {m: Segmenter(method=m, k=k, random_state=random_state, **segmenter_kw).fit(features, y)
                          for m in ("kmeans", "gmm")}
            selection = pd.concat([_candidate_rows(m, seg) for m, seg in candidates.items()], ignore_index=True)
            best = _best_candidate(selection)
            selection["chosen"] = selection.index == best
            method = str(selection.loc[best, "method"])
            model = candidates[method]
        else:
            model = Segmenter(method=method, k=k, random_state=random_state, **segmenter_kw).fit(features, y)
        codes = model.labels_
        names = None
    profiles = profile_segments(features, codes, next_year_cost=next_year_cost)
    if names is not None:
        profiles["segment_name"] = profiles["segment"].map(names)
    name_of = profiles.set_index("segment")["segment_name"]
    assignments = pd.DataFrame({"client_id": features["client_id"].to_numpy(), "segment": codes,
                                "segment_name": name_of.reindex(codes).to_numpy()})
    concentration = {}
    if next_year_cost is not None:
        concentration = {"gini": gini(next_year_cost), **top_shares(next_year_cost),
                         "by_segment": segment_cost_shares(assignments["segment_name"], next_year_cost)}
    return SegmentationResult(assignments, profiles, model, method, concentration, selection)


def _candidate_rows(method: str, seg: Segmenter) -> pd.DataFrame:
    """The candidates one fitted Segmenter scored (one row for a fixed k), with the method."""
    scores = seg.scores_
    if scores is None or not len(scores) or "stability" not in scores:
        row = {"k": seg.k_, "stability": seg.stability_, "min_share": float(np.bincount(seg.labels_).min()
                                                                          / len(seg.labels_)),
               "eta2": np.nan, "eta2_bands": np.nan, "eligible": True}
        scores = pd.DataFrame([row])
    out = scores.copy()
    out.insert(0, "method", method)
    out["chosen"] = False
    if "chosen" in scores:
        out["chosen_within_method"] = scores["chosen"].to_numpy()
    else:
        out["chosen_within_method"] = out["k"] == seg.k_
    return out


def _best_candidate(selection: pd.DataFrame):
    """Index of the candidate kept among each method's own choice.

    Eligible ones (meeting every planner criterion) first, by the largest k, then
    higher η², then higher stability; when no method has an eligible k, the
    most stable of the methods' fall-backs.
    """
    own = selection[selection["chosen_within_method"]].copy()
    eligible = own[own["eligible"].fillna(False).astype(bool)]
    if len(eligible):
        return eligible.sort_values(["k", "eta2", "stability"], ascending=False, na_position="last").index[0]
    return own.sort_values(["stability", "k"], ascending=False, na_position="last").index[0]


def method_figures(features: pd.DataFrame, segments: np.ndarray, next_year_cost: pd.Series | np.ndarray | None,
                   *, stability: float = np.nan, archetypes: np.ndarray | None = None,
                   prior_cost: str = PRIOR_COST) -> dict:
    """The figures a planner compares methods by: k, sizes, stability, out-of-time η², and ARI when measured.

    Parameters
    ----------
    features
        The feature table the segments belong to (for last year's cost bands).
    segments
        Segment of each row of ``features``.
    next_year_cost
        Cost over the following year, aligned with ``features`` (None: no η²).
    stability
        Bootstrap stability of the method (NaN for rules: they do not vary).
    archetypes
        On a synthetic county, each client's true latent group — for measuring
        only; gives ``ari_archetypes``.
    """
    from sklearn.metrics import adjusted_rand_score

    segments = np.asarray(segments)
    shares = pd.Series(segments).value_counts(normalize=True)
    out = {"k": int(len(shares)), "smallest_share": float(shares.min()), "largest_share": float(shares.max()),
           "stability": float(stability)}
    if next_year_cost is not None:
        y = np.asarray(next_year_cost, dtype=float)
        out["eta2_next_year_cost"] = eta_squared(segments, y)
        if prior_cost in features:
            out["eta2_cost_bands"] = eta_squared(cost_bands(features[prior_cost].to_numpy(float), len(shares)), y)
    if archetypes is not None:
        out["ari_archetypes"] = float(adjusted_rand_score(np.asarray(archetypes), segments))
    return out
