"""The logged model: a fitted :class:`~models.estimator.ServiceNeedClassifier` with what scoring needs, as a pyfunc."""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Rows predicted at a time: the model's copies of a block (its columns, then as the trees read them) are
#: ~0.3 GB at this size, not three copies of the whole table (~1.1 GB for the demo's 190,000 clients).
PREDICT_ROWS = 50_000

try:  # MLflow is a dependency; the import guard only keeps `models` importable in slim tools.
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object


class ServiceNeedModel(PythonModel):
    """A thin MLflow wrapper: the fitted estimator plus the feature spec, the target's cohort and the dictionary.

    Parameters
    ----------
    estimator
        A fitted :class:`~models.estimator.ServiceNeedClassifier` (fitted on the model's feature columns).
    feature_spec
        The :class:`~features.histories.spec.FeatureSpec` the features were built with; scoring
        rebuilds features with it.
    spec_yaml
        The spec's YAML text (logged beside the model, readable without sote).
    target
        Target name.
    cohort
        The target's :class:`~features.targets.spec.Cohort`: whom the model may score.
    dictionary
        Feature dictionary (plain-language reasons).

    ``predict`` (MLflow's interface) takes a feature table as
    :func:`~features.histories.build.build_features` returns it (extra columns
    such as ``client_id`` are ignored) and returns the calibrated probability
    of the outcome; :meth:`predict_proba` returns both columns as scikit-learn does.
    """

    def __init__(self, estimator, feature_spec, spec_yaml: str, target: str, cohort, dictionary: pd.DataFrame):
        self.estimator = estimator
        self.feature_spec = feature_spec
        self.spec_yaml = spec_yaml
        self.target = target
        self.cohort = cohort
        self.dictionary = dictionary

    @property
    def columns(self) -> list[str]:
        """The model's feature columns, in order."""
        return list(self.estimator.feature_names_in_)

    @property
    def booster(self):
        """The fitted LightGBM booster."""
        return self.estimator.booster_

    def features(self, table: pd.DataFrame) -> pd.DataFrame:
        """The model's columns of a feature table; a clear error when some are missing."""
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise ValueError(f"feature table lacks {len(missing)} model column(s), e.g. {missing[:5]}; "
                             "build it with the spec carried by the model")
        return table[self.columns]

    def frame(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table as the trees read it (categoricals with the training levels), for SHAP."""
        return self.estimator.booster_input(self.features(table))

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2) (no outcome, outcome); rows in blocks of :data:`PREDICT_ROWS`."""
        if len(table) <= PREDICT_ROWS:
            return self.estimator.predict_proba(self.features(table))
        return np.concatenate([self.estimator.predict_proba(self.features(table.iloc[start:start + PREDICT_ROWS]))
                               for start in range(0, len(table), PREDICT_ROWS)])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # noqa: D102
        return self.predict_proba(model_input)[:, 1]

    def explain(self, table: pd.DataFrame, top: int = 5, lang: str = "fi") -> list[list[str]]:
        """Top reasons (SHAP) per row in ``lang``."""
        from models.explain import contributions, top_reasons

        X = self.frame(table)
        contrib, _ = contributions(self.booster, X)
        return top_reasons(contrib, X, self.dictionary, top=top, lang=lang)

    def spec(self):
        """The feature spec (:class:`features.histories.spec.FeatureSpec`) the model was trained with."""
        return self.feature_spec
