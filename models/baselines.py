"""Baselines every model must beat, trained and evaluated on the same rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from models.calibration import ProbabilityCalibrator


class PriorCostBaseline(ClassifierMixin, BaseEstimator):
    """Last year's cost rank, calibrated on the training rows: the baseline counties already use.

    Parameters
    ----------
    column
        Feature holding last year's total cost.
    """

    def __init__(self, column: str = "cost_total_365d"):
        self.column = column

    def fit(self, X: pd.DataFrame, y) -> "PriorCostBaseline":
        self.classes_ = np.array([0, 1])
        self.calibrator_ = ProbabilityCalibrator("isotonic").fit(self._score(X), np.asarray(y))
        return self

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        # A rank between 0 and 1 keeps the calibrator's tie-breaking nudge meaningful.
        cost = X[self.column].astype(float).fillna(0.0).to_numpy()
        return np.log1p(np.clip(cost, 0, None)) / 20.0

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        p = self.calibrator_.predict(self._score(X))
        return np.column_stack([1 - p, p])


def age_sex_comorbidity_model(seed: int = 0) -> Pipeline:
    """Logistic regression on age (splines), sex and comorbidity (Charlson, chronic-condition count)."""
    pre = ColumnTransformer([
        ("age", SplineTransformer(n_knots=5, degree=3), ["age"]),
        ("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"]),
        ("burden", StandardScaler(), ["charlson_index", "chronic_conditions"]),
    ])
    return Pipeline([("features", pre), ("logit", LogisticRegression(max_iter=2000, random_state=seed))])


BASELINE_COLUMNS = ("age", "sex", "charlson_index", "chronic_conditions", "cost_total_365d")
