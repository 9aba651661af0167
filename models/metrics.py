"""Evaluation: discrimination, calibration, capacity (top k %) and equity across groups."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from features.disclosure import small_cell, suppress_small_cells

CAPACITIES = (0.01, 0.02, 0.05)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in equal-size bins of predicted probability."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    return pd.DataFrame([{"bin": i, "n": len(g), "mean_predicted": float(p[g].mean()),
                          "observed_rate": float(y[g].mean())} for i, g in enumerate(groups) if len(g)])


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |predicted − observed| over equal-size probability bins."""
    table = calibration_table(y, p, bins)
    return float(np.average((table["mean_predicted"] - table["observed_rate"]).abs(), weights=table["n"]))


def auroc_confidence_interval(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC with DeLong's confidence interval (DeLong, DeLong & Clarke-Pearson 1988; Sun & Xu's fast form).

    The variance comes from the structural components of the Mann-Whitney
    statistic (ties count one half); the interval is AUROC ± z · SE, clipped to
    [0, 1]. Deterministic: no resampling.

    Returns
    -------
    (auroc, lower, upper)
        NaN when either class has fewer than two rows.
    """
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return np.nan, np.nan, np.nan
    within_pos, within_neg = rankdata(pos), rankdata(neg)
    pooled = rankdata(np.concatenate([pos, neg]))
    auroc = float((pooled[:m].sum() - m * (m + 1) / 2) / (m * n))
    v_pos = (pooled[:m] - within_pos) / n  # share of negatives below each positive
    v_neg = 1.0 - (pooled[m:] - within_neg) / m  # share of positives above each negative
    se = float(np.sqrt(v_pos.var(ddof=1) / m + v_neg.var(ddof=1) / n))
    z = float(norm.ppf(0.5 + level / 2))
    return auroc, max(0.0, auroc - z * se), min(1.0, auroc + z * se)


def oracle_auroc(y: np.ndarray, probability: np.ndarray, probability_half: np.ndarray | None = None
                 ) -> dict[str, float]:
    """The oracle's AUROC from Monte Carlo probabilities, with the noise bias removed to first order.

    Noise in estimated probabilities lowers their AUROC by an amount that, for
    small noise, is proportional to the noise variance. The synthetic
    county's truth holds the estimate over all futures (``probability``) and
    over one future of each stratum (``probability_half``, twice the
    variance; see :mod:`features.synth.estimate`), so ``2 A(full) - A(half)``
    (Richardson extrapolation) estimates the AUROC of the exact probabilities.

    Returns
    -------
    dict
        ``auroc`` (of ``probability``), ``auroc_half`` and ``auroc_limit``
        (NaN without ``probability_half`` or with one class only).
    """
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        return {"auroc": np.nan, "auroc_half": np.nan, "auroc_limit": np.nan}
    full = float(roc_auc_score(y, np.asarray(probability, float)))
    if probability_half is None:
        return {"auroc": full, "auroc_half": np.nan, "auroc_limit": np.nan}
    half = float(roc_auc_score(y, np.asarray(probability_half, float)))
    return {"auroc": full, "auroc_half": half, "auroc_limit": 2 * full - half}


def capacity_metrics(y: np.ndarray, p: np.ndarray, capacities=CAPACITIES) -> dict[str, float]:
    """Precision, recall and lift when a team can reach the top share of clients by predicted risk."""
    y = np.asarray(y)
    order = np.argsort(-np.asarray(p), kind="stable")
    base = y.mean()
    out = {}
    for c in capacities:
        k = max(1, int(round(c * len(y))))
        hits = y[order[:k]].sum()
        tag = f"top{round(c * 100):g}pct"
        out[f"precision_{tag}"] = float(hits / k)
        out[f"recall_{tag}"] = float(hits / y.sum()) if y.sum() else np.nan
        out[f"lift_{tag}"] = float(hits / k / base) if base else np.nan
    return out


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUROC, AUPRC, Brier, calibration error and capacity metrics of probabilities ``p``."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    out = {"n": float(len(y)), "prevalence": float(y.mean())}
    if len(np.unique(y)) < 2:
        return {**out, "auroc": np.nan, "auprc": np.nan, "brier": float(brier_score_loss(y, p)) if len(y) else np.nan,
                "calibration_error": np.nan}
    out.update(auroc=float(roc_auc_score(y, p)), auprc=float(average_precision_score(y, p)),
               brier=float(brier_score_loss(y, p)), calibration_error=expected_calibration_error(y, p))
    out.update(capacity_metrics(y, p))
    return out


def age_band(age: pd.Series) -> pd.Series:
    """Age bands for equity reporting."""
    return pd.cut(age, [-1, 17, 29, 64, 74, 200], labels=["0-17", "18-29", "30-64", "65-74", "75+"]).astype(str)


def group_metrics(y: np.ndarray, p: np.ndarray, groups: pd.DataFrame) -> pd.DataFrame:
    """The metrics per group of each grouping column (sex, language, age band, municipality …).

    Every group is listed with its size, outcomes, mean predicted and observed
    rate; groups that are small cells (:func:`features.disclosure.small_cell`:
    under 50 clients, or under 5 with or without the outcome) get no metrics
    (too few to judge). ``gap_flag`` marks, per grouping, the group whose AUROC
    or calibration is furthest from the whole population's. This is the
    analysts' full table: what leaves for MLflow goes through
    :func:`disclosed_groups` first.
    """
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    overall = binary_metrics(y, p)
    rows = []
    for col in groups.columns:
        values = groups[col].astype(str).to_numpy()
        for g in np.unique(values):
            mask = values == g
            row = {"grouping": col, "group": g, "n": int(mask.sum()), "positives": int(y[mask].sum()),
                   "mean_predicted": float(p[mask].mean()), "observed_rate": float(y[mask].mean())}
            if not small_cell(row["n"], row["positives"]):
                m = binary_metrics(y[mask], p[mask])
                row.update({k: m[k] for k in ("auroc", "auprc", "brier", "calibration_error", "precision_top5pct",
                                              "recall_top5pct")})
            rows.append(row)
    table = pd.DataFrame(rows)
    if "auroc" not in table:
        table["auroc"] = np.nan
    table["auroc_gap"] = table["auroc"] - overall.get("auroc", np.nan)
    table["calibration_gap"] = table["mean_predicted"] - table["observed_rate"]
    table["gap_flag"] = False
    for col, part in table.groupby("grouping"):
        judged = part.dropna(subset=["auroc"])
        if len(judged) > 1:
            worst = (judged["auroc_gap"].abs() + judged["calibration_gap"].abs()).idxmax()
            table.loc[worst, "gap_flag"] = True
    return table


def disclosed_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """The per-group table as it may leave the machine: every figure of a small cell blanked.

    See :mod:`features.disclosure`; adds the boolean column ``suppressed``. ``gap_flag`` is
    kept (it is only ever set on groups that are not small cells).
    """
    return suppress_small_cells(groups, n="n", outcomes="positives", keep=("grouping", "group", "gap_flag"))


def disclosed_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics table (one row per model) as it may leave the machine.

    When the validation cohort itself is a small cell every figure is blanked;
    otherwise the precision, recall and lift at a capacity are blanked where
    the top group (``round(capacity × n)`` clients) or its hits or misses are
    under the limits of :mod:`features.disclosure`.
    """
    out = metrics.copy()
    figures = [c for c in out.columns if c != "model"]
    for i, row in out.iterrows():
        n = float(row["n"])
        positives = round(float(row["prevalence"]) * n) if pd.notna(row["prevalence"]) else np.nan
        if small_cell(n, positives):
            out.loc[i, figures] = np.nan
            continue
        for c in CAPACITIES:
            tag = f"top{round(c * 100):g}pct"
            if f"precision_{tag}" not in out.columns or pd.isna(row[f"precision_{tag}"]):
                continue
            k = max(1, int(round(c * n)))
            hits = round(float(row[f"precision_{tag}"]) * k)
            if small_cell(k, hits):
                out.loc[i, [f"precision_{tag}", f"recall_{tag}", f"lift_{tag}"]] = np.nan
    return out

