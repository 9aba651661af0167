"""The model card logged with every run: what the model predicts, for whom, how well, and its limits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS, MIN_GROUP_OUTCOMES
from models.bias import EXPLAINED, explained


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def model_card(*, target: str, description: str, cohort: str, train_as_of: str, valid_as_of: str, horizon_days: int,
               n_train: int, n_valid: int, metrics: pd.DataFrame, groups: pd.DataFrame, importance: pd.DataFrame,
               params: dict, gate: str = "", top: dict | None = None, cohort_plain: str = "",
               bias=None, oracle: dict | None = None) -> str:
    """Markdown model card (no client identifiers).

    ``metrics`` and ``groups`` are the disclosed tables (small cells suppressed,
    :func:`models.metrics.disclosed_groups`); ``gate`` is the quality gate's summary;
    ``top`` the disclosed figures of the validation list's top (:func:`models.train.top_metrics`):
    calibration within the top 2 % and 5 %, who the top 5 % are and the reason-type mix of their reasons;
    ``cohort_plain`` the cohort in plain words; ``bias`` the label-bias check
    (:class:`models.bias.LabelBiasResult`, summarised by :func:`bias_section` with its small
    cells suppressed); ``oracle`` the oracle's AUROC on synthetic data
    (:func:`models.metrics.oracle_auroc`; the corrected ``auroc_limit`` is the limit a model
    can reach). The card ends with a short TRIPOD+AI-style checklist of what it reports
    (:func:`checklist`).
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
        *oracle_lines(oracle, metrics),
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
        *bias_section(bias),
        "## Most important features", "",
        *[f"- {r.feature} ({r.mean_abs_shap:.3f})" for r in importance.head(10).itertuples()], "",
        "## Intended use and limits", "",
        "- Intended use: ranking clients of a care unit for proactive case-manager review (asiakasohjaus); "
        "a human decides what to do. Not for denying or rationing services.",
        "- Probabilities are calibrated on the training date; re-check calibration when service structures change.",
        "- Trained on register data: needs that never reached services are invisible to it.",
        "- Groups with few clients have uncertain metrics; see the equity table before use in a small unit.", "",
        "## Parameters", "", *[f"- {k}: {v}" for k, v in params.items()], "",
        *checklist(gate=bool(gate), top=bool(top), bias=bias is not None),
    ]
    return "\n".join(lines)


def oracle_lines(oracle: dict | None, metrics: pd.DataFrame) -> list[str]:
    """On synthetic data: the oracle's AUROC corrected for its Monte Carlo noise, and the model's share of it."""
    limit = (oracle or {}).get("auroc_limit", np.nan)
    if not np.isfinite(limit):
        return []
    auroc = metrics.set_index("model")["auroc"].get("lightgbm", np.nan) if "auroc" in metrics else np.nan
    share = f"; the model reaches {auroc / limit:.3f} of it" if np.isfinite(auroc) else ""
    return [f"**Oracle (synthetic data):** the generator's true probabilities rank with AUROC "
            f"{oracle['auroc']:.3f} as estimated, {limit:.3f} corrected for the noise of their simulated futures "
            f"(2 A(all futures) − A(half)): the limit a model can reach{share}.", ""]


