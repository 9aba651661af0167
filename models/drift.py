"""Drift statistics: binned summaries of a distribution and how far another one has moved from it.

A reference distribution is kept as a **binned summary**, never as rows:

- a number: interior cut points at the reference's quantiles and the count
  of clients in each bin (:func:`numeric_summary`);
- a category: the count of each level (:func:`categorical_summary`).

Every count in a summary describes at least :data:`features.disclosure.MIN_GROUP_CLIENTS`
clients: adjacent numeric bins are merged until each holds that many, rare
levels are pooled, and a missing count under the limit (or one whose
complement, the clients with a value, is under it) is withheld: ``missing``
is ``None`` and ``missing_range`` gives the interval it lies in. A feature
with under 50 values has no bins at all (``counts`` ``None``).

The comparisons:

- :func:`psi`: population stability index, ``sum((c - r) * ln(c / r))`` over
  the reference's bins, with additive smoothing of every share so that an
  empty bin gives a finite value;
- :func:`js_distance`: Jensen–Shannon distance (base 2, from 0 to 1) between
  two category distributions;
- :func:`level`: ``ok``, ``watch`` or ``act`` for a value against two thresholds,
  which :class:`MonitoringConfig` holds (``models/config/monitoring.yaml``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from features.config.loader import build, read_yaml
from features.disclosure import MIN_GROUP_CLIENTS

#: Verdicts, least to most serious.
LEVELS = ("ok", "watch", "act")
#: Name of the pooled levels that each had fewer than the small-cell limit of clients in the reference.
RARE = "(rare levels)"


def level(value: float, watch: float, act: float) -> str:
    """``act`` at or above ``act``, ``watch`` at or above ``watch``, else ``ok`` (a missing value is ``ok``)."""
    if value is None or not np.isfinite(value):
        return "ok"
    return "act" if value >= act else "watch" if value >= watch else "ok"


def worst(levels: Iterable[str]) -> str:
    """The most serious of ``levels`` (``ok`` when there are none)."""
    return LEVELS[max((LEVELS.index(x) for x in levels), default=0)]


def shares(counts, smoothing: float = 0.0) -> np.ndarray:
    """Counts as shares, each count first increased by ``smoothing`` (additive, Laplace-style).

    With ``smoothing`` ``a`` and ``k`` bins, a bin of ``c`` out of ``n`` becomes
    ``(c + a) / (n + k a)``: never zero, so a logarithm of it is finite.
    """
    c = np.asarray(counts, dtype=float) + smoothing
    total = c.sum()
    return c / total if total > 0 else np.full(len(c), np.nan)


def psi(reference_counts, current_counts, smoothing: float = 0.5) -> float:
    """Population stability index of two binned distributions over the same bins.

    Parameters
    ----------
    reference_counts, current_counts
        Clients per bin, same bins in the same order.
    smoothing
        Added to every count before the shares are taken (:func:`shares`), so
        an empty bin on either side gives a large but finite contribution.

    Returns
    -------
    float
        ``sum((c_i - r_i) * ln(c_i / r_i))``: 0 for identical shares, under 0.1
        usually read as stable, over 0.25 as a shift to act on. NaN when either
        side has no clients.
    """
    r, c = shares(reference_counts, smoothing), shares(current_counts, smoothing)
    if len(r) != len(c):
        raise ValueError(f"psi needs the same bins on both sides, got {len(r)} and {len(c)}")
    if np.isnan(r).any() or np.isnan(c).any():
        return float("nan")
    with np.errstate(divide="ignore"):  # without smoothing an empty bin gives infinity, as it should
        return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts, current_counts) -> float:
    """Jensen–Shannon distance (base 2: 0 identical, 1 disjoint) of two distributions over the same levels.

    The square root of the Jensen–Shannon divergence; a level missing on one
    side needs no smoothing (the mixture is never zero where either side is
    not). NaN when either side has no clients.
    """
    r, c = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if len(r) != len(c):
        raise ValueError(f"js_distance needs the same levels on both sides, got {len(r)} and {len(c)}")
    if r.sum() <= 0 or c.sum() <= 0:
        return float("nan")
    return float(jensenshannon(r, c, base=2))


def disclosed(count: int) -> int | None:
    """A count as it may leave the machine: itself if 0 or at least the small-cell limit, else None."""
    count = int(count)
    return count if count == 0 or count >= MIN_GROUP_CLIENTS else None


def missing_fields(n: int, missing: int) -> dict:
    """``missing`` as it may be written: the count, or ``None`` and ``missing_range`` when it is a small cell.

    A count is a small cell when it, or its complement ``n - missing`` (the
    clients with a value), is between 1 and 49: ``n`` is written, so either
    one gives the other away.
    """
    limit = MIN_GROUP_CLIENTS - 1
    if 0 < missing <= limit:
        return {"missing": None, "missing_range": [1, min(limit, n)]}
    if 0 < n - missing <= limit:
        return {"missing": None, "missing_range": [max(n - limit, 0), n - 1]}
    return {"missing": int(missing)}


def _finite(values: pd.Series) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return x[np.isfinite(x)]


def merge_small_bins(edges: np.ndarray, counts: np.ndarray, minimum: int = MIN_GROUP_CLIENTS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent bins until every bin holds at least ``minimum`` clients (or one bin is left).

    The smallest bin is merged with its smaller neighbour, removing the cut
    point between them, until none is under ``minimum``.
    """
    edges, counts = list(map(float, edges)), list(map(int, counts))
    while len(counts) > 1 and min(counts) < minimum:
        i = int(np.argmin(counts))
        if i == 0:
            j = 1
        elif i == len(counts) - 1:
            j = i - 1
        else:
            j = i - 1 if counts[i - 1] <= counts[i + 1] else i + 1
        lo, hi = min(i, j), max(i, j)
        counts[lo] += counts[hi]
        del counts[hi]
        del edges[lo]  # the cut point between bins lo and hi
    return np.asarray(edges, dtype=float), np.asarray(counts, dtype=np.int64)


