"""Label bias: is a group's need higher than the rest's at the same predicted risk?

A model trained on a utilisation label ("high service use next year") learns
use, not need. When one group's needs reach services less often (language,
a remote municipality), the model ranks its members as healthier than
equally sick others (Obermeyer et al., Science 2019; ../shared/DOMAIN.md,
"Label bias"). The check here compares need indicators that are *not* the
label — chronic conditions, the Charlson index, RAI functional scales where
assessed, death within the horizon — across groups (sex, language, age band,
municipality) at equal predicted risk:

1. everyone judged is put in a bin of the score (deciles by default, cut by rank);
2. for each group and indicator, within each bin, the group's mean is set against the
   mean of everyone else in that bin; the differences are averaged with the group's own
   weights over the bins (a directly standardised comparison: "the rest, had they had
   the group's scores");
3. the difference is divided by the indicator's standard deviation over everyone judged
   (``effect``: comparable across indicators), and the group's mean by the rest's
   (``ratio``); the difference's standard error comes from a bootstrap: clients resampled
   with replacement, seeded, each keeping its bin (the comparison is at the score the
   model gave);
4. a group is **flagged** for an indicator when the need is clearly higher on all three counts:
   ``ratio`` at least ``min_ratio`` (default 1.2: 20 % above the rest at the same score;
   Obermeyer et al. found 26 % more chronic conditions at the same risk score), ``effect``
   at least ``min_effect`` (default 0.1 SD: a ratio on an indicator with a low mean, say
   0.37 against 0.30 conditions, is no clear gap) and the interval's lower end above zero.
   The interval is ``difference ± z x SE`` with ``z`` Bonferroni-adjusted over every
   comparison judged (about a hundred: 4 groupings x their groups x 7 indicators), so that
   all of them together hold the stated ``level``; without the adjustment, chance alone
   flags a few groups on a large county. Only higher need is flagged: a group with lower
   need at the same score is not disadvantaged by the list.

RAI scales are compared among the assessed only (a missing value is no zero).
A group, or its rest, with fewer than 50 clients with the indicator (for death:
or fewer than 5 deaths or 5 survivors) is a small cell (:mod:`features.disclosure`):
not judged, and its figures never leave the machine (:meth:`LabelBiasResult.disclosed`,
:func:`log_label_bias`).

Fairlearn's ``MetricFrame`` was tried and not used: its bootstrap gives
intervals per group (or per group x score bin with ``control_features``), not
for a comparison against the rest of the population standardised over bins,
and on 3,200 rows one grouping and one indicator with 200 resamples took
103 s on a loaded 2-core machine (the whole check here, 4 groupings x 7
indicators, 1-2 s on the same machine).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

from features.config.loader import load_config
from features.disclosure import small_cell

#: Flags a utilisation label produces by construction: (grouping, group) -> why. They are still flagged,
#: counted and shown, but explained instead of raised as an alarm (card, summary, the MLflow tag).
EXPLAINED = {
    ("age_band", "75+"): (
        "at the same predicted risk, people aged 75 and over have more chronic conditions and a higher Charlson "
        "index, and more of them die within the horizon. With a utilisation label (high service use) this "
        "follows from the label: it predicts use, at equal expected use older people carry more diagnosed "
        "conditions, and death ends use within the horizon early. It is what the label means, not a fault in "
        "the data: the list ranks the oldest by expected use, below their diagnosed need. Where the list is "
        "meant to find need in old age, read the 75+ against each other or use a need-based target "
        "(elderly_low_function); for a label that is not about use, read this flag as any other."),
}


def explained(table: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows of a result table whose (grouping, group) is in :data:`EXPLAINED`."""
    return np.array([(g, v) in EXPLAINED for g, v in zip(table["grouping"], table["group"])], dtype=bool)


#: Figures of a result row; blanked for a small cell when the table leaves the machine.
FIGURES = ("n", "n_rest", "events", "group_mean", "expected", "difference", "se", "ci_low", "ci_high", "ratio",
           "effect")


