"""Evaluation: discrimination, calibration, capacity (top k %) and equity across groups."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

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


def group_metrics(y: np.ndarray, p: np.ndarray, groups: pd.DataFrame, min_n: int = 50,
                  min_positives: int = 5) -> pd.DataFrame:
    """The metrics per group of each grouping column (sex, language, age band, municipality …).

    Groups with fewer than ``min_n`` clients or ``min_positives`` outcomes are
    reported with their size but no metrics (too few to judge). ``gap_flag``
    marks, per grouping, the group whose AUROC or calibration is furthest from
    the whole population's.
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
            if mask.sum() >= min_n and row["positives"] >= min_positives and row["positives"] < mask.sum():
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
