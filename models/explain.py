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
    from features.histories.dictionary import fill

    return fill(template, value, lang)  # every placeholder format; a missing value reads "…: no record"


def _top_columns(values: np.ndarray, top: int, only_raising: bool) -> np.ndarray:
    """Per row, the column indices of the ``top`` largest effects, largest first (ties: lower column first)."""
    n, m = values.shape
    k = min(top, m)
    key = -values if only_raising else -np.abs(values)
    kth = np.partition(key, k - 1, axis=1)[:, k - 1:k]
    below = key < kth
    tied = key == kth
    need = k - below.sum(axis=1, keepdims=True)
    chosen = below | (tied & (np.cumsum(tied, axis=1) <= need))  # exactly k per row, ties to lower columns
    cols = np.nonzero(chosen)[1].reshape(n, k)
    order = np.lexsort((cols, np.take_along_axis(key, cols, axis=1)), axis=1)
    return np.take_along_axis(cols, order, axis=1)


def reason_sentences(contrib: pd.DataFrame, X: pd.DataFrame, dictionary: pd.DataFrame, top: int = 5,
                     langs=LANGS, only_raising: bool = True) -> dict[str, list[list[str]]]:
    """The ``top`` reasons behind each client's risk, in every language of ``langs`` at once.

    The top features are chosen once for all languages, and each distinct
    (feature, value) sentence is formatted once: risk lists repeat the same
    small counts for many clients, so this is what makes scoring a whole
    county with reasons fast.

    Parameters
    ----------
    contrib
        SHAP contributions (rows aligned with ``X``).
    X
        The feature values shown in the sentences.
    dictionary
        Feature dictionary with ``feature`` and ``template_<lang>`` columns.
    langs
        Languages to write, a subset of ``("fi", "sv", "en")``.
    only_raising
        Keep only features that raise the risk (a risk list explains why a
        client is on it); otherwise the largest effects either way.

    Returns
    -------
    dict
        Per language, per client, up to ``top`` sentences such as
        "3 emergency visits in the last 6 months (raises risk)".
    """
    for lang in langs:
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    values = contrib.to_numpy()
    n, m = values.shape
    out = {lang: [[] for _ in range(n)] for lang in langs}
    if n == 0 or m == 0 or top < 1:
        return out
    cols = np.asarray(contrib.columns)
    templates = {lang: dictionary.set_index("feature")[f"template_{lang}"].to_dict() for lang in langs}
    word = {"fi": "riskiä", "sv": "risken", "en": "risk"}
    top_cols = _top_columns(values, top, only_raising)
    top_vals = np.take_along_axis(values, top_cols, axis=1)
    # feature values of the chosen cells, fetched one column at a time
    shown = np.empty(top_cols.shape, dtype=object)
    for j in np.unique(top_cols):
        rows, slots = np.nonzero(top_cols == j)
        shown[rows, slots] = X.iloc[rows, j].to_numpy(dtype=object)
    cache: dict = {}
    for i in range(n):
        for s in range(top_cols.shape[1]):
            v = top_vals[i, s]
            if only_raising and v <= 0:
                break
            j = top_cols[i, s]
            value = shown[i, s]
            missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            key = (j, None if missing else value, v > 0)
            texts = cache.get(key)
            if texts is None:
                feature = cols[j]
                texts = {lang: f"{_sentence(templates[lang].get(feature, feature + ' {value}'), None if missing else value, lang)}"
                               f" ({_UP[lang] if v > 0 else _DOWN[lang]} {word[lang]})" for lang in langs}
                cache[key] = texts
            for lang in langs:
                out[lang][i].append(texts[lang])
    return out


def top_reasons(contrib: pd.DataFrame, X: pd.DataFrame, dictionary: pd.DataFrame, top: int = 5,
                lang: str = "fi", only_raising: bool = True) -> list[list[str]]:
    """The ``top`` reasons behind each client's risk, as sentences in ``lang``.

    See :func:`reason_sentences` (the same for several languages at once).
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return reason_sentences(contrib, X, dictionary, top=top, langs=(lang,), only_raising=only_raising)[lang]


#: Reason types of the feature dictionary (:func:`features.histories.spec.reason_type`), in reporting order.
REASON_TYPES = ("change", "level", "demographic")


def reason_features(contrib: pd.DataFrame, top: int = 3, only_raising: bool = True) -> list[list[str]]:
    """The features behind each client's ``top`` reasons, largest effect first (those :func:`reason_sentences` words).

    With ``only_raising`` a client has fewer than ``top`` when fewer features raise their risk.
    """
    values = contrib.to_numpy()
    n, m = values.shape
    if n == 0 or m == 0 or top < 1:
        return [[] for _ in range(n)]
    cols = np.asarray(contrib.columns)
    top_cols = _top_columns(values, top, only_raising)
    keep = np.take_along_axis(values, top_cols, axis=1) > 0 if only_raising else np.ones(top_cols.shape, bool)
    keep = np.cumprod(keep, axis=1).astype(bool)  # stop at the first that does not raise the risk, as the sentences do
    return [list(cols[row[k]]) for row, k in zip(top_cols, keep)]


def reason_type_mix(features: list[list[str]], dictionary: pd.DataFrame, top: int = 3) -> dict:
    """How often the top reasons of a group of clients are change, level or demographic features.

    Parameters
    ----------
    features
        Per client, the features behind their reasons, largest effect first (:func:`reason_features`).
    dictionary
        Feature dictionary with ``feature`` and ``reason_type`` (change, level or demographic).
    top
        Count each client's first ``top`` reasons.

    Returns
    -------
    dict
        ``clients``, ``reasons`` (reasons counted), ``change``, ``level`` and
        ``demographic`` (each type's share of the reasons counted; NaN with no
        reasons), and ``clients_with_change`` (share of clients with at least
        one change feature among their top reasons). A feature missing from the
        dictionary counts as ``level``.
    """
    kinds = dictionary.set_index("feature")["reason_type"].to_dict() if "reason_type" in dictionary else {}
    counts = dict.fromkeys(REASON_TYPES, 0)
    with_change = 0
    for feats in features:
        types = [kinds.get(f, "level") for f in feats[:top]]
        for t in types:
            counts[t if t in counts else "level"] += 1
        with_change += "change" in types
    total = sum(counts.values())
    n = len(features)
    return {"clients": n, "reasons": total,
            **{t: (counts[t] / total if total else float("nan")) for t in REASON_TYPES},
            "clients_with_change": with_change / n if n else float("nan")}


def top_share_rows(probability: np.ndarray, share: float, ids=None) -> np.ndarray:
    """Row indices of the highest ``share`` of ``probability`` (ties broken by ``ids``, then position).

    ``round(share × n)`` rows, at least one: the top share as the capacity
    metrics count it (:func:`models.metrics.capacity_metrics`).
    """
    p = np.asarray(probability, dtype=float)
    k = max(1, int(round(share * len(p)))) if len(p) else 0
    keys = (np.arange(len(p)),) if ids is None else (np.arange(len(p)), np.asarray(ids))
    return np.lexsort((*keys, -p))[:k]
