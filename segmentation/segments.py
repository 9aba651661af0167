"""One call from a feature table to named segments, profiles and cost concentration."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from segmentation.cluster import METHODS, Segmenter
from segmentation.concentration import gini, segment_cost_shares, top_shares
from segmentation.grid import NeedResourceGrid
from segmentation.profiles import profile_segments

ALL_METHODS = ("auto", *METHODS, "grid")
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
        The fitted :class:`Segmenter` or :class:`NeedResourceGrid` (reusable on another date).
    method
        The method used (``auto`` resolves to ``kmeans`` or ``gmm``).
    concentration
        Gini and top-1/5/10 % cost shares of the cost the profiles were measured on.
    selection
        For ``auto``: silhouette of each candidate method.
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
                    grid_config: str | Path | None = None, lang: str = "fi", **segmenter_kw) -> SegmentationResult:
    """Segment the clients of a feature table.

    Parameters
    ----------
    features
        Client-history features as of one date (``client_id`` plus features).
    method
        ``kmeans``, ``gmm``, ``hdbscan``, ``grid`` (need × resources rules) or
        ``auto`` (k-means or mixture, whichever separates better by silhouette).
    k
        Number of segments or ``"auto"`` (not used by ``grid`` and ``hdbscan``).
    next_year_cost
        Cost of each client over the following year (aligned with ``features``),
        for the profiles' next-year cost shares and the concentration figures.
    random_state
        Seed of every random step.
    grid_config, lang
        Grid rules file and label language for ``method="grid"``.
    **segmenter_kw
        Passed to :class:`~segmentation.cluster.Segmenter` (``k_range``, ``n_bootstrap``, …).
    """
    if method not in ALL_METHODS:
        raise ValueError(f"method must be one of {ALL_METHODS}, got {method!r}")
    selection = None
    if method == "grid":
        model = NeedResourceGrid(grid_config).fit(features)
        codes = model.labels_
        names = model.segment_names(lang)
    else:
        if method == "auto":
            candidates = {m: Segmenter(method=m, k=k, random_state=random_state, **segmenter_kw).fit(features)
                          for m in ("kmeans", "gmm")}
            rng = np.random.default_rng(random_state)
            rows = []
            for m, seg in candidates.items():
                Z = seg.preprocess_.transform(features)
                sample = rng.choice(len(Z), min(len(Z), 5_000), replace=False)
                labels = seg.labels_[sample]
                sil = silhouette_score(Z[sample], labels) if len(np.unique(labels)) > 1 else -1.0
                rows.append({"method": m, "k": seg.k_, "silhouette": sil, "stability": seg.stability_})
            selection = pd.DataFrame(rows)
            method = str(selection.loc[selection["silhouette"].idxmax(), "method"])
            model = candidates[method]
        else:
            model = Segmenter(method=method, k=k, random_state=random_state, **segmenter_kw).fit(features)
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
