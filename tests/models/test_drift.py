"""Drift statistics (models.drift): PSI and Jensen-Shannon on known distributions, binned summaries, thresholds."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from features.config.loader import ConfigError
from models import drift
from models.drift import MonitoringConfig, load_monitoring_config


def test_psi_matches_hand_computed_values():
    # shares 0.5/0.5 against 0.25/0.75: (-0.25) ln 0.5 + 0.25 ln 1.5
    assert drift.psi([50, 50], [25, 75], smoothing=0) == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5))
    assert drift.psi([50, 50], [25, 75], smoothing=0) == pytest.approx(0.274653, abs=1e-6)
    # an empty reference bin: smoothing 0.5 makes the shares 100.5/101, 0.5/101 against 50.5/101 twice
    assert drift.psi([100, 0], [50, 50], smoothing=0.5) == pytest.approx(2.625398, abs=1e-6)
    assert drift.psi([100, 0], [50, 50], smoothing=0) == np.inf  # why the smoothing is there
    assert drift.psi([7, 11, 13], [7, 11, 13]) == 0.0
    assert drift.psi([70, 110, 130], [7, 11, 13]) == pytest.approx(0.0, abs=1e-3)  # shares, not counts (smoothing)
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([1, 2], [1, 2, 3])


def test_js_distance_matches_hand_computed_values():
    assert drift.js_distance([10, 0], [0, 10]) == pytest.approx(1.0)  # disjoint
    assert drift.js_distance([3, 5, 2], [30, 50, 20]) == pytest.approx(0.0, abs=1e-9)
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4): JSD = ½ [½ log2(2/3) + ½ log2 2] + ½ log2(4/3) = 0.311278 bits
    assert drift.js_distance([5, 5], [10, 0]) == pytest.approx(np.sqrt(0.311278), abs=1e-6)
    assert drift.js_distance([5, 5], [10, 0]) == pytest.approx(0.557923, abs=1e-6)


def test_psi_of_binned_normals_matches_the_analytic_value():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(0, 1, 200_000), rng.normal(0.5, 1, 200_000)
    summary = drift.numeric_summary(pd.Series(ref), bins=10)
    assert len(summary["counts"]) == 10 and min(summary["counts"]) >= 19_000
    # the same bins on the true distributions: reference 0.1 each, current Φ(e_i − 0.5) − Φ(e_{i−1} − 0.5)
    edges = norm.ppf(np.linspace(0, 1, 11)[1:-1])
    current = np.diff(np.concatenate([[0], norm.cdf(edges - 0.5), [1]]))
    analytic = float(np.sum((current - 0.1) * np.log(current / 0.1)))
    assert analytic == pytest.approx(0.2378, abs=1e-3)  # below μ²/σ² = 0.25 of the unbinned densities
    found = drift.psi(summary["counts"], drift.bin_counts(cur, summary["edges"]))
    assert found == pytest.approx(analytic, abs=0.005)
    assert drift.level(found, 0.1, 0.25) == "watch"
    assert drift.psi(summary["counts"], drift.bin_counts(rng.normal(0, 1, 200_000), summary["edges"])) < 0.001


def test_numeric_summary_merges_small_bins_and_withholds_a_small_missing_count():
    # 900 zeros, 80 ones, 20 twos, 30 missing: deciles tie at 0; the bin of the twos (20) is merged away
    values = pd.Series([0.0] * 900 + [1.0] * 80 + [2.0] * 20 + [np.nan] * 30)
    s = drift.numeric_summary(values)
    assert s["n"] == 1030 and s["missing"] is None  # 30 clients: a small cell, not written
    assert s["counts"] == [900, 100] and s["edges"] == [0.0]
    assert min(s["counts"]) >= 50 and sum(s["counts"]) == 1000
    assert drift.bin_counts(pd.Series([0.0, 0.5, 7.0, np.nan]), s["edges"]).tolist() == [1, 2]
    # a withheld count (1 to 49 of 1,030) is an interval: a current share inside it is no change
    assert drift.missing_change(s, 30 / 1030) == 0.0
    assert drift.missing_change(s, 0.20) == pytest.approx(0.20 - 49 / 1030)
    tiny = drift.numeric_summary(pd.Series([1.0] * 40 + [np.nan] * 500))
    assert tiny["counts"] is None and tiny["edges"] == []  # under 50 values: no bins
    assert tiny["missing"] is None and tiny["missing_range"] == [491, 539]  # 500 missing would tell 40 had a value
    assert drift.missing_change(tiny, 500 / 540) == 0.0 and drift.missing_change(tiny, 1.0) == pytest.approx(1 / 540)


def test_categorical_summary_pools_rare_levels_withholds_ids_and_finds_unseen_levels():
    values = pd.Series(["fi"] * 700 + ["sv"] * 250 + ["other"] * 40 + ["abc123"] * 10 + [None] * 60)
    s = drift.categorical_summary(values, withheld={"abc123"})
    assert s["counts"] == {"fi": 700, "sv": 250} and s["rare"] == ["other"] and s["rare_count"] == 50
    assert s["missing"] == 60 and "abc123" not in str(s)
    current = pd.Series(["fi"] * 600 + ["sv"] * 300 + ["other"] * 30 + ["en"] * 70)
    counts, unseen = drift.category_counts(current, s)
    assert counts.tolist() == [600, 300, 30] and unseen == {"en": 70}
    ref, cur = drift.comparable(s, counts)
    assert ref.tolist() == [700, 250, 50] and cur.tolist() == [600, 300, 30]
    # a withheld pool (under 50) is left out on both sides: identical data stay identical
    small = drift.categorical_summary(pd.Series(["a"] * 100 + ["b"] * 60 + ["c"] * 7))
    assert small["rare_count"] is None
    assert drift.js_distance(*drift.comparable(small, drift.category_counts(
        pd.Series(["a"] * 100 + ["b"] * 60 + ["c"] * 7), small)[0])) == 0.0


def test_levels_and_the_packaged_thresholds(tmp_path):
    assert [drift.level(v, 0.1, 0.25) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, np.nan)] == [
        "ok", "ok", "watch", "watch", "act", "ok"]
    assert drift.worst(["ok", "act", "watch"]) == "act" and drift.worst([]) == "ok"
    config = load_monitoring_config()
    assert (config.psi.watch, config.psi.act, config.js.watch, config.js.act) == (0.1, 0.25, 0.13, 0.21)
    assert config == MonitoringConfig()  # the dataclass defaults are the packaged file
    bad = tmp_path / "m.yaml"
    bad.write_text("psi: {watch: 0.3, act: 0.2}\n")
    with pytest.raises(ConfigError, match=r"m\.yaml: psi: act \(0.2\) must not be below watch"):
        load_monitoring_config(bad)
    bad.write_text("psi: {watch: 0.1, act: 0.25}\nbinz: 5\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['binz'\]"):
        load_monitoring_config(bad)
