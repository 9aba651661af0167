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
    """

    def __init__(self, patterns: tuple[str, ...] = DEFAULT_PATTERNS, tail: str = "log"):
        self.patterns = patterns
        self.tail = tail

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
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The standardised profile, then a 0/1 missingness column per column that had gaps in ``fit``."""
        check_is_fitted(self, "columns_")
        shaped = self._shape(self._raw(self._table(X, reset=False)))
        missing = np.isnan(shaped)
        filled = np.where(missing, self.fill_, shaped)
        out = (filled - self.center_) / self.scale_
        if self.has_missing_.any():
            out = np.hstack([out, missing[:, self.has_missing_].astype(float)])
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Profile columns, then ``missing_<column>`` for each missingness column."""
        check_is_fitted(self, "columns_")
        names = list(self.columns_) + [f"missing_{c}" for c, m in zip(self.columns_, self.has_missing_) if m]
        return np.array(names, dtype=object)
