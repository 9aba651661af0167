"""The service-need model as a scikit-learn estimator: LightGBM with early stopping, then calibration.

:class:`ServiceNeedClassifier` is configured in ``__init__`` and learns
everything in :meth:`~ServiceNeedClassifier.fit`: it splits the rows
client-disjointly (a seeded hash of the group, i.e. the client id) into a fit
slice, an early-stopping slice and a calibration slice, fits LightGBM on the
first with early stopping on the second and a
:class:`~models.calibration.ProbabilityCalibrator` on the third.
Training (:mod:`models.train`) and tuning (:mod:`models.tune`) both use it;
the MLflow model (:mod:`models.pyfunc`) wraps a fitted one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from models.calibration import ProbabilityCalibrator

#: Fewest outcomes of each class every slice (fit, early stopping, calibration) needs.
MIN_CLASS_PER_SLICE = 2


class TooFewOutcomesError(ValueError):
    """A slice of the training rows lacks enough outcomes (or non-outcomes) to fit and calibrate."""


@dataclass(frozen=True)
class Slices:
    """Client-disjoint boolean masks over the training rows."""

    fit: np.ndarray
    stop: np.ndarray
    calibration: np.ndarray


def client_split(groups, holdout: float, seed: int) -> Slices:
    """Split rows by a seeded hash of their group (client id), so no client is in two slices.

    A uniform number in [0, 1) per group: ``>= holdout`` fits the trees, the
    lower half of the holdout stops boosting early, the upper half calibrates.
    """
    ids = pd.Series(np.asarray(groups)).astype(str).to_numpy(object)
    h = pd.util.hash_array(ids, hash_key=f"sote{seed:012d}"[:16])
    u = (h % np.uint64(1_000_000)).astype(float) / 1_000_000
    return Slices(fit=u >= holdout, stop=u < holdout / 2, calibration=(u >= holdout / 2) & (u < holdout))


def binary_outcome(y) -> tuple[np.ndarray, np.ndarray]:
    """The two classes of a binary outcome and ``y`` encoded as 0/1; a clear error otherwise."""
    check_classification_targets(y)
    kind = type_of_target(y, input_name="y")
    if kind == "multiclass":
        raise ValueError("Only binary classification is supported: the outcome has more than two values")
    classes, encoded = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        raise ValueError(f"the outcome must have both classes; y has {len(classes)} class")
    return classes, encoded


def _is_categorical(column: pd.Series) -> bool:
    return (column.dtype == object or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


class ServiceNeedClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated probability of a binary service-need outcome from a client-history feature table.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, feature_fraction, bagging_fraction, lambda_l2
        LightGBM's boosting rounds (an upper bound: early stopping picks the
        number), learning rate, leaves per tree, minimum rows per leaf,
        feature and row (bagging, every round) subsampling and L2 penalty.
    early_stopping_rounds
        Stop when the early-stopping slice's log-loss has not improved for this many rounds.
    calibration
        ``"isotonic"`` or ``"platt"`` (:class:`~models.calibration.ProbabilityCalibrator`).
    holdout
        Share of clients held out of the trees: half for early stopping, half for calibration.
    random_state
        Seed of the split and of LightGBM.
    n_jobs
        LightGBM threads; ``None``: OpenMP's default (one per core, or ``$OMP_NUM_THREADS``). More
        threads than free cores make LightGBM's threads spin against each other (6× the CPU time when
        two processes share two cores); the trees are the same whatever the count.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trees, ``best_iteration`` rounds used.
    calibrator_ : ProbabilityCalibrator
        Fitted on the calibration slice, never on rows the trees saw.
    classes_ : ndarray of shape (2,)
        The two outcome values; ``predict_proba[:, 1]`` is the probability of ``classes_[1]``.
    n_features_in_ : int
        Number of feature columns.
    feature_names_in_ : ndarray of str
        Feature column names (when fitted on a DataFrame with string column names).
    categories_ : dict of str to list of str
        Training levels of each categorical (text) column; unseen levels are treated as missing.
    best_iteration_ : int
        Boosting rounds kept.

    Notes
    -----
    Input is a feature table: numeric columns (missing values allowed, LightGBM
    routes them; infinities refused) and text columns as LightGBM categoricals.
    ``fit(X, y, groups=client_ids)`` keeps each client in one slice; without
    ``groups`` each row is its own group.
    """

    def __init__(self, n_estimators: int = 2000, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_child_samples: int = 50, feature_fraction: float = 0.8, bagging_fraction: float = 0.8,
                 lambda_l2: float = 1.0, early_stopping_rounds: int = 100, calibration: str = "isotonic",
                 holdout: float = 0.3, random_state: int = 0, n_jobs: int | None = None):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.holdout = holdout
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        return tags

    # -- input ----------------------------------------------------------------------------------------
    def _frame(self, X, *, reset: bool) -> pd.DataFrame:
        """The feature table as LightGBM reads it: numbers as float, text as categoricals of training levels."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0 or X.shape[1] == 0:
                raise ValueError(f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                                 "while at least one of each is required")
            names = [str(c) for c in X.columns]
            columns = [X[c] for c in X.columns]
        else:
            array = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
            names = [f"x{i}" for i in range(array.shape[1])]
            columns = [pd.Series(array[:, i]) for i in range(array.shape[1])]
        if reset:
            self.columns_ = names
            self.categories_ = {n: sorted(c.dropna().astype(str).unique()) for n, c in zip(names, columns)
                                if _is_categorical(c)}
        out = {}
        for name, column in zip(self.columns_, columns):
            if name in self.categories_:
                levels = self.categories_[name]
                text = column.astype("string").astype(object)
                text = text.where(column.notna().to_numpy() & text.isin(levels).to_numpy(), None)  # unseen: missing
                out[name] = pd.Categorical(text, categories=levels)
            else:
                try:
                    values = pd.to_numeric(column, errors="raise").astype(float).to_numpy()
                except (TypeError, ValueError) as err:
                    raise ValueError(f"feature {name!r} must be numeric (as in fit): {err}") from err
                if np.isinf(values).any():
                    raise ValueError(f"Input X contains infinity in feature {name!r}")
                out[name] = values
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(out, index=index)  # built at once: no fragmented frame

    def booster_input(self, X) -> pd.DataFrame:
        """``X`` as the fitted trees read it (for SHAP contributions on the same frame)."""
        check_is_fitted(self, "booster_")
        return self._frame(X, reset=False)

    # -- learning -------------------------------------------------------------------------------------
    def _params(self) -> dict:
        return dict(objective="binary", learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                    min_child_samples=self.min_child_samples, feature_fraction=self.feature_fraction,
                    bagging_fraction=self.bagging_fraction, bagging_freq=1, lambda_l2=self.lambda_l2,
                    seed=self.random_state, deterministic=True, force_row_wise=True, num_threads=self.n_jobs or 0,
                    verbose=-1)

    def fit(self, X, y, groups=None) -> "ServiceNeedClassifier":
        """Fit the trees on the fit slice (early stopping on the stop slice), then the calibrator.

        Parameters
        ----------
        X
            Feature table (DataFrame, text columns allowed) or a numeric array.
        y
            Binary outcome, one per row.
        groups
            Client id per row: the split keeps each client in one slice (default: each row its own).

        Raises
        ------
        TooFewOutcomesError
            When a slice has fewer than :data:`MIN_CLASS_PER_SLICE` rows of either outcome.
        """
        import lightgbm as lgb

        if self.calibration not in ("isotonic", "platt"):
            raise ValueError(f"calibration must be 'isotonic' or 'platt', got {self.calibration!r}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        frame = self._frame(X, reset=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)} labels")
        self.classes_, encoded = binary_outcome(y)
        slices = client_split(np.arange(len(y)) if groups is None else groups, self.holdout, self.random_state)
        for name, rows in (("fit", slices.fit), ("early-stopping", slices.stop), ("calibration", slices.calibration)):
            positives, total = int(encoded[rows].sum()), int(rows.sum())
            if min(positives, total - positives) < MIN_CLASS_PER_SLICE:
                raise TooFewOutcomesError(
                    f"the {name} slice has {positives} outcomes in {total} rows; each of the three client-disjoint "
                    f"slices needs at least {MIN_CLASS_PER_SLICE} of each class ({int(encoded.sum())} outcomes in "
                    f"{len(encoded)} rows in all)")
        categorical = [c for c in self.columns_ if c in self.categories_]
        train_set = lgb.Dataset(frame[slices.fit], encoded[slices.fit], categorical_feature=categorical or "auto")
        stop_set = lgb.Dataset(frame[slices.stop], encoded[slices.stop], reference=train_set)
        booster = lgb.train(self._params(), train_set, num_boost_round=self.n_estimators, valid_sets=[stop_set],
                            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        booster.free_dataset()
        self.booster_ = booster
        self.best_iteration_ = int(booster.best_iteration)
        raw = booster.predict(frame[slices.calibration])
        self.calibrator_ = ProbabilityCalibrator(self.calibration).fit(raw, encoded[slices.calibration])
        return self

    # -- prediction -----------------------------------------------------------------------------------
    def raw_probability(self, X) -> np.ndarray:
        """Uncalibrated LightGBM probability of ``classes_[1]``."""
        check_is_fitted(self, "booster_")
        return self.booster_.predict(self._frame(X, reset=False))

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): columns follow ``classes_``."""
        raw = self.raw_probability(X)
        p = self.calibrator_.predict(raw)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more probable class of each row."""
        outcome = self.predict_proba(X)[:, 1] > 0.5
        return self.classes_[outcome.astype(int)]