def bias_section(bias) -> list[str]:
    """The card's label-bias section: the rule, each flag, and the largest ratio per grouping.

    Only comparisons that are no small cell are shown (:meth:`models.bias.LabelBiasResult.disclosed`).
    Without a result the section says the check was not run.
    """
    head = ["## Label bias: need at equal predicted risk", ""]
    if bias is None:
        return head + ["Not run for this model: the card cannot say whether the label ranks any group below "
                       "its need.", ""]
    table = bias.disclosed()
    judged = table[~table["small_cell"]]
    cfg = bias.config
    lines = head + [
        "A utilisation label measures use, not need. Need indicators that are not the label "
        f"({', '.join(sorted(set(table['indicator'])))}) are compared across groups within {cfg.bins} bins of the "
        "score: each group against everyone else at the same scores. A group is flagged when its need is at "
        f"least {cfg.min_ratio:g} times and {cfg.min_effect:g} SD above the rest's and the interval of the "
        f"difference (bootstrap SE, {cfg.n_boot} resamples; {cfg.level:.0%}"
        f"{', jointly over all comparisons (Bonferroni)' if cfg.adjust == 'bonferroni' else ''}) lies above zero. "
        "RAI scales are compared among the assessed only. "
        f"{len(judged)} of {len(table)} comparisons judged; the others are small cells (under "
        f"{MIN_GROUP_CLIENTS} clients, or under {MIN_GROUP_OUTCOMES} deaths or survivors) and not shown.", ""]
    flagged = judged[judged["flagged"]]
    known, alarm = flagged[explained(flagged)], flagged[~explained(flagged)]

    def row(r) -> str:
        return (f"- {r.grouping} = {r.group}, {r.indicator}: {r.group_mean:.3f} against {r.expected:.3f} for the "
                f"rest at the same scores (× {r.ratio:.2f}; difference {r.difference:+.3f}, interval "
                f"{r.ci_low:+.3f} to {r.ci_high:+.3f}; n = {int(r.n):,})")

    if flagged.empty:
        lines.append("**No group flagged.**")
    elif alarm.empty:
        lines.append("**No group flagged beyond what the label explains (below).**")
    else:
        lines.append(f"**Flagged ({len(alarm)}):** check the group's access to services (language of service, "
                     "distance) and whether the indicator means the same in it.")
        lines += [row(r) for r in alarm.itertuples()]
    for (grouping, group), part in known.groupby(["grouping", "group"], sort=False):
        lines += ["", f"**Flagged, explained by the label ({grouping} = {group}):** {EXPLAINED[(grouping, group)]}",
                  *[row(r) for r in part.itertuples()]]
    lines += ["", "Largest ratio per grouping (flagged or not):", ""]
    for grouping, part in judged.groupby("grouping", sort=False):
        part = part[np.isfinite(part["ratio"].astype(float))]
        if part.empty:
            continue
        r = part.loc[part["ratio"].idxmax()]
        lines.append(f"- {grouping}: {r['group']}, {r['indicator']} × {r['ratio']:.2f} "
                     f"(interval of the difference {r['ci_low']:+.3f} to {r['ci_high']:+.3f})")
    return lines + [""]


#: The card's reporting checklist: TRIPOD+AI item (Collins et al., BMJ 2024), what it asks, where the card answers.
CHECKLIST = (
    ("5", "data source and dates", "training and validation index dates"),
    ("6", "participants (eligibility)", "cohort, in rules and in plain words"),
    ("8", "outcome and horizon", "predicts, horizon"),
    ("9", "predictors", "most important features; the full spec is logged with the run"),
    ("10", "sample size", "cohort members at each index date"),
    ("12", "analytical methods", "LightGBM, client-disjoint early stopping and calibration slices, parameters"),
    ("14", "fairness across groups", "equity gaps per sex, language, age band and municipality"),
    ("14", "label bias (need at equal predicted risk)", "label bias section"),
    ("16", "evaluation apart from development", "temporal validation on a later index date"),
    ("23", "performance: discrimination and calibration", "performance table, calibration at the top"),
    ("23", "uncertainty of the performance", "quality gate: AUROC 95 % interval (DeLong)"),
    ("26", "limitations", "intended use and limits"),
    ("27", "intended use and human oversight", "intended use and limits"),
)


def checklist(*, gate: bool, top: bool, bias: bool) -> list[str]:
    """A short TRIPOD+AI-style checklist of what this card reports, and what it does not.

    An item whose figures the card was not given (the quality gate's interval, the top of the
    list, the label-bias check) is marked "no"; items a model card cannot answer (ethics,
    protocol, patient involvement, external validation) are listed as not reported.
    """
    given = {"uncertainty of the performance": gate, "label bias (need at equal predicted risk)": bias,
             "performance: discrimination and calibration": True}
    rows = [f"| {item} | {what} | {'yes' if given.get(what, True) else 'no'} | {where} |"
            for item, what, where in CHECKLIST]
    if not top:
        rows = [r.replace("performance table, calibration at the top", "performance table (top not given)")
                for r in rows]
    return ["## Reporting checklist (TRIPOD+AI, short)", "",
            "| TRIPOD+AI item | asks for | reported | where in this card |", "|---|---|---|---|", *rows, "",
            "Not reported in this card: ethics approval and data permits (item 17), protocol and registration "
            "(18), patient and public involvement (19), and external validation in another county."]
