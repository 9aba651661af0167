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


def test_delong_interval_matches_the_auroc_and_a_seeded_bootstrap():
    from models.metrics import auroc_confidence_interval
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = (rng.random(3000) < 0.15).astype(int)
    p = np.round(rng.normal(0.8 * y, 1.0), 1)  # ties on purpose: DeLong counts them one half
    auroc, lower, upper = auroc_confidence_interval(y, p)
    assert auroc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        boot.append(roc_auc_score(y[i], p[i]))
    se_boot, se_delong = np.std(boot, ddof=1), (upper - lower) / (2 * 1.959964)
    assert se_delong == pytest.approx(se_boot, rel=0.15)
    assert lower < auroc < upper
    # a constant score: AUROC 0.5 with no spread; one class only: no interval
    assert auroc_confidence_interval(y, np.full(len(y), 0.2)) == (0.5, 0.5, 0.5)
    assert np.isnan(auroc_confidence_interval(np.zeros(10), np.arange(10.0))[1])


def test_quality_gate_refuses_chance_and_a_model_worse_than_a_baseline():
    from models.gate import quality_gate

    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.2).astype(int)
    good = 0.5 * y + rng.random(len(y))
    weaker = 0.2 * y + rng.random(len(y))
    passed = quality_gate(y, {"lightgbm": good, "prior_cost": weaker})
    assert passed.passed and passed.auroc_lower > 0.5 and passed.baselines["prior_cost"] < passed.auroc
    assert "quality gate passed" in passed.summary()
    worse = quality_gate(y, {"lightgbm": weaker, "prior_cost": good})
    assert not worse.passed and worse.auroc_lower > 0.5
    assert worse.reasons == (f"AUROC {worse.auroc:.4f} is worse than the prior_cost baseline's "
                             f"{worse.baselines['prior_cost']:.4f}",)
    chance = quality_gate(y[:86], {"lightgbm": np.full(86, 0.2)})
    assert not chance.passed and chance.auroc == 0.5 and "no better than chance" in chance.summary()


def test_small_cells_are_computed_in_full_and_suppressed_on_the_way_out():
    from features.disclosure import MIN_GROUP_CLIENTS, MIN_GROUP_OUTCOMES, small_cell
    from models.metrics import disclosed_groups, disclosed_metrics

    assert (MIN_GROUP_CLIENTS, MIN_GROUP_OUTCOMES) == (50, 5)
    assert small_cell([49, 50, 50, 50, 60], [10, 10, 4, 46, 55]).tolist() == [True, False, True, True, False]
    rng = np.random.default_rng(6)
    n = 3000
    y = (rng.random(n) < 0.2).astype(int)
    p = (0.3 * y + rng.random(n)) / 1.3
    unit = np.where(np.arange(n) < 4, "tiny", np.where(np.arange(n) < 60, "few_outcomes", "big"))
    y[4:60] = 0
    y[4:7] = 1  # 3 outcomes among 56 clients
    full = group_metrics(y, p, pd.DataFrame({"unit": unit}))
    tiny = full.set_index("group").loc["tiny"]
    few = full.set_index("group").loc["few_outcomes"]
    # before suppression: the analysts' table has every group's size, outcomes and rates
    assert tiny["n"] == 4 and tiny["positives"] == y[:4].sum() and tiny["observed_rate"] == y[:4].mean()
    assert few["n"] == 56 and few["positives"] == 3 and np.isnan(few["auroc"])
    big = full.set_index("group").loc["big"]
    assert big["n"] == n - 60 and big["auroc"] > 0.6
    out = disclosed_groups(full).set_index("group")
    assert out.loc["tiny", "suppressed"] and out.loc["few_outcomes", "suppressed"] and not out.loc["big", "suppressed"]
    for col in ("n", "positives", "mean_predicted", "observed_rate", "auroc", "calibration_gap"):
        assert pd.isna(out.loc["tiny", col]) and pd.isna(out.loc["few_outcomes", col]), col
    assert out.loc["big", "n"] == n - 60 and out.loc["big", "auroc"] == pytest.approx(big["auroc"])
    csv = disclosed_groups(full).to_csv(index=False)
    assert ",4," not in csv and ",56," not in csv
    # whole-table metrics: a capacity whose top group is a small cell is blanked, the rest kept
    ranked = np.linspace(1, 0, n)
    y_rank = np.zeros(n, dtype=int)
    y_rank[:50] = 1  # top 30 (1 %): 30 hits in a group under 50; top 60 (2 %): 50 hits and 10 misses
    y_rank[60:] = (rng.random(n - 60) < 0.2).astype(int)
    m = pd.DataFrame([{"model": "lightgbm", **binary_metrics(y_rank, ranked)}])
    shown = disclosed_metrics(m).iloc[0]
    assert m.iloc[0]["precision_top1pct"] == 1.0 and np.isnan(shown["precision_top1pct"])
    assert np.isnan(shown["recall_top1pct"]) and np.isnan(shown["lift_top1pct"])
    assert m.iloc[0]["precision_top2pct"] == pytest.approx(50 / 60) and shown["precision_top2pct"] == pytest.approx(50 / 60)
    assert shown["auroc"] == m.iloc[0]["auroc"] and shown["n"] == n
    small = pd.DataFrame([{"model": "lightgbm", **binary_metrics(y[:40], p[:40])}])
    assert disclosed_metrics(small).drop(columns="model").isna().all(axis=None)
