import numpy as np
import pandas as pd
import pytest

from segmentation.concentration import gini, lorenz_curve, segment_cost_shares, top_shares
from segmentation.grid import CELLS, NeedResourceGrid
from segmentation.profiles import profile_segments
from segmentation.segments import segment_clients


def _features(n=600, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "client_id": [f"c{i}" for i in range(n)], "age": rng.integers(0, 95, n),
        "sex": rng.choice(["F", "M"], n),
        "chronic_conditions": rng.poisson(1.0, n), "charlson_index": rng.poisson(0.8, n),
        "dx_diabetes": rng.random(n) < 0.1, "dx_substance_use": rng.random(n) < 0.05,
        "rai_maple_last": np.where(rng.random(n) < 0.1, rng.integers(1, 6, n), np.nan),
        "rai_adl_h_last": np.where(rng.random(n) < 0.1, rng.integers(0, 7, n), np.nan),
        "rai_cps_last": np.nan, "rai_iadl_last": np.nan, "service_lines_365d": rng.integers(0, 6, n),
    })
    for s in ("primary_care_visit", "emergency", "inpatient", "home_care", "housing_24h", "social_work",
              "mental_health_substance", "child_family"):
        frame[f"{s}_count_365d"] = rng.poisson(0.5, n) * (rng.random(n) < 0.4)
        frame[f"{s}_cost_365d"] = frame[f"{s}_count_365d"] * rng.uniform(50, 900)
    frame["cost_total_365d"] = frame[[c for c in frame if c.endswith("_cost_365d")]].sum(axis=1)
    frame["dx_diabetes"] = frame["dx_diabetes"].astype(int)
    frame["dx_substance_use"] = frame["dx_substance_use"].astype(int)
    return frame


def test_profiles_add_up():
    X = _features()
    nyc = pd.Series(np.random.default_rng(1).gamma(0.5, 3000, len(X)), index=X.index)
    result = segment_clients(X, "kmeans", 4, next_year_cost=nyc, n_bootstrap=0)
    prof = result.profiles
    assert prof["clients"].sum() == len(X)
    assert prof["client_share"].sum() == pytest.approx(1.0)
    assert prof["next_year_cost_share"].sum() == pytest.approx(1.0)
    assert prof["cost_share"].sum() == pytest.approx(1.0)
    assert prof["segment_name"].is_unique and prof["segment_name"].str.len().gt(0).all()
    assert set(result.assignments.columns) == {"client_id", "segment", "segment_name"}
    by_seg = result.concentration["by_segment"]
    assert by_seg["cost_share"].sum() == pytest.approx(1.0) and by_seg["clients"].sum() == len(X)


def test_profile_names_describe_the_segment():
    X = _features()
    X.loc[:99, "age"] = 88
    X.loc[:99, "housing_24h_cost_365d"] = 40_000
    X.loc[100:, "housing_24h_cost_365d"] = 0
    prof = profile_segments(X, np.r_[np.zeros(100, int), np.ones(len(X) - 100, int)])
    assert prof.loc[0, "segment_name"].startswith("75+")
    assert "24 h housing" in prof.loc[0, "top_services"]


def test_grid_follows_its_config(tmp_path):
    X = _features()
    grid = NeedResourceGrid().fit(X)
    codes = grid.labels_
    pts = grid.points(X)
    need = pts["need_points"] >= 2
    weak = pts["weak_resources_points"] >= 1
    np.testing.assert_array_equal(codes, 2 * need.astype(int) + weak.astype(int))
    # A county renames the cells and changes thresholds without code changes.
    cfg = tmp_path / "grid.yaml"
    cfg.write_text("""
need: {min_points: 1, rules: [{column: chronic_conditions, op: ">=", value: 3}]}
weak_resources: {min_points: 1, rules: [{column: social_work_count_365d, op: ">=", value: 1}]}
labels: {en: {self_reliant: A, needs_guidance: B, needs_cooperation: C, comprehensive_support: D}}
""")
    custom = NeedResourceGrid(cfg).fit(X)
    expected = 2 * (X["chronic_conditions"] >= 3).astype(int) + (X["social_work_count_365d"] >= 1).astype(int)
    np.testing.assert_array_equal(custom.labels_, expected)
    assert custom.segment_names("en") == {0: "A", 1: "B", 2: "C", 3: "D"}
    with pytest.raises(ValueError, match="no grid labels"):
        custom.segment_names("fi")


