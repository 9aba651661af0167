"""The quality gate a model must pass before it is registered (and so before it can become champion).

Two rules, judged on the validation date:

1. the lower bound of the AUROC's 95 % confidence interval (DeLong, see
   :func:`models.metrics.auroc_confidence_interval`) is above 0.5: the model
   ranks better than chance, not just by luck of a small cohort;
2. the model's AUROC is not below any baseline's (last year's cost, the
   age-sex-comorbidity logistic regression) on the same rows.

A model that fails is logged (metrics, plots, card, the model itself) but
not registered; ``sote train --register`` says why and exits with
``ExitCode.QUALITY_GATE``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.metrics import auroc_confidence_interval

#: The AUROC's lower confidence bound must exceed this.
MIN_AUROC_LOWER_BOUND = 0.5
#: Confidence level of the AUROC interval.
CONFIDENCE = 0.95
#: Baselines the model must not be worse than (names as in the metrics table).
BASELINES = ("prior_cost", "age_sex_comorbidity")


class QualityGateError(ValueError):
    """Registration refused: the model failed its quality gate. ``result`` holds the (logged) training result."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class GateResult:
    """The verdict and the figures behind it."""

    passed: bool
    auroc: float
    auroc_lower: float
    auroc_upper: float
    baselines: dict
    reasons: tuple[str, ...]

    def summary(self) -> str:
        """One line: passed, or each reason it failed."""
        head = (f"AUROC {self.auroc:.4f} (95% CI {self.auroc_lower:.4f}-{self.auroc_upper:.4f}, DeLong)"
                if np.isfinite(self.auroc_lower) else f"AUROC {self.auroc:.4f}")
        if self.passed:
            return f"quality gate passed: {head}, not worse than " + ", ".join(
                f"{k} {v:.4f}" for k, v in self.baselines.items())
        return "quality gate failed: " + "; ".join(self.reasons)


def quality_gate(y: np.ndarray, scores: dict[str, np.ndarray], model: str = "lightgbm",
                 baselines: tuple[str, ...] = BASELINES) -> GateResult:
    """Judge ``scores[model]`` against chance and against the baselines present in ``scores``.

    Parameters
    ----------
    y
        Validation outcomes (0/1).
    scores
        Probability per model name on the same rows.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    auroc, lower, upper = auroc_confidence_interval(y, scores[model], CONFIDENCE)
    reasons = []
    if not np.isfinite(lower):
        reasons.append("the validation date has too few clients with (or without) the outcome to judge the model")
    elif lower <= MIN_AUROC_LOWER_BOUND:
        reasons.append(f"AUROC {auroc:.4f} has a 95% lower confidence bound of {lower:.4f} (DeLong), not above "
                       f"{MIN_AUROC_LOWER_BOUND}: no better than chance on this validation cohort")
    found = {}
    if len(np.unique(y)) == 2:
        found = {name: float(roc_auc_score(y, scores[name])) for name in baselines if name in scores}
        for name, value in found.items():
            if auroc < value:
                reasons.append(f"AUROC {auroc:.4f} is worse than the {name} baseline's {value:.4f}")
    return GateResult(not reasons, auroc, lower, upper, found, tuple(reasons))