def bin_counts(values, edges) -> np.ndarray:
    """Clients per bin of ``edges`` (bin i holds ``edges[i-1] < x <= edges[i]``); missing values left out."""
    x = _finite(values) if isinstance(values, pd.Series) else np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    edges = np.asarray(edges, dtype=float)
    return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1).astype(np.int64)


def numeric_summary(values: pd.Series, bins: int = 10, minimum: int = MIN_GROUP_CLIENTS) -> dict:
    """A number's binned summary: cut points at the reference quantiles and clients per bin.

    Parameters
    ----------
    values
        The reference values (missing and infinite values count as missing).
    bins
        Quantile bins wanted (deciles by default); tied quantiles give fewer.
    minimum
        Fewest clients in a bin; smaller bins are merged (:func:`merge_small_bins`).

    Returns
    -------
    dict
        ``kind`` ``"numeric"``, ``n`` (all rows), ``missing`` (:func:`missing_fields`),
        ``edges`` (interior cut points) and ``counts`` (one more than the edges).
        With 1 to ``minimum - 1`` values ``counts`` is ``None`` (a small cell).
    """
    x = _finite(values)
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(x, qs)) if len(x) else np.array([])
    counts = bin_counts(x, edges)
    edges, counts = merge_small_bins(edges, counts, minimum)
    few = 0 < len(x) < minimum  # under the limit even as one bin: no bins written
    return {"kind": "numeric", "n": int(len(values)), **missing_fields(len(values), len(values) - len(x)),
            "edges": [] if few else [float(e) for e in edges], "counts": None if few else [int(c) for c in counts]}


def categorical_summary(values: pd.Series, minimum: int = MIN_GROUP_CLIENTS, withheld: Iterable[str] = ()) -> dict:
    """A category's binned summary: clients per level, rare levels pooled.

    Parameters
    ----------
    values
        The reference values.
    minimum
        Levels with fewer clients are pooled under :data:`RARE`; their names are
        kept in ``rare`` (a level's name is no figure), the pool's count is
        :func:`disclosed`.
    withheld
        Values never to be written (the clients' identifiers): such a level is
        pooled and its name dropped.

    Returns
    -------
    dict
        ``kind`` ``"categorical"``, ``n``, ``missing``, ``counts`` (level -> clients),
        ``rare`` (names) and ``rare_count``.
    """
    present = values.dropna().astype(str)
    found = present.value_counts(sort=False)
    withheld = set(withheld)
    common = {str(k): int(v) for k, v in found.items() if v >= minimum and str(k) not in withheld}
    rare = sorted(str(k) for k, v in found.items() if str(k) not in common and str(k) not in withheld)
    pooled = int(found.sum() - sum(common.values()))
    return {"kind": "categorical", "n": int(len(values)), **missing_fields(len(values), len(values) - len(present)),
            "counts": dict(sorted(common.items())), "rare": rare, "rare_count": disclosed(pooled)}


