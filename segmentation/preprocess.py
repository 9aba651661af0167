"""Turning a client-history feature table into a use profile fit for clustering.

Service use is heavy tailed (most clients have none, a few have hundreds of
contacts), so counts, costs and days are log-transformed (or rank-transformed)
before scaling; otherwise a handful of clients would be the whole geometry.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

#: Default columns of a use profile: last year's use per service line, multi-sector use, age,
#: functional capacity and recorded conditions.
DEFAULT_PATTERNS = (
    r"^(?!cost_total|count_total).+_count_365d$",
    r"^.+_days_365d$",
    r"^cost_total_365d$",
    r"^service_lines_365d$",
    r"^chronic_conditions$",
    r"^age$",
    r"^rai_(adl_h|cps|maple)_last$",
    r"^dx_",
    r"^charlson_index$",
)
_HEAVY = re.compile(r"(_count_|_cost_|_days_|^cost_total|^count_total)")

#: Blocks of a use profile: each carries a different kind of information (recorded conditions, which
#: service lines a client uses and how much, who the client is: age and functional capacity). A column goes to the first block
#: whose pattern it matches; columns matching none form the block ``other``.
DEFAULT_BLOCKS = (
    ("conditions", r"^(dx_|chronic_conditions$|charlson_index$)"),
    ("service_use", r"(_count_365d|_days_365d|^cost_total_365d|^service_lines_365d)$"),
    ("person", r"^(age|rai_.+)$"),
)
#: Two blocks: recorded conditions, and everything about use and the person together.
TWO_BLOCKS = (
    ("conditions", r"^(dx_|chronic_conditions$|charlson_index$)"),
    ("use_and_person", r"(_count_365d|_days_365d|^cost_total_365d|^service_lines_365d|^age|^rai_.+)$"),
)
#: The same with the level of use (total cost, number of service lines) as a block of its own.
FOUR_BLOCKS = (
    ("conditions", r"^(dx_|chronic_conditions$|charlson_index$)"),
    ("service_mix", r"^(?!cost_total|count_total).+_(count|days)_365d$"),
    ("level", r"^(cost_total_365d|count_total_365d|service_lines_365d)$"),
    ("person", r"^(age|rai_.+)$"),
)
#: Default weights of :data:`TWO_BLOCKS` in ``Segmenter``'s preprocessing: recorded conditions carry 1.5 times
#: the total variance of use and the person together (60 % / 40 %; see docs/segmentation.md, "Block weights").
CONDITIONS_WEIGHT = (("conditions", 1.5),)
BLOCK_SCALINGS = ("none", "equal", "pca")


def select_columns(columns: list[str], patterns: tuple[str, ...]) -> list[str]:
    """Columns matching any of the regular expressions, in table order."""
    regexes = [re.compile(p) for p in patterns]
    return [c for c in columns if any(r.search(c) for r in regexes)]


class UseProfileTransformer(TransformerMixin, BaseEstimator):
    """Select use-profile columns, tame heavy tails, impute and scale.

    Parameters
    ----------
    patterns
        Regular expressions choosing the profile columns of the feature table.
    tail
        ``"log"`` (log1p of counts, costs and days) or ``"rank"`` (empirical
        quantile learned in ``fit``).
    block_scaling
        How the blocks of the profile (``blocks``) are weighed against each
        other. ``"none"``: every standardised column counts the same, so the
        block with the most columns (the service lines) dominates the
        distances. ``"equal"``: each block's columns are divided by the square
        root of the block's number of columns, so every block has the same
        total variance. ``"pca"``: each block is reduced to at most
        ``block_components`` principal components (fitted per block, on the
        standardised columns) and then given the same total variance.
    blocks
        ``(name, regular expression)`` pairs assigning profile columns to
        blocks (first match wins; the rest form ``other``); a missingness
        column belongs to its column's block.
    block_components
        Components kept per block with ``block_scaling="pca"``.
    block_weights
        With ``"equal"`` or ``"pca"``: ``(block name, weight)`` pairs (or a
        mapping) giving a block a total variance of ``weight`` instead of 1
        (a block not named weighs 1), e.g. ``(("conditions", 1.5),)``
        (:data:`CONDITIONS_WEIGHT`). A name that is not a block of ``blocks``
        (or ``other``) is refused.

    Missing values (an RAI scale of a client never assessed) take the column's
    fitted median after transformation, and a 0/1 missingness column is added
    for each column that had missing values in ``fit``, so the information is
    kept rather than hidden.

    A numeric array is read as a table with columns ``x0``, ``x1``, …; a
    DataFrame is read by column name, so a feature table with other columns
    (or in another order) than at fit works as long as the profile columns
    are there. Infinite values are refused.

    Attributes
    ----------
    n_features_in_ : int
        Columns of the table seen in ``fit`` (``feature_names_in_`` too, for a DataFrame).
    columns_ : list of str
        Profile columns found in the training table.
    heavy_ : list of bool
        Which columns got the heavy-tail transform.
    center_, scale_ : ndarray
        Standardisation learned in ``fit``.
    block_of_ : list of str
        Block of each output column before block scaling (profile columns, then missingness columns).
    block_sizes_ : dict
        Block name -> number of columns.
    block_weight_ : dict
        Block name -> its total variance after block scaling (1 unless ``block_weights`` says otherwise).
    block_pca_ : dict
        With ``block_scaling="pca"``: block name -> (column indices, fitted PCA).
    """

    def __init__(self, patterns: tuple[str, ...] = DEFAULT_PATTERNS, tail: str = "log", block_scaling: str = "none",
                 blocks: tuple[tuple[str, str], ...] = DEFAULT_BLOCKS, block_components: int = 4,
                 block_weights=None):
        self.patterns = patterns
        self.tail = tail
        self.block_scaling = block_scaling
        self.blocks = blocks
        self.block_components = block_components
        self.block_weights = block_weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed, and flagged
        return tags

    def _table(self, X, *, reset: bool) -> pd.DataFrame:
        """``X`` as a table: a DataFrame by name, an array with columns ``x0``, ``x1``, …"""
        if isinstance(X, pd.DataFrame):
            if reset:
                validate_data(self, X, reset=True, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required")
            return X
        array = validate_data(self, X, reset=reset, dtype=float, ensure_all_finite="allow-nan")
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])

    def _raw(self, X: pd.DataFrame) -> pd.DataFrame:
        missing_cols = [c for c in self.columns_ if c not in X.columns]
        if missing_cols:
            raise ValueError(f"feature table lacks profile columns {missing_cols[:5]} (fitted on {len(self.columns_)})")
        raw = X[self.columns_].astype(float)
        if np.isinf(raw.to_numpy()).any():
            raise ValueError("Input X contains infinity in a profile column")
        return raw

    def _shape(self, raw: pd.DataFrame) -> np.ndarray:
        values = raw.to_numpy(dtype=float, copy=True)
        for j, heavy in enumerate(self.heavy_):
            if not heavy:
                continue
            col = np.clip(values[:, j], 0, None)
            if self.tail == "log":
                values[:, j] = np.log1p(col)
            else:
                values[:, j] = np.searchsorted(self.quantiles_[j], col, side="right") / len(self.quantiles_[j])
        return values

    def fit(self, X: pd.DataFrame, y=None) -> "UseProfileTransformer":
        """Learn the profile columns, the heavy-tail transform, the imputation and the scaling."""
        if self.tail not in ("log", "rank"):
            raise ValueError(f"tail must be 'log' or 'rank', got {self.tail!r}")
        if self.block_scaling not in BLOCK_SCALINGS:
            raise ValueError(f"block_scaling must be one of {BLOCK_SCALINGS}, got {self.block_scaling!r}")
        X = self._table(X, reset=True)
        self.columns_ = select_columns(list(X.columns), self.patterns)
        if not self.columns_:
            raise ValueError(f"no column of the feature table matches the profile patterns {self.patterns}")
        self.heavy_ = [bool(_HEAVY.search(c)) for c in self.columns_]
        raw = self._raw(X)
        self.quantiles_ = [np.sort(raw[c].dropna().to_numpy()) if h else None for c, h in zip(self.columns_, self.heavy_)]
        shaped = self._shape(raw)
        all_missing = np.isnan(shaped).all(axis=0)
        self.fill_ = np.zeros(shaped.shape[1])
        self.fill_[~all_missing] = np.nanmedian(shaped[:, ~all_missing], axis=0)
        self.has_missing_ = np.isnan(shaped).any(axis=0)
        filled = np.where(np.isnan(shaped), self.fill_, shaped)
        self.center_ = filled.mean(axis=0)
        scale = filled.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        blocks = [(name, re.compile(pattern)) for name, pattern in self.blocks]
        col_block = [next((name for name, r in blocks if r.search(c)), "other") for c in self.columns_]
        self.block_of_ = col_block + [b for b, m in zip(col_block, self.has_missing_) if m]
        self.block_sizes_ = {b: self.block_of_.count(b) for b in dict.fromkeys(self.block_of_)}
        weights = dict(self.block_weights or {})
        known = {name for name, _ in self.blocks} | {"other"}
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ValueError(f"block_weights names {unknown}, which are not blocks (blocks: {sorted(known)})")
        bad = {b: w for b, w in weights.items() if not (np.isfinite(float(w)) and float(w) > 0)}
        if bad:
            raise ValueError(f"block_weights must be positive numbers, got {bad}")
        self.block_weight_ = {b: float(weights.get(b, 1.0)) for b in self.block_sizes_}
        self.block_pca_ = {}
        if self.block_scaling == "pca":
            from sklearn.decomposition import PCA

            Z = self._standardised(filled, np.isnan(shaped))
            for b in self.block_sizes_:
                idx = np.flatnonzero(np.array(self.block_of_) == b)
                n = int(min(self.block_components, len(idx), len(Z)))
                self.block_pca_[b] = (idx, PCA(n_components=n, random_state=0).fit(Z[:, idx]))
        return self

    def _standardised(self, filled: np.ndarray, missing: np.ndarray) -> np.ndarray:
        out = (filled - self.center_) / self.scale_
        if self.has_missing_.any():
            out = np.hstack([out, missing[:, self.has_missing_].astype(float)])
        return out

    def _weigh_blocks(self, Z: np.ndarray) -> np.ndarray:
        """Apply ``block_scaling``: every block the same total variance (or reduced per block first)."""
        if self.block_scaling == "none":
            return Z
        if self.block_scaling == "equal":
            weights = np.array([np.sqrt(self.block_weight_[b] / self.block_sizes_[b]) for b in self.block_of_])
            return Z * weights
        parts = []
        for b, (idx, pca) in self.block_pca_.items():
            P = pca.transform(Z[:, idx])
            total = float(pca.explained_variance_.sum())
            parts.append(P * np.sqrt(self.block_weight_[b] / total) if total > 0 else P)
        return np.hstack(parts)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The standardised profile, then a 0/1 missingness column per column that had gaps in ``fit``, blocks weighed."""
        check_is_fitted(self, "columns_")
        shaped = self._shape(self._raw(self._table(X, reset=False)))
        missing = np.isnan(shaped)
        filled = np.where(missing, self.fill_, shaped)
        return self._weigh_blocks(self._standardised(filled, missing))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Profile columns, then ``missing_<column>`` for each missingness column (``<block>_pc<i>`` with ``pca``)."""
        check_is_fitted(self, "columns_")
        if self.block_scaling == "pca":
            return np.array([f"{b}_pc{i}" for b, (_, pca) in self.block_pca_.items()
                             for i in range(pca.n_components_)], dtype=object)
        names = list(self.columns_) + [f"missing_{c}" for c, m in zip(self.columns_, self.has_missing_) if m]
        return np.array(names, dtype=object)