@dataclass(frozen=True)
class LabelBiasConfig:
    """Settings of the label-bias check (packaged: ``models/config/label_bias.yaml``).

    Parameters
    ----------
    bins
        Score bins (quantiles of the predicted risk by rank): 10 = deciles.
    groupings
        Columns whose groups are compared (``age_band`` is derived from ``age`` when absent).
    indicators
        Need indicators (numbers or 0/1); missing values are left out (RAI: the assessed only).
    min_ratio
        Smallest ratio of the group's need to the rest's at equal score that flags a group.
    min_effect
        Smallest difference, in standard deviations of the indicator, that flags a group.
    level
        Level of the intervals (jointly over all comparisons judged with ``adjust: bonferroni``);
        a flag also needs the lower end above zero.
    adjust
        ``bonferroni`` (the intervals hold ``level`` together) or ``none`` (each holds it alone).
    n_boot
        Bootstrap resamples.
    seed
        Seed of the resampling.
    """

    bins: int = field(default=10, metadata={"ge": 2, "le": 100})
    groupings: tuple[str, ...] = field(default=("sex", "language", "age_band", "municipality"),
                                       metadata={"non_empty": True})
    indicators: tuple[str, ...] = field(default=("chronic_conditions", "charlson_index", "rai_adl_h_last",
                                                 "rai_iadl_last", "rai_cps_last", "rai_maple_last",
                                                 "died_in_horizon"), metadata={"non_empty": True})
    min_ratio: float = field(default=1.2, metadata={"gt": 1})
    min_effect: float = field(default=0.1, metadata={"ge": 0})
    level: float = field(default=0.95, metadata={"gt": 0, "lt": 1})
    adjust: Literal["bonferroni", "none"] = "bonferroni"
    n_boot: int = field(default=200, metadata={"ge": 20})
    seed: int = 17


def load_bias_config(path: str | Path | None = None) -> LabelBiasConfig:
    """The label-bias settings of ``path``, or the packaged ``label_bias.yaml``.

    Raises
    ------
    features.config.loader.ConfigError
        Naming the file, the key and the bad value.
    """
    return load_config(LabelBiasConfig, path, packaged=None if path else "label_bias.yaml",
                       package="models.config")


@dataclass
class LabelBiasResult:
    """What :func:`label_bias` found.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per grouping x group x indicator, the analysts' full table: ``grouping``,
        ``group``, ``indicator``, ``n`` (group members with the indicator), ``n_rest``,
        ``events`` (deaths for a 0/1 indicator, else NaN), ``group_mean`` (the group's mean
        over the bins compared), ``expected`` (the rest's mean at the group's scores),
        ``difference`` with ``se`` (its bootstrap standard error) and ``ci_low``/``ci_high``
        (its interval, ``difference ± z x se``), ``ratio``
        (group / expected), ``effect`` (the difference in standard deviations of the indicator
        over everyone judged), ``small_cell`` and ``flagged``.
    config : LabelBiasConfig
    clients : int
        Clients judged.
    skipped : tuple of str
        Configured indicators or groupings the frame did not have.
    z : float
        The intervals' multiplier (Bonferroni-adjusted over the comparisons judged).
    """

    table: pd.DataFrame
    config: LabelBiasConfig
    clients: int
    skipped: tuple[str, ...] = ()
    z: float = float("nan")

    @property
    def flagged(self) -> pd.DataFrame:
        """Rows flagged: a group with clearly higher need at equal predicted risk."""
        return self.table[self.table["flagged"]].reset_index(drop=True)

    @property
    def unexplained(self) -> pd.DataFrame:
        """Flagged rows the label does not explain by construction (not in :data:`EXPLAINED`): the alarms."""
        f = self.flagged
        return f[~explained(f)].reset_index(drop=True)

    def disclosed(self) -> pd.DataFrame:
        """The table as it may leave the machine: every figure of a small cell blanked."""
        out = self.table.copy()
        small = out["small_cell"].to_numpy(bool)
        for col in FIGURES:
            out[col] = out[col].astype(float)
            out.loc[small, col] = np.nan
        return out

    def summary(self) -> list[str]:
        """Plain-text lines: the rule, then each flag (or that there is none); small cells never shown."""
        cfg = self.config
        judged = self.table[~self.table["small_cell"]]
        joint = " (jointly, Bonferroni)" if cfg.adjust == "bonferroni" else ""
        lines = [f"Need at equal predicted risk ({cfg.bins} score bins, {self.clients:,} clients): a group is "
                 f"flagged when its need at the same score is at least {cfg.min_ratio:g} times and "
                 f"{cfg.min_effect:g} SD above the rest's and the {cfg.level:.0%}{joint} interval of the "
                 f"difference (bootstrap SE, {cfg.n_boot} resamples; z = {self.z:.2f}) is above zero; "
                 f"{len(judged)} of {len(self.table)} group x indicator comparisons judged (the rest are small "
                 "cells)."]
        if self.flagged.empty:
            lines.append("No group flagged.")
        for r in self.flagged.itertuples():
            why = " [explained by the label, see the model card]" if (r.grouping, r.group) in EXPLAINED else ""
            lines.append(f"FLAGGED{why} {r.grouping} = {r.group}: {r.indicator} {r.group_mean:.3f} against "
                         f"{r.expected:.3f} for the rest at the same scores (ratio {r.ratio:.2f}, difference "
                         f"{r.difference:+.3f}, {cfg.level:.0%} interval {r.ci_low:+.3f} to {r.ci_high:+.3f}; "
                         f"{r.effect:+.2f} SD; n = {r.n:,})")
        return lines


