"""Rule-based 2×2 segments (need × own resources), from documented data proxies in config."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

#: Cells in code order: (high need, weak resources) -> code = 2 * need + weak.
CELLS = ("self_reliant", "needs_guidance", "needs_cooperation", "comprehensive_support")
_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}


def load_grid_config(path: str | Path | None = None) -> dict:
    """Read and check a grid config (the packaged ``segmentation/config/grid.yaml`` when None)."""
    text = (resources.files("segmentation.config").joinpath("grid.yaml").read_text() if path is None
            else Path(path).read_text())
    cfg = yaml.safe_load(text)
    for axis in ("need", "weak_resources"):
        if axis not in cfg or not cfg[axis].get("rules"):
            raise ValueError(f"grid config {path or 'default'}: '{axis}' needs rules")
        for rule in cfg[axis]["rules"]:
            if rule.get("op") not in (*_OPS, "top_share") or "column" not in rule or "value" not in rule:
                raise ValueError(f"grid config {path or 'default'}: bad rule {rule}")
    for lang, names in cfg.get("labels", {}).items():
        if set(names) != set(CELLS):
            raise ValueError(f"grid config {path or 'default'}: labels[{lang}] must name exactly {CELLS}")
    return cfg


class NeedResourceGrid(ClusterMixin, BaseEstimator):
    """Suuntima-style segments: high/low need × weak/good own resources.

    Parameters
    ----------
    config
        Path of a grid YAML, or None for the packaged one.

    Attributes
    ----------
    config_ : dict
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
        for axis in ("need", "weak_resources"):
            for rule in self.config_[axis]["rules"]:
                if rule["op"] == "top_share":
                    values = X[rule["column"]].astype(float)
                    self.thresholds_[rule["column"]] = float(values.quantile(1 - rule["value"]))
        self.labels_ = self.predict(X)
        return self

    def _check_columns(self, X: pd.DataFrame) -> None:
        wanted = {r["column"] for axis in ("need", "weak_resources") for r in self.config_[axis]["rules"]}
        missing = sorted(wanted - set(X.columns))
        if missing:
            raise ValueError(f"feature table lacks columns used by the grid rules: {missing}")

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per axis and the rules that hold, per client (for explaining a cell)."""
        check_is_fitted(self, "config_")
        self._check_columns(X)
        out = {}
        for axis in ("need", "weak_resources"):
            total = np.zeros(len(X), int)
            for rule in self.config_[axis]["rules"]:
                values = X[rule["column"]].astype(float).to_numpy()
                if rule["op"] == "top_share":
                    hit = values > self.thresholds_[rule["column"]]
                else:
                    hit = _OPS[rule["op"]](values, float(rule["value"]))
                hit = np.where(np.isnan(values), False, hit)  # no record is no evidence
                out[f"{axis}:{rule['column']}"] = hit
                total += hit
            out[f"{axis}_points"] = total
        return pd.DataFrame(out, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cell code of each client: 2 × high need + weak resources."""
        pts = self.points(X)
        need = pts["need_points"].to_numpy() >= self.config_["need"]["min_points"]
        weak = pts["weak_resources_points"].to_numpy() >= self.config_["weak_resources"]["min_points"]
        return 2 * need.astype(int) + weak.astype(int)

    def segment_names(self, lang: str = "fi") -> dict[int, str]:
        """Code -> configured label in ``lang`` (fi, sv, en)."""
        check_is_fitted(self, "config_")
        labels = self.config_.get("labels", {})
        if lang not in labels:
            raise ValueError(f"no grid labels for language '{lang}' (have {sorted(labels)})")
        return {code: labels[lang][cell] for code, cell in enumerate(CELLS)}