def test_grid_treats_a_missing_assessment_as_no_evidence_and_names_missing_columns():
    X = _features()
    grid = NeedResourceGrid().fit(X)
    pts = grid.points(X)
    assert not pts.loc[X["rai_maple_last"].isna(), "need:rai_maple_last"].any()
    with pytest.raises(ValueError, match="charlson_index"):
        NeedResourceGrid().fit(X.drop(columns=["charlson_index"]))


def test_a_grid_built_from_fitted_thresholds_predicts_as_the_fitted_one():
    X, other = _features(), _features(seed=3)
    fitted = NeedResourceGrid().fit(X)
    assert fitted.thresholds_  # the packaged grid has top_share rules
    rebuilt = NeedResourceGrid.from_thresholds(dict(fitted.thresholds_))
    assert rebuilt.thresholds_ == fitted.thresholds_
    np.testing.assert_array_equal(rebuilt.predict(other), fitted.predict(other))
    pd.testing.assert_frame_equal(rebuilt.points(other), fitted.points(other))
    assert not hasattr(rebuilt, "labels_")
    # moving one cut point moves the clients above it: the thresholds are used, not refitted
    column = next(iter(fitted.thresholds_))
    lowered = NeedResourceGrid.from_thresholds({**fitted.thresholds_, column: -1.0})
    hits = lowered.points(other).filter(like=f":{column}").iloc[:, 0]
    assert hits.sum() == other[column].astype(float).notna().sum()


def test_thresholds_from_elsewhere_must_match_the_rules():
    thresholds = dict(NeedResourceGrid().fit(_features()).thresholds_)
    column = next(iter(thresholds))
    with pytest.raises(ValueError, match=f"missing \\['{column}'\\]"):
        NeedResourceGrid.from_thresholds({c: v for c, v in thresholds.items() if c != column})
    with pytest.raises(ValueError, match="unknown \\['age'\\]"):
        NeedResourceGrid.from_thresholds({**thresholds, "age": 70.0})
    with pytest.raises(ValueError, match="must be numbers"):
        NeedResourceGrid.from_thresholds({**thresholds, column: "high"})
    assert NeedResourceGrid.from_thresholds({**thresholds, column: np.float32(2.5)}).thresholds_[column] == 2.5


def test_grid_labels_are_configured_in_three_languages():
    grid = NeedResourceGrid().fit(_features())
    for lang in ("fi", "sv", "en"):
        assert len(set(grid.segment_names(lang).values())) == len(CELLS)


def test_concentration_figures():
    assert gini(np.ones(100)) == pytest.approx(0.0, abs=1e-12)
    one = np.r_[np.zeros(99), 1.0]
    assert gini(one) == pytest.approx(0.99)
    shares = top_shares(np.r_[np.full(90, 1.0), np.full(10, 91.0)])
    assert shares["top_10pct"] == pytest.approx(910 / 1000)
    curve = lorenz_curve(np.array([1.0, 3.0]))
    assert curve["cost_share"].tolist() == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="missing"):
        lorenz_curve(np.array([1.0, np.nan]))
    seg = segment_cost_shares(pd.Series(["a", "a", "b"]), pd.Series([1.0, 1.0, 2.0]))
    assert seg.loc["b", "cost_share"] == 0.5 and seg.loc["a", "client_share"] == pytest.approx(2 / 3)
