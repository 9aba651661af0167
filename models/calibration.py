"""Probability calibration fitted on held-out scores (never on the rows a model was trained on)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d


class ProbabilityCalibrator(BaseEstimator):
    """Map raw scores (probabilities or any monotone score) to calibrated probabilities.

    Parameters
    ----------
    method
        ``"isotonic"`` (monotone step function, needs a few thousand held-out
        rows) or ``"platt"`` (logistic on the log-odds, for small data).

    Attributes
    ----------
    model_ : IsotonicRegression or LogisticRegression
    n_features_in_ : int
        Always 1: the scores are one column (a 1-D array or an (n, 1) array).
    """

    def __init__(self, method: str = "isotonic"):
        self.method = method

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True  # one column of scores, 1-D or (n, 1)
        tags.target_tags.required = True
        return tags

    @staticmethod
    def _scores(scores) -> np.ndarray:
        """Scores as a finite 1-D float array (a 1-D array or a single column)."""
        scores = check_array(scores, ensure_2d=False, dtype=float, input_name="scores")
        if scores.ndim == 2:
            if scores.shape[1] != 1:
                raise ValueError(f"scores must be one column, got {scores.shape[1]} features")
            scores = scores[:, 0]
        return scores

    def fit(self, scores: np.ndarray, y: np.ndarray) -> "ProbabilityCalibrator":
        """Fit the map from held-out scores to their 0/1 outcomes."""
        scores = self._scores(scores)
        y = column_or_1d(y, warn=True)
        if len(y) != len(scores):
            raise ValueError(f"scores has {len(scores)} rows but y has {len(y)} labels")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("y must be the 0/1 outcome of each score")
        y = y.astype(int)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both outcomes (one class only among the held-out rows)")
        self.n_features_in_ = 1
        if self.method == "isotonic":
            # Bounds short of 0 and 1: a few held-out rows never justify certainty.
            self.model_ = IsotonicRegression(y_min=1e-3, y_max=1 - 1e-3, out_of_bounds="clip").fit(scores, y)
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(self._logit(scores), y)
        else:
            raise ValueError(f"method must be 'isotonic' or 'platt', got {self.method!r}")
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the scores."""
        check_is_fitted(self, "model_")
        scores = self._scores(scores)
        if self.method == "isotonic":
            # Isotonic steps would tie clients the model tells apart; a 1e-6 nudge by the
            # raw score keeps the model's ranking without moving any probability visibly.
            return np.clip(self.model_.predict(scores) + 1e-6 * (scores - 0.5), 0.0, 1.0)
        return self.model_.predict_proba(self._logit(scores))[:, 1]
