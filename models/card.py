"""The model card logged with every run: what the model predicts, for whom, how well, and its limits."""
from __future__ import annotations

import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS, MIN_GROUP_OUTCOMES


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def model_card(*, target: str, description: str, cohort: str, train_as_of: str, valid_as_of: str, horizon_days: int,
               n_train: int, n_valid: int, metrics: pd.DataFrame, groups: pd.DataFrame, importance: pd.DataFrame,
               params: dict, gate: str = "", top: dict | None = None, cohort_plain: str = "") -> str:
    """Markdown model card (no client identifiers).

    ``metrics`` and ``groups`` are the disclosed tables (small cells suppressed,
    :func:`models.metrics.disclosed_groups`); ``gate`` is the quality gate's summary;
    ``top`` the disclosed figures of the validation list's top (:func:`models.train.top_metrics`):
    calibration within the top 2 % and 5 %, who the top 5 % are and the reason-type mix of their reasons;
    ``cohort_plain`` the cohort in plain words.
    """
    cols = ["model", "auroc", "auprc", "brier", "calibration_error", "precision_top1pct", "precision_top2pct",
            "precision_top5pct", "recall_top2pct", "lift_top5pct"]
    top = top or {}
    top_lines = []
    for pct in (2, 5):
        tag = f"valid_top{pct}pct"
        if f"{tag}_observed" in top:
            top_lines.append(f"- top {pct} %: predicted {top[tag + '_predicted']:.3f}, observed "
                             f"{top[tag + '_observed']:.3f} (gap {top[tag + '_calibration_gap']:+.3f}; aim within "
                             "±0.05)")
        else:
            top_lines.append(f"- top {pct} %: suppressed (a small cell)")
    if "valid_top5pct_reason_change_share" in top:
        top_lines += [
            f"- top 5 %: {top['valid_top5pct_prior_high_use_share']:.1%} were in last year's top decile of cost and "
            f"{top['valid_top5pct_intensive_share']:.1%} in an intensive episode (24-hour housing, inpatient care) "
            "at the validation date",
            f"- their top-3 reasons: {top['valid_top5pct_reason_change_share']:.1%} change features (trajectories), "
            f"{top['valid_top5pct_reason_level_share']:.1%} levels, {top['valid_top5pct_reason_demographic_share']:.1%}"
            f" demographics; {top['valid_top5pct_clients_with_change_reason']:.1%} of the clients have at least one "
            "change reason"]
    table = metrics[[c for c in cols if c in metrics]]
    flagged = groups[groups["gap_flag"]]
    lines = [
        f"# Model card — {target}", "",
        f"**Predicts:** {description}.", f"**Cohort:** {cohort}.",
        *([f"**In plain words:** {cohort_plain}"] if cohort_plain else []),
        f"**Horizon:** {horizon_days} days after the index date.",
        f"**Training index date:** {train_as_of} ({n_train:,} cohort members); "
        f"**validation index date:** {valid_as_of} ({n_valid:,}). Temporal validation: the model never saw "
        "anything from the validation date; early stopping and calibration used client-disjoint held-out slices "
        "of the training date.", "",
        "## Performance on the validation date", "",
        *([f"**Quality gate:** {gate}", ""] if gate else []),
        "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
        *["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)], "",
        "## Where the list is read: the top of the validation date", "",
        "Calibration checked where case managers read (mean predicted against observed within the top shares); "
        "probabilities in the top isotonic bin are shown on lists as \"over\" a bound, never as the capped value.",
        "", *top_lines, "",
        "## Equity (yhdenvertaisuus)", "",
        "Metrics per sex, language, age band and municipality are logged as `group_metrics.csv`; groups "
        f"under {MIN_GROUP_CLIENTS} clients or {MIN_GROUP_OUTCOMES} clients with (or without) the outcome are "
        "suppressed there and here. "
        "Largest gap per grouping:", "",
        *[f"- {r.grouping} = {r.group}: AUROC {_fmt(r.auroc)} (gap {_fmt(r.auroc_gap)}), predicted "
          f"{_fmt(r.mean_predicted)} vs observed {_fmt(r.observed_rate)}" for r in flagged.itertuples()], "",
        "## Most important features", "",
        *[f"- {r.feature} ({r.mean_abs_shap:.3f})" for r in importance.head(10).itertuples()], "",
        "## Intended use and limits", "",
        "- Intended use: ranking clients of a care unit for proactive case-manager review (asiakasohjaus); "
        "a human decides what to do. Not for denying or rationing services.",
        "- Probabilities are calibrated on the training date; re-check calibration when service structures change.",
        "- Trained on register data: needs that never reached services are invisible to it.",
        "- Groups with few clients have uncertain metrics; see the equity table before use in a small unit.", "",
        "## Parameters", "", *[f"- {k}: {v}" for k, v in params.items()],
    ]
    return "\n".join(lines)
