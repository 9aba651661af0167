"""Rule-based 2×2 segments (need × own resources), from documented data proxies in config."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from features.config.loader import build, read_yaml

#: Cells in code order: (high need, weak resources) -> code = 2 * need + weak.
CELLS = ("self_reliant", "needs_guidance", "needs_cooperation", "comprehensive_support")
AXES = ("need", "weak_resources")
_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}


@dataclass(frozen=True)
class GridRule:
    """One point of an axis: ``column op value`` holds (``top_share``: among the top ``value`` share)."""

    column: str
    op: str = field(metadata={"choices": (*_OPS, "top_share")})
    value: float
    why: str = ""

    def __post_init__(self):
        if self.op == "top_share" and not 0 < self.value < 1:
            raise ValueError(f"top_share of {self.column} must be strictly between 0 and 1, got {self.value}")


@dataclass(frozen=True)
class GridAxis:
    """An axis: its rules and the points that make a client high on it."""

    rules: tuple[GridRule, ...] = field(metadata={"non_empty": True})
    min_points: int = field(metadata={"ge": 1})

    def __post_init__(self):
        if self.min_points > len(self.rules):
            raise ValueError(f"min_points {self.min_points} exceeds the {len(self.rules)} rule(s)")


@dataclass(frozen=True)
class GridConfig:
    """The need × own-resources grid: two axes and cell labels per language."""

    need: GridAxis
    weak_resources: GridAxis
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        for lang, names in self.labels.items():
            if set(names) != set(CELLS):
                raise ValueError(f"labels.{lang} must name exactly {CELLS}, got {sorted(names)}")

    def axis(self, name: str) -> GridAxis:
        """The axis ``need`` or ``weak_resources``."""
        return getattr(self, name)


def load_grid_config(path: str | Path | None = None) -> GridConfig:
    """Read and check a grid config (the packaged ``segmentation/config/grid.yaml`` when None).

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file, the key path and the bad value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = read_yaml(path, "grid.yaml", package="segmentation.config")
    return build(GridConfig, raw, f"grid config {source}")


def check_grid_columns(config: GridConfig, columns) -> None:
    """Raise ValueError naming the columns the grid's rules read that ``columns`` lacks.

    Shared by :class:`NeedResourceGrid` (a pandas table) and the Spark scorer's grid (a Spark table's columns).
    """
    wanted = {r.column for axis in AXES for r in config.axis(axis).rules}
    missing = sorted(wanted - set(columns))
    if missing:
        raise ValueError(f"feature table lacks columns used by the grid rules: {missing}")


class NeedResourceGrid(ClusterMixin, BaseEstimator):
    """Suuntima-style segments: high/low need × weak/good own resources.

    Parameters
    ----------
    config
        Path of a grid YAML, or None for the packaged one.

    Attributes
    ----------
    config_ : GridConfig
        The loaded configuration.
    thresholds_ : dict
        Column -> value above which a ``top_share`` rule holds (learned in ``fit``).
    labels_ : ndarray
        Cell code of each training client (0 … 3, see :data:`CELLS`).
    """

    def __init__(self, config: str | Path | None = None):
        self.config = config

    def fit(self, X: pd.DataFrame, y=None) -> "NeedResourceGrid":
        self.config_ = load_grid_config(self.config)
        self._check_columns(X)
        self.thresholds_ = {}
        for axis in AXES:
            for rule in self.config_.axis(axis).rules:
                if rule.op == "top_share":
                    values = X[rule.column].astype(float)
                    self.thresholds_[rule.column] = float(values.quantile(1 - rule.value))
        self.labels_ = self.predict(X)
        return self

    @classmethod
    def from_thresholds(cls, thresholds: dict, config: str | Path | None = None) -> "NeedResourceGrid":
        """A fitted grid from cut points learned elsewhere (e.g. on a cluster).

        Parameters
        ----------
        thresholds
            Column -> cut point, one for each ``top_share`` rule of the configuration
            (what :meth:`fit` stores in ``thresholds_``).
        config
            Path of a grid YAML, or None for the packaged one.

        Returns
        -------
        NeedResourceGrid
            Fitted (``config_``, ``thresholds_``) for :meth:`predict` and :meth:`points`; without
            ``labels_`` (no client was labelled).

        Raises
        ------
        ValueError
            If a ``top_share`` rule has no cut point, a cut point names no such rule, or one is not a number.
        """
        grid = cls(config=config)
        grid.config_ = load_grid_config(config)
        wanted = {r.column for axis in AXES for r in grid.config_.axis(axis).rules if r.op == "top_share"}
        given = set(thresholds)
        if wanted - given or given - wanted:
            raise ValueError(f"grid thresholds must name exactly the top_share rules' columns {sorted(wanted)}; "
                             f"missing {sorted(wanted - given)}, unknown {sorted(given - wanted)}")
        bad = {c: v for c, v in thresholds.items() if isinstance(v, bool) or not isinstance(v, Real)}
        if bad:
            raise ValueError(f"grid thresholds must be numbers; got {bad}")
        grid.thresholds_ = {c: float(thresholds[c]) for c in sorted(wanted)}
        return grid

    def _check_columns(self, X: pd.DataFrame) -> None:
        check_grid_columns(self.config_, X.columns)

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per axis and the rules that hold, per client (for explaining a cell)."""
        check_is_fitted(self, "config_")
        self._check_columns(X)
        out = {}
        for axis in AXES:
            total = np.zeros(len(X), int)
            for rule in self.config_.axis(axis).rules:
                values = X[rule.column].astype(float).to_numpy()
                if rule.op == "top_share":
                    hit = values > self.thresholds_[rule.column]
                else:
                    hit = _OPS[rule.op](values, rule.value)
                hit = np.where(np.isnan(values), False, hit)  # no record is no evidence
                out[f"{axis}:{rule.column}"] = hit
                total += hit
            out[f"{axis}_points"] = total
        return pd.DataFrame(out, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cell code of each client: 2 × high need + weak resources."""
        pts = self.points(X)
        need = pts["need_points"].to_numpy() >= self.config_.need.min_points
        weak = pts["weak_resources_points"].to_numpy() >= self.config_.weak_resources.min_points
        return 2 * need.astype(int) + weak.astype(int)

    def segment_names(self, lang: str = "fi") -> dict[int, str]:
        """Code -> configured label in ``lang`` (fi, sv, en)."""
        check_is_fitted(self, "config_")
        labels = self.config_.labels
        if lang not in labels:
            raise ValueError(f"no grid labels for language '{lang}' (have {sorted(labels)})")
        return {code: labels[lang][cell] for code, cell in enumerate(CELLS)}