def category_counts(values: pd.Series, summary: Mapping) -> tuple[np.ndarray, dict[str, int]]:
    """Current clients per reference level (the pool last) and the levels the reference never had.

    Returns
    -------
    (ndarray, dict)
        Counts aligned with ``list(summary["counts"]) + [RARE]``, and ``{level: clients}``
        of the levels that are neither a reference level nor one of its rare levels.
    """
    found = values.dropna().astype(str).value_counts(sort=False)
    levels = list(summary["counts"])
    rare = set(summary.get("rare", ()))
    known = [int(found.get(k, 0)) for k in levels]
    pooled = int(sum(v for k, v in found.items() if k in rare))
    unseen = {str(k): int(v) for k, v in sorted(found.items()) if k not in rare and k not in summary["counts"]}
    return np.asarray(known + [pooled], dtype=np.int64), unseen


def reference_counts(summary: Mapping) -> np.ndarray:
    """A summary's counts as an array (a categorical summary's pool last; a withheld pool as 0)."""
    if summary["kind"] == "numeric":
        return np.asarray(summary["counts"] if summary["counts"] is not None else [], dtype=np.int64)
    return np.asarray(list(summary["counts"].values()) + [summary.get("rare_count") or 0], dtype=np.int64)


def missing_rate(summary: Mapping) -> float:
    """A summary's share of missing values (NaN when withheld; see :func:`missing_change`)."""
    n, missing = summary["n"], summary.get("missing")
    return missing / n if n and missing is not None else float("nan")


def missing_change(summary: Mapping, current: float) -> float:
    """How far a current missing share lies from the reference's.

    A withheld reference count is only known to lie in its ``missing_range``:
    the change is then the distance from ``current`` to that interval (0 inside it).
    """
    n = summary["n"]
    if not n or not np.isfinite(current):
        return float("nan")
    if summary.get("missing") is not None:
        return abs(current - summary["missing"] / n)
    lo, hi = (v / n for v in summary["missing_range"])
    return float(max(lo - current, current - hi, 0.0))


def comparable(summary: Mapping, current_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the bins both can show.

    A categorical summary whose pool of rare levels was withheld (under the
    small-cell limit) has no count for the pool, so the pool is left out on
    both sides; otherwise every bin is compared.
    """
    ref = reference_counts(summary)
    cur = np.asarray(current_counts, dtype=np.int64)
    if summary["kind"] == "categorical" and summary.get("rare_count") is None:
        return ref[:-1], cur[:-1]
    return ref, cur


@dataclass(frozen=True)
class Levels:
    """Two thresholds of one statistic: at or above ``watch`` worth a look, at or above ``act`` act on it."""

    watch: float = field(metadata={"ge": 0})
    act: float = field(metadata={"ge": 0})

    def __post_init__(self):
        if self.act < self.watch:
            raise ValueError(f"act ({self.act}) must not be below watch ({self.watch})")


@dataclass(frozen=True)
class MonitoringConfig:
    """Thresholds and settings of drift monitoring (``models/config/monitoring.yaml``).

    Parameters
    ----------
    psi
        Population stability index of a number or of the score.
    js
        Jensen–Shannon distance of a category or of the segment shares.
    missing_rate
        Absolute change in a feature's share of missing values.
    unseen_share
        Share of current clients in levels the reference never had.
    band_share
        Absolute change in a unit's share of clients above a risk band.
    bins
        Reference quantile bins (tied quantiles and the small-cell limit give fewer).
    smoothing
        Added to each bin's count before PSI takes shares.
    max_categories
        A text column with more levels is not compared (an identifier or free text).
    plotted
        Most drifted features drawn in the report.
    """

    psi: Levels = Levels(0.1, 0.25)
    js: Levels = Levels(0.13, 0.21)
    missing_rate: Levels = Levels(0.05, 0.10)
    unseen_share: Levels = Levels(0.001, 0.01)
    band_share: Levels = Levels(0.05, 0.10)
    bins: int = field(default=10, metadata={"ge": 2, "le": 100})
    smoothing: float = field(default=0.5, metadata={"gt": 0})
    max_categories: int = field(default=200, metadata={"ge": 2})
    plotted: int = field(default=12, metadata={"ge": 1, "le": 60})


def load_monitoring_config(path: str | Path | None = None) -> MonitoringConfig:
    """Read monitoring thresholds (the packaged ``models/config/monitoring.yaml`` when ``path`` is None).

    Raises
    ------
    features.config.loader.ConfigError
        Naming the file, the key and the bad value.
    """
    raw, source = read_yaml(path, "monitoring.yaml", package="models.config")
    return build(MonitoringConfig, raw, source)
