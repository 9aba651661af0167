"""The model card logged with every run: what the model predicts, for whom, how well, and its limits."""
from __future__ import annotations

import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS, MIN_GROUP_OUTCOMES


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def model_card(*, target: str, description: str, cohort: str, train_as_of: str, valid_as_of: str, horizon_days: int,
               n_train: int, n_valid: int, metrics: pd.DataFrame, groups: pd.DataFrame, importance: pd.DataFrame,
               params: dict, gate: str = "") -> str:
    """Markdown model card (no client identifiers).

    ``metrics`` and ``groups`` are the disclosed tables (small cells suppressed,
    :func:`models.metrics.disclosed_groups`); ``gate`` is the quality gate's summary.
    """
    cols = ["model", "auroc", "auprc", "brier", "calibration_error", "precision_top1pct", "precision_top5pct",
            "lift_top5pct"]
    table = metrics[[c for c in cols if c in metrics]]
    flagged = groups[groups["gap_flag"]]
    lines = [
        f"# Model card — {target}", "",
        f"**Predicts:** {description}.", f"**Cohort:** {cohort}.",
        f"**Horizon:** {horizon_days} days after the index date.",
        f"**Training index date:** {train_as_of} ({n_train:,} cohort members); "
        f"**validation index date:** {valid_as_of} ({n_valid:,}). Temporal validation: the model never saw "
        "anything from the validation date; early stopping and calibration used client-disjoint held-out slices "
        "of the training date.", "",
        "## Performance on the validation date", "",
        *([f"**Quality gate:** {gate}", ""] if gate else []),
        "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
        *["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)], "",
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
