"""Evaluation plots logged with each run (matplotlib figures, no client identifiers)."""
from __future__ import annotations

# Figures are built with the object API (no pyplot): no global figure registry to leak into, and
# no backend switch that would disturb a notebook's inline plots.
from matplotlib.figure import Figure
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from features.disclosure import MIN_GROUP_CLIENTS, small_cell
from models.metrics import calibration_table


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def roc_pr(y: np.ndarray, scores: dict[str, np.ndarray]):
    """ROC and precision-recall curves of the model and its baselines."""
    fig, (a, b) = _subplots(1, 2, figsize=(10, 4.5))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        a.plot(fpr, tpr, label=name)
        prec, rec, _ = precision_recall_curve(y, p)
        b.plot(rec, prec, label=name)
    a.plot([0, 1], [0, 1], "--", color="grey")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    b.axhline(np.mean(y), ls="--", color="grey")
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    a.legend(fontsize=8)
    return fig


def calibration(y: np.ndarray, scores: dict[str, np.ndarray]):
    """Observed rate against mean predicted probability in deciles.

    Small cells are not drawn: with under ten times the minimum group size
    there are fewer bins, and a bin under the limits of
    :mod:`features.disclosure` (clients, outcomes, non-outcomes) is left out.
    """
    fig, ax = _subplots(figsize=(5, 5))
    top = 0.0
    bins = int(min(10, max(1, len(y) // MIN_GROUP_CLIENTS)))
    for name, p in scores.items():
        t = calibration_table(y, p, bins)
        t = t[~small_cell(t["n"], (t["observed_rate"] * t["n"]).round())]
        ax.plot(t["mean_predicted"], t["observed_rate"], "o-", label=name)
        top = max(top, t["mean_predicted"].max(), t["observed_rate"].max())
    ax.plot([0, top], [0, top], "--", color="grey")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration ({bins} bins)")
    ax.legend(fontsize=8)
    return fig


def capacity(y: np.ndarray, scores: dict[str, np.ndarray]):
    """Lift by the share of the population a team can reach.

    A share whose top group is a small cell (:mod:`features.disclosure`) is not drawn.
    """
    shares = np.array([0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20])
    sizes = np.maximum(1, (shares * len(y)).astype(int))
    fig, ax = _subplots(figsize=(6, 4.5))
    for name, p in scores.items():
        order = np.argsort(-p, kind="stable")
        hits = np.array([y[order[:k]].sum() for k in sizes])
        shown = ~small_cell(sizes, hits)
        ax.plot(shares[shown] * 100, hits[shown] / sizes[shown] / y.mean(), "o-", label=name)
    ax.set(xlabel="top % of population contacted", ylabel="lift over random", title="Capacity")
    ax.legend(fontsize=8)
    return fig


def group_auroc(groups: pd.DataFrame):
    """AUROC per group with the population's as a line; flagged gaps in red."""
    judged = groups.dropna(subset=["auroc"])
    fig, ax = _subplots(figsize=(7, 0.5 + 0.28 * max(len(judged), 1)))
    labels = judged["grouping"] + ": " + judged["group"]
    colors = np.where(judged["gap_flag"], "tab:red", "tab:blue")
    ax.barh(labels, judged["auroc"], color=colors)
    overall = (judged["auroc"] - judged["auroc_gap"]).iloc[0] if len(judged) else np.nan
    ax.axvline(overall, color="black", ls="--", label="whole population")
    ax.set(xlim=(0.5, 1.0), xlabel="AUROC", title="AUROC by group (red: largest gap per grouping)")
    ax.invert_yaxis()
    return fig


def shap_summary(importance: pd.DataFrame, top: int = 20):
    """Mean |SHAP| of the most important features."""
    head = importance.head(top)
    fig, ax = _subplots(figsize=(7, 0.5 + 0.3 * len(head)))
    ax.barh(head["feature"], head["mean_abs_shap"])
    ax.invert_yaxis()
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Global importance")
    return fig
