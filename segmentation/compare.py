"""Comparing segmentation methods by the figures a planner signs: k, sizes, stability, out-of-time η², ARI.

:func:`compare_methods` puts several segmentations of the same clients side by
side (the report's method-comparison table). On a synthetic county the true
latent groups can be added with :func:`synthetic_archetypes` — for measuring
only: nothing in sote reads them to build or tune segments.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation.segments import SegmentationResult, method_figures


def synthetic_archetypes(data: str | Path, as_of, client_ids: pd.Series) -> np.ndarray | None:
    """Each client's true latent group from a synthetic county's ``truth.parquet``, aligned with ``client_ids``.

    For measuring segmentations only (ARI against the truth). Returns None when
    the folder has no ``truth.parquet`` (real data) or the truth has no row for
    ``as_of``; clients without a truth row get ``None``.
    """
    path = Path(data) / "truth.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["client_id", "as_of", "archetype"])
    truth = truth[truth["as_of"] == pd.Timestamp(as_of).normalize()]
    if truth.empty:
        return None
    first = truth.drop_duplicates("client_id")  # one row per client and target: the archetype is the same
    arch = pd.Series(first["archetype"].astype(object).to_numpy(), index=first["client_id"].astype(str).to_numpy())
    return arch.reindex(client_ids.astype(str).to_numpy()).to_numpy()


def compare_methods(features: pd.DataFrame, results: Mapping[str, SegmentationResult],
                    next_year_cost: pd.Series | None = None, archetypes: np.ndarray | None = None) -> pd.DataFrame:
    """One row per segmentation of the clients of ``features``.

    Parameters
    ----------
    features
        The feature table every result segmented (same rows, same order).
    results
        Label (e.g. ``"auto (kmeans)"``, ``"needs"``) -> segmentation.
    next_year_cost
        Cost over the following year, aligned with ``features`` (gives the
        out-of-time η² and the η² of as many bands of last year's cost).
    archetypes
        True latent groups on a synthetic county (measuring only); clients
        without one are left out of the ARI.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``k``, ``smallest_share``, ``largest_share``, ``stability``,
        ``eta2_next_year_cost``, ``eta2_cost_bands`` and ``ari_archetypes`` when measured.
    """
    rows = []
    known = None if archetypes is None else pd.notna(archetypes)
    for label, result in results.items():
        codes = result.assignments["segment"].to_numpy()
        if len(codes) != len(features):
            raise ValueError(f"{label}: {len(codes)} assignments for {len(features)} clients")
        row = {"method": label, **method_figures(features, codes, next_year_cost,
                                                 stability=getattr(result.model, "stability_", np.nan))}
        if known is not None and known.any():
            from sklearn.metrics import adjusted_rand_score

            row["ari_archetypes"] = float(adjusted_rand_score(archetypes[known].astype(str), codes[known]))
        rows.append(row)
    return pd.DataFrame(rows)
