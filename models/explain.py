"""SHAP explanations: global importance and each client's top reasons in plain language (fi, sv, en).

LightGBM's own ``pred_contrib`` gives exact TreeSHAP values (the same as
``shap.TreeExplainer``) in the model's raw (log-odds) space: per client, the
contributions plus the base value add up to the raw score.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

LANGS = ("fi", "sv", "en")
_UP = {"fi": "nostaa", "sv": "höjer", "en": "raises"}
_DOWN = {"fi": "laskee", "sv": "sänker", "en": "lowers"}
_NO_VALUE = {"fi": "ei tietoa", "sv": "uppgift saknas", "en": "no record"}


def contributions(booster, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-client SHAP contributions (log-odds) and the base value of each row."""
    raw = booster.predict(X, pred_contrib=True)
    contrib = pd.DataFrame(raw[:, :-1], columns=X.columns, index=X.index)
    return contrib, raw[:, -1]


def global_importance(contrib: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute contribution per feature, largest first."""
    imp = contrib.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"feature": imp.index, "mean_abs_shap": imp.to_numpy()})


def _sentence(template: str, value, lang: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        label = template.replace("{value:.0f}", "").replace("{value:.1f}", "").replace("{value}", "").strip(" :")
        return f"{label}: {_NO_VALUE[lang]}"
    try:
        return template.format(value=value)
    except (ValueError, TypeError):
        return template.replace("{value:.0f}", "{value}").replace("{value:.1f}", "{value}").format(value=value)


def top_reasons(contrib: pd.DataFrame, X: pd.DataFrame, dictionary: pd.DataFrame, top: int = 5,
                lang: str = "fi", only_raising: bool = True) -> list[list[str]]:
    """The ``top`` reasons behind each client's risk, as sentences in ``lang``.

    Parameters
    ----------
    contrib
        SHAP contributions (rows aligned with ``X``).
    X
        The feature values shown in the sentences.
    dictionary
        Feature dictionary with ``feature`` and ``template_<lang>`` columns.
    only_raising
        Keep only features that raise the risk (a risk list explains why a
        client is on it); otherwise the largest effects either way.

    Returns
    -------
    list of list of str
        Per client, up to ``top`` sentences such as
        "3 emergency visits in the last 6 months (raises risk)".
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    templates = dictionary.set_index("feature")[f"template_{lang}"].to_dict()
    values = contrib.to_numpy()
    cols = np.asarray(contrib.columns)
    key = -values if only_raising else -np.abs(values)
    order = np.argsort(key, axis=1, kind="stable")[:, :top]
    out = []
    for i in range(len(contrib)):
        reasons = []
        for j in order[i]:
            v = values[i, j]
            if only_raising and v <= 0:
                break
            feature = cols[j]
            text = _sentence(templates.get(feature, feature + " {value}"), X.iat[i, j], lang)
            reasons.append(f"{text} ({_UP[lang] if v > 0 else _DOWN[lang]} {'riskiä' if lang == 'fi' else ('risken' if lang == 'sv' else 'risk')})")
        out.append(reasons)
    return out