def score_bins(scores, bins: int) -> np.ndarray:
    """Bin of each score (0 = lowest) by rank: equal-size quantile bins, tied scores in the same bin."""
    s = pd.Series(np.asarray(scores, dtype=float))
    if s.isna().any():
        raise ValueError("scores must not be missing")
    rank = s.rank(method="average").to_numpy()
    return np.minimum(((rank - 1) * bins / len(s)).astype(int), bins - 1)


def _standardised(n_groups: int, cells: np.ndarray, bins: int, x: np.ndarray, w: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per group: its mean over the bins compared and the rest's mean with the group's bin weights.

    ``cells`` (group x bins + bin), ``x`` and ``w`` (resampling counts) hold only rows with the
    indicator observed. A bin where the group or the rest has nobody is left out for that group.
    """
    size = n_groups * bins
    return _from_sums(np.bincount(cells, weights=w, minlength=size).reshape(n_groups, bins),
                      np.bincount(cells, weights=w * x, minlength=size).reshape(n_groups, bins))


def _from_sums(n: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_standardised` from the (weighted) counts ``n`` and sums ``s`` per group x bin.

    The last two axes are groups and bins; any leading axes (resamples) are kept.
    """
    n_rest, s_rest = n.sum(-2, keepdims=True) - n, s.sum(-2, keepdims=True) - s
    usable = (n > 0) & (n_rest > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        group = np.where(usable, s / n, 0.0)
        rest = np.where(usable, s_rest / n_rest, 0.0)
        weight = np.where(usable, n, 0.0)
        total = weight.sum(-1)
        return (weight * group).sum(-1) / total, (weight * rest).sum(-1) / total


def _groups(frame: pd.DataFrame, grouping: str) -> pd.Series:
    if grouping == "age_band" and "age_band" not in frame and "age" in frame:
        from models.metrics import age_band

        return age_band(frame["age"])
    return frame[grouping].astype("string").fillna("(missing)").astype(str)


def label_bias(frame: pd.DataFrame, scores, config: LabelBiasConfig | str | Path | None = None
               ) -> LabelBiasResult:
    """Compare need indicators across groups at equal predicted risk; flag clearly higher need.

    Parameters
    ----------
    frame
        One row per client judged (e.g. the validation date's cohort: its feature table joined
        to its labels), holding the groupings and the indicators; other columns are ignored.
    scores
        The model's predicted risk for each row of ``frame``.
    config
        Settings, a YAML file of them, or None for the packaged ``label_bias.yaml``.

    Returns
    -------
    LabelBiasResult

    Raises
    ------
    ValueError
        If ``scores`` does not match ``frame`` or has missing values, or the frame has none of
        the groupings or indicators.
    """
    cfg = config if isinstance(config, LabelBiasConfig) else load_bias_config(config)
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(frame):
        raise ValueError(f"{len(scores)} scores for {len(frame)} rows")
    groupings = [g for g in cfg.groupings if g in frame or (g == "age_band" and "age" in frame)]
    indicators = [c for c in cfg.indicators if c in frame]
    skipped = tuple(c for c in (*cfg.groupings, *cfg.indicators) if c not in (*groupings, *indicators))
    if not groupings or not indicators:
        raise ValueError(f"the frame has none of the groupings {list(cfg.groupings)} or none of the indicators "
                         f"{list(cfg.indicators)}")
    bins = score_bins(scores, cfg.bins)
    values = {c: frame[c].astype(float).to_numpy() for c in indicators}
    combos = []  # one per grouping x indicator: what the comparison and its resamples need
    for grouping in groupings:
        names, codes = np.unique(_groups(frame, grouping).to_numpy(), return_inverse=True)
        for indicator in indicators:
            seen = ~np.isnan(values[indicator])
            xs, cs = values[indicator][seen], codes[seen]
            combos.append((grouping, names, indicator, seen, xs, cs, cs * cfg.bins + bins[seen]))
    boots = _bootstrap(combos, len(frame), cfg)
    rows = []
    for boot, (grouping, names, indicator, seen, xs, cs, cells) in zip(boots, combos):
        sd = float(xs.std()) if len(xs) else np.nan
        binary = bool(len(xs)) and bool(np.isin(xs, (0.0, 1.0)).all())
        group_mean, expected = _standardised(len(names), cells, cfg.bins, xs, np.ones(len(xs)))
        n = np.bincount(cs, minlength=len(names))
        events = np.bincount(cs, weights=xs, minlength=len(names)) if binary else np.full(len(names), np.nan)
        for k, name in enumerate(names):
            n_rest = len(xs) - n[k]
            small = bool(small_cell(n[k]) | small_cell(n_rest))
            if binary:
                small |= bool(small_cell(n[k], events[k]) | small_cell(n_rest, xs.sum() - events[k]))
            diff = group_mean[k] - expected[k]
            finite = boot[np.isfinite(boot[:, k]), k]
            rows.append({
                "grouping": grouping, "group": str(name), "indicator": indicator, "n": int(n[k]),
                "n_rest": int(n_rest), "events": float(events[k]), "group_mean": float(group_mean[k]),
                "expected": float(expected[k]), "difference": float(diff),
                "se": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
                "ratio": float(group_mean[k] / expected[k]) if expected[k] > 0 else (np.inf if diff > 0 else np.nan),
                "effect": float(diff / sd) if sd > 0 else np.nan, "small_cell": small,
            })
    table = pd.DataFrame(rows)
    judged = int((~table["small_cell"] & table["se"].notna()).sum())
    alpha = 1 - cfg.level
    z = NormalDist().inv_cdf(1 - alpha / (2 * (max(judged, 1) if cfg.adjust == "bonferroni" else 1)))
    table.insert(table.columns.get_loc("se") + 1, "ci_low", table["difference"] - z * table["se"])
    table.insert(table.columns.get_loc("ci_low") + 1, "ci_high", table["difference"] + z * table["se"])
    table["flagged"] = (~table["small_cell"] & (table["ratio"] >= cfg.min_ratio) & (table["effect"] >= cfg.min_effect)
                        & (table["ci_low"] > 0)).astype(bool)
    return LabelBiasResult(table, cfg, len(frame), skipped, z=float(z))


def _bootstrap(combos: list, n_rows: int, cfg: LabelBiasConfig, chunk: int = 50) -> list[np.ndarray]:
    """The bootstrap differences (``n_boot`` x groups) of every comparison.

    A comparison depends on the resample only through how many times each client is drawn, summed
    within its group x bin; so clients sharing a group, a bin and a value of the indicator are one
    category, and a resample of the ``n_rows`` clients is one multinomial draw of the categories'
    counts (plus one category for the clients without the indicator): the same distribution as
    resampling clients one by one, at a cost that does not grow with the clients (a few thousand
    categories for a count indicator on the default county). Each comparison draws its own
    resamples (seeded): its standard error is what the interval needs; the comparisons'
    resamples are independent of each other.
    """
    rng = np.random.default_rng(cfg.seed)
    boots = []
    for _, names, _, _, xs, _, cells in combos:
        size = len(names) * cfg.bins
        values, xcodes = np.unique(xs, return_inverse=True)
        keys, counts = np.unique(cells.astype(np.int64) * len(values) + xcodes, return_counts=True)
        key_cell, key_x = keys // len(values), values[keys % len(values)]
        probs = np.append(counts, n_rows - len(xs)) / n_rows  # the last category: clients without the indicator
        out = np.empty((cfg.n_boot, len(names)))
        for lo in range(0, cfg.n_boot, chunk):
            draws = rng.multinomial(n_rows, probs, size=min(chunk, cfg.n_boot - lo))[:, :-1].astype(float)
            n = np.zeros((len(draws), size))
            s = np.zeros((len(draws), size))
            for j in range(len(draws)):
                n[j] = np.bincount(key_cell, weights=draws[j], minlength=size)
                s[j] = np.bincount(key_cell, weights=draws[j] * key_x, minlength=size)
            shape = (len(draws), len(names), cfg.bins)
            out[lo:lo + len(draws)] = np.subtract(*_from_sums(n.reshape(shape), s.reshape(shape)))
        boots.append(out)
    return boots


def log_label_bias(result: LabelBiasResult) -> dict[str, float]:
    """Log the check to the active MLflow run: aggregates only, small cells suppressed, never a client id.

    Logs ``evaluation/label_bias.csv`` (:meth:`LabelBiasResult.disclosed`),
    ``evaluation/label_bias.txt`` (:meth:`LabelBiasResult.summary`), parameters
    ``label_bias_<setting>``, the tag ``label_bias`` (``flagged``; ``explained`` when every flag is one
    the label explains by construction, :data:`EXPLAINED`; or ``ok``) and the metrics
    ``label_bias_flags`` (group x indicator comparisons flagged), ``label_bias_flags_unexplained``
    (those not in :data:`EXPLAINED`), ``label_bias_judged``
    (comparisons that are no small cell), ``label_bias_max_ratio`` and ``label_bias_max_effect``
    (largest finite ratio and effect among them).

    Returns
    -------
    dict
        The metrics logged.

    Raises
    ------
    RuntimeError
        If no MLflow run is active (the check belongs to a training run).
    """
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError("log_label_bias needs an active MLflow run (call it inside the training run)")
    judged = result.table[~result.table["small_cell"]]
    metrics = {"label_bias_flags": float(result.table["flagged"].sum()),
               "label_bias_flags_unexplained": float(len(result.unexplained)), "label_bias_judged": float(len(judged))}
    for col in ("ratio", "effect"):
        finite = judged[col][np.isfinite(judged[col].astype(float))]
        if len(finite):
            metrics[f"label_bias_max_{col}"] = float(finite.max())
    params = {f"label_bias_{k}": (",".join(v) if isinstance(v, tuple) else v) for k, v in asdict(result.config).items()}
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)
    mlflow.set_tag("label_bias", "flagged" if metrics["label_bias_flags_unexplained"] else
                   "explained" if metrics["label_bias_flags"] else "ok")
    mlflow.log_text(result.disclosed().to_csv(index=False), "evaluation/label_bias.csv")
    mlflow.log_text("\n".join(result.summary()) + "\n", "evaluation/label_bias.txt")
    return metrics
