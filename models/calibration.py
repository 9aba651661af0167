"""Probability calibration fitted on held-out scores (never on the rows a model was trained on).

Isotonic calibration is a step function: each step (bin) is a run of
held-out scores whose observed outcome rate the step's value is. The two end
bins are not measured points for everyone mapped to them: every score above
the top bin's lowest score gets the top value, bounded at 0.999 (a top bin in
which every held-out client had the outcome would otherwise say 100 %), and
every score below the bottom bin's highest gets the bottom value. The
calibrator therefore keeps its bins (score edges, observed rates, sizes) and
says which probabilities are such boundary values (:meth:`ProbabilityCalibrator.bounds`)
and what may honestly be shown for them: "over" the lower end of a 95 %
Wilson interval of the top bin's observed rate, or "under" the upper end of
the bottom bin's, rounded outwards to a readable step (:func:`readable_bound`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

#: Normal quantile of the two-sided 95 % Wilson interval behind the bound shown for a boundary bin.
BOUND_Z = 1.959963984540054
#: Codes of :meth:`ProbabilityCalibrator.bounds`: a measured value, the top bin ("over"), the bottom bin ("under").
MEASURED, OVER, UNDER = 0, 1, -1


def wilson_interval(outcomes: float, n: float, z: float = BOUND_Z) -> tuple[float, float]:
    """Wilson score interval of a rate of ``outcomes`` in ``n`` (``(nan, nan)`` for ``n == 0``)."""
    if n <= 0:
        return float("nan"), float("nan")
    rate = outcomes / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def readable_bound(value: float, direction: int) -> float:
    """``value`` rounded outwards to a readable step: 5 points from 10 %, 1 point from 1 %, else 0.1 point.

    ``direction`` :data:`OVER` rounds down (a shown "over 90 %" never claims
    more than the interval allows), :data:`UNDER` rounds up. The result stays
    inside (0, 1): "over 0 %" and "under 100 %" say nothing, so the smallest
    step is used instead.
    """
    if direction not in (OVER, UNDER):
        raise ValueError(f"direction must be OVER (1) or UNDER (-1), got {direction}")
    if not np.isfinite(value):
        return float("nan")
    percent = 100 * min(max(value, 0.0), 1.0)
    step = 5.0 if percent >= 10 else 1.0 if percent >= 1 else 0.1
    if direction == OVER:
        shown = math.floor(percent / step + 1e-9) * step
        shown = shown if shown > 0 else 0.1
    else:
        shown = math.ceil(percent / step - 1e-9) * step
        shown = shown if shown < 100 else 99.9
    return round(shown / 100, 4)


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
    bins_ : pandas.DataFrame or None
        Isotonic only (None for Platt): one row per step of the fitted
        function, lowest first: ``lower`` and ``upper`` (the lowest and
        highest held-out score in it), ``probability`` (its calibrated value,
        bounded to [0.001, 0.999]), ``observed_rate`` (the outcome rate of its
        held-out rows, unbounded), ``clients`` and ``outcomes``.
    over_ : float
        Shown for the top bin: "over" this probability (the lower end of the 95 %
        Wilson interval of its observed rate, rounded down; :func:`readable_bound`).
        NaN when there is no boundary bin (Platt, or a single step).
    under_ : float
        Shown for the bottom bin: "under" this probability (the interval's upper end, rounded up).
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
        self.bins_, self.over_, self.under_ = None, float("nan"), float("nan")
        if self.method == "isotonic":
            # Bounds short of 0 and 1: a few held-out rows never justify certainty.
            self.model_ = IsotonicRegression(y_min=1e-3, y_max=1 - 1e-3, out_of_bounds="clip").fit(scores, y)
            self.bins_ = self._bins(scores, y)
            if len(self.bins_) > 1:
                top, bottom = self.bins_.iloc[-1], self.bins_.iloc[0]
                self.over_ = readable_bound(wilson_interval(top["outcomes"], top["clients"])[0], OVER)
                self.under_ = readable_bound(wilson_interval(bottom["outcomes"], bottom["clients"])[1], UNDER)
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(self._logit(scores), y)
        else:
            raise ValueError(f"method must be 'isotonic' or 'platt', got {self.method!r}")
        return self

    def _bins(self, scores: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        """The steps of the fitted isotonic function over the held-out rows (see ``bins_``)."""
        order = np.argsort(scores, kind="stable")
        s, outcome = scores[order], y[order]
        level = self.model_.predict(s)
        new = np.r_[True, level[1:] != level[:-1]]
        step = np.cumsum(new) - 1
        clients = np.bincount(step)
        outcomes = np.bincount(step, weights=outcome).astype(int)
        last = np.r_[np.flatnonzero(new)[1:] - 1, len(s) - 1]
        return pd.DataFrame({"lower": s[new], "upper": s[last], "probability": level[new],
                             "observed_rate": outcomes / clients, "clients": clients, "outcomes": outcomes})

    def bounds(self, scores: np.ndarray) -> np.ndarray:
        """Which calibrated values are boundary values rather than measured rates.

        Parameters
        ----------
        scores
            Raw scores, as given to :meth:`predict`.

        Returns
        -------
        numpy.ndarray
            Per score, :data:`OVER` (1) if it falls in the top isotonic bin
            or in the interpolated gap just below it (above the highest
            held-out score of the second-highest bin: shown as "over
            ``over_``"), :data:`UNDER` (-1) likewise at the bottom ("under
            ``under_``"), else :data:`MEASURED` (0).
            All 0 for Platt scaling, for a fit with a single step and for a
            calibrator fitted before bins were kept.
        """
        check_is_fitted(self, "model_")
        scores = self._scores(scores)
        codes = np.zeros(len(scores), dtype=np.int8)
        bins = getattr(self, "bins_", None)
        if bins is None or len(bins) < 2:
            return codes
        # Between two bins the isotonic function interpolates linearly, so a score just short of the top
        # bin gets a value on the way to the capped top (0.996 where the bin above reads 0.999): it is a
        # boundary value too. The same holds below the second bin.
        codes[scores < bins["lower"].iloc[1]] = UNDER
        codes[scores > bins["upper"].iloc[-2]] = OVER
        return codes

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the scores."""
        check_is_fitted(self, "model_")
        scores = self._scores(scores)
        if self.method == "isotonic":
            # Isotonic steps would tie clients the model tells apart; a 1e-6 nudge by the
            # raw score keeps the model's ranking without moving any probability visibly.
            return np.clip(self.model_.predict(scores) + 1e-6 * (scores - 0.5), 0.0, 1.0)
        return self.model_.predict_proba(self._logit(scores))[:, 1]


#: Shares of a list, from the top, where calibration is checked: the capacity a case-manager team reads.
TOP_SHARES = (0.02, 0.05)


def calibration_at_top(y, p, shares=TOP_SHARES) -> pd.DataFrame:
    """Observed against predicted within the highest-ranked shares of a list.

    The overall calibration error is dominated by the many low-risk clients;
    a case manager reads the top of the list, where an isotonic step or a
    bound matters most.

    Parameters
    ----------
    y
        0/1 outcomes.
    p
        Calibrated probabilities (ranking: highest first, ties by position).
    shares
        Top shares to check (0.02: the top 2 %).

    Returns
    -------
    pandas.DataFrame
        One row per share: ``share``, ``n``, ``outcomes``, ``predicted`` (mean
        probability), ``observed`` (outcome rate), ``gap`` (predicted − observed)
        and ``small_cell`` (under 50 clients or 5 with or without the outcome:
        :func:`features.disclosure.small_cell`; suppress before it leaves the machine).
    """
    from features.disclosure import small_cell

    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"y has {len(y)} outcomes but p has {len(p)} probabilities")
    order = np.argsort(-p, kind="stable")
    rows = []
    for share in shares:
        k = max(1, int(round(share * len(p)))) if len(p) else 0
        top = order[:k]
        predicted = float(p[top].mean()) if k else float("nan")
        observed = float(y[top].mean()) if k else float("nan")
        outcomes = int(y[top].sum())
        rows.append({"share": share, "n": k, "outcomes": outcomes, "predicted": predicted, "observed": observed,
                     "gap": predicted - observed, "small_cell": bool(small_cell(k, outcomes))})
    return pd.DataFrame(rows)
