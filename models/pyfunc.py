"""The logged model: LightGBM + calibrator + the feature spec it was trained on, as an MLflow pyfunc."""
from __future__ import annotations

import numpy as np
import pandas as pd

try:  # MLflow is a dependency; the import guard only keeps `models` importable in slim tools.
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object


class ServiceNeedModel(PythonModel):
    """Calibrated service-need probabilities from a client-history feature table.

    Carries everything scoring needs besides raw data: the booster, the
    calibrator, the feature columns and category levels, the feature spec
    (YAML text) the features were built with, and the feature dictionary for
    plain-language reasons. ``predict`` takes the feature table (extra columns
    such as ``client_id`` are ignored) and returns calibrated probabilities.
    """

    def __init__(self, booster, calibrator, columns: list[str], categories: dict[str, list[str]], feature_spec,
                 spec_yaml: str, target: str, dictionary: pd.DataFrame):
        self.booster = booster
        self.calibrator = calibrator
        self.columns = list(columns)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.feature_spec = feature_spec
        self.spec_yaml = spec_yaml
        self.target = target
        self.dictionary = dictionary

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in order, categoricals with the training levels (unseen levels become missing)."""
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ValueError(f"feature table lacks {len(missing)} model column(s), e.g. {missing[:5]}; "
                             "build it with the spec carried by the model")
        out = {}
        for col in self.columns:
            values = features[col]
            if col in self.categories:
                out[col] = pd.Categorical(values.astype("string").astype(object).where(values.notna(), None),
                                          categories=self.categories[col])
            else:
                out[col] = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        return pd.DataFrame(out, index=features.index)  # built at once: no fragmented frame

    def raw_probability(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated LightGBM probability."""
        return self.booster.predict(self.frame(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the outcome for each row."""
        return self.calibrator.predict(self.raw_probability(features))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # noqa: D102
        return self.predict_proba(model_input)

    def explain(self, features: pd.DataFrame, top: int = 5, lang: str = "fi") -> list[list[str]]:
        """Top reasons (SHAP) per row in ``lang``."""
        from models.explain import contributions, top_reasons

        X = self.frame(features)
        contrib, _ = contributions(self.booster, X)
        return top_reasons(contrib, X, self.dictionary, top=top, lang=lang)

    def spec(self):
        """The feature spec (:class:`features.histories.spec.FeatureSpec`) the model was trained with."""
        return self.feature_spec
