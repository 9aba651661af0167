"""Probability calibration fitted on held-out scores (never on the rows a model was trained on)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted


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
    """

    def __init__(self, method: str = "isotonic"):
        self.method = method

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, scores: np.ndarray, y: np.ndarray) -> "ProbabilityCalibrator":
        scores, y = np.asarray(scores, dtype=float), np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both outcomes among the held-out rows")
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
        if self.method == "isotonic":
            scores = np.asarray(scores, dtype=float)
            # Isotonic steps would tie clients the model tells apart; a 1e-6 nudge by the
            # raw score keeps the model's ranking without moving any probability visibly.
            return np.clip(self.model_.predict(scores) + 1e-6 * (scores - 0.5), 0.0, 1.0)
        return self.model_.predict_proba(self._logit(scores))[:, 1]
