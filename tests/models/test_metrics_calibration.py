import numpy as np
import pandas as pd
import pytest

from models.calibration import ProbabilityCalibrator
from models.metrics import binary_metrics, capacity_metrics, expected_calibration_error, group_metrics


def test_capacity_metrics_on_a_known_ranking():
    y = np.r_[np.ones(10), np.zeros(90)]
    p = np.r_[np.linspace(1, 0.9, 10), np.linspace(0.5, 0, 90)]
    m = capacity_metrics(y, p)
    assert m["precision_top5pct"] == 1.0 and m["recall_top5pct"] == 0.5 and m["lift_top5pct"] == pytest.approx(10)
    assert m["precision_top1pct"] == 1.0


def test_calibration_error_is_zero_for_calibrated_and_large_for_shifted():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.4, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p + 0.1, 0, 1)) > 0.09


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_fixes_a_miscalibrated_score_and_keeps_the_ranking(method):
    rng = np.random.default_rng(1)
    true_p = rng.uniform(0.01, 0.5, 20_000)
    y = (rng.random(len(true_p)) < true_p).astype(int)
    raw = true_p**0.5  # overconfident but monotone
    cal = ProbabilityCalibrator(method).fit(raw[:10_000], y[:10_000])
    p = cal.predict(raw[10_000:])
    assert expected_calibration_error(y[10_000:], p) < 0.02 < expected_calibration_error(y[10_000:], raw[10_000:])
    assert binary_metrics(y[10_000:], p)["auroc"] == pytest.approx(binary_metrics(y[10_000:], raw[10_000:])["auroc"],
                                                                   abs=1e-4)
    with pytest.raises(ValueError, match="both outcomes"):
        ProbabilityCalibrator(method).fit(raw[:10], np.zeros(10))


def test_group_metrics_flag_the_group_the_model_fails():
    rng = np.random.default_rng(2)
    n = 4000
    group = np.where(rng.random(n) < 0.5, "a", "b")
    y = (rng.random(n) < 0.2).astype(int)
    p = np.where(group == "a", 0.6 * y + 0.4 * rng.random(n), rng.random(n))  # useless for b
    table = group_metrics(y, p, pd.DataFrame({"g": group, "tiny": np.where(np.arange(n) < 10, "x", "y")}))
    flagged = table[table["gap_flag"]]
    assert flagged.loc[flagged["grouping"] == "g", "group"].tolist() == ["b"]
    tiny = table[(table["grouping"] == "tiny") & (table["group"] == "x")].iloc[0]
    assert tiny["n"] == 10 and np.isnan(tiny["auroc"])  # too few to judge, but reported
