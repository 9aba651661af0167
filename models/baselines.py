"""Baselines every model must beat, trained and evaluated on the same rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from models.calibration import ProbabilityCalibrator
from models.estimator import binary_outcome


class PriorCostBaseline(ClassifierMixin, BaseEstimator):
    """Last year's cost rank, calibrated on the training rows: the baseline counties already use.

    Parameters
    ----------
    column
        Feature holding last year's total cost: a column name of a feature
        table (DataFrame), or a column position of a numeric array.

    Attributes
    ----------
    calibrator_ : ProbabilityCalibrator
        Isotonic map from the cost score to the probability of ``classes_[1]``.
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    """

    def __init__(self, column: str | int = "cost_total_365d"):
        self.column = column

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _cost(self, X, *, reset: bool) -> np.ndarray:
        if isinstance(X, pd.DataFrame) and isinstance(self.column, str):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if self.column not in X.columns:
                raise ValueError(f"the feature table lacks the prior-cost column {self.column!r}")
            return check_array(X[[self.column]], dtype=float, input_name="X")[:, 0]
        if isinstance(self.column, str):
            raise ValueError(f"column={self.column!r} names a column: pass a DataFrame, or give a column position")
        return validate_data(self, X, reset=reset, dtype=float)[:, self.column]

    @staticmethod
    def _score(cost: np.ndarray) -> np.ndarray:
        # A rank between 0 and 1 keeps the calibrator's tie-breaking nudge meaningful.
        return np.log1p(np.clip(cost, 0, None)) / 20.0

    def fit(self, X, y) -> "PriorCostBaseline":
        """Fit the isotonic calibration of the cost score to the outcome."""
        cost = self._cost(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(cost):
            raise ValueError(f"X has {len(cost)} rows but y has {len(y)} labels")
        self.classes_, encoded = binary_outcome(y)
        self.calibrator_ = ProbabilityCalibrator("isotonic").fit(self._score(cost), encoded)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, shape (n, 2): columns follow ``classes_``."""
        check_is_fitted(self, "calibrator_")
        p = self.calibrator_.predict(self._score(self._cost(X, reset=False)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more probable class of each row."""
        outcome = self.predict_proba(X)[:, 1] > 0.5
        return self.classes_[outcome.astype(int)]


def age_sex_comorbidity_model(seed: int = 0) -> Pipeline:
    """Logistic regression on age (splines), sex and comorbidity (Charlson, chronic-condition count)."""
    pre = ColumnTransformer([
        ("age", SplineTransformer(n_knots=5, degree=3), ["age"]),
        ("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"]),
        ("burden", StandardScaler(), ["charlson_index", "chronic_conditions"]),
    ])
    return Pipeline([("features", pre), ("logit", LogisticRegression(max_iter=2000, random_state=seed))])


#: Columns of the feature table the age-sex-comorbidity baseline reads.
AGE_SEX_COMORBIDITY_COLUMNS = ("age", "sex", "charlson_index", "chronic_conditions")
