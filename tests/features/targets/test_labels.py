"""Targets: config validation, cohorts, outcomes over [T, T + horizon), deaths and moves, training sets."""
import numpy as np
import pandas as pd
import pytest
import yaml

from features.histories.build import build_features
from features.targets.labels import TargetError, build_labels, build_training_set, load_targets
from history_data import AS_OF, frames

T = AS_OF


def write_targets(tmp_path, targets, horizon=365):
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"horizon_days": horizon, "targets": targets}))
    return path


def labels_of(tables, target, tmp_path=None, targets=None, as_of=T):
    return build_labels(tables, as_of, target, targets=targets).set_index("client_id")


def test_packaged_targets_load():
    targets = load_targets()
    assert {"high_use", "diabetes_high_use", "elderly_low_function", "young_adult_mhsu"} <= set(targets)
    assert targets["elderly_low_function"].outcome.kind == "any_of"
    assert all(t.horizon_days == 365 for t in targets.values())


@pytest.mark.parametrize("bad,message", [
    ({"x": {"cohort": {}, "outcome": {"kind": "teleport"}}}, "outcome needs a kind"),
    ({"x": {"cohort": {"min_age": -1}, "outcome": {"kind": "cost_quantile", "quantile": 0.9}}}, "x.cohort.min_age"),
    ({"x": {"cohort": {"colour": "red"}, "outcome": {"kind": "cost_quantile", "quantile": 0.9}}}, "colour"),
    ({"x": {"outcome": {"kind": "cost_quantile", "quantile": 1.5}}}, "strictly between 0 and 1"),
    ({"x": {"outcome": {"kind": "count", "services": ["sauna"], "min": 2}}}, "sauna"),
    ({"x": {"outcome": {"kind": "assessment_level", "scale": "adl_h"}}}, "takes exactly"),
    ({"x": {"cohort": {"diagnosis_groups": ["gout"]}, "outcome": {"kind": "cost_quantile", "quantile": 0.5}}},
     "gout"),
    ({"x": {"outcome": {"kind": "service_start", "service": "emergency"}}}, "episode service"),
])
def test_bad_targets_are_rejected_with_the_target_and_key(tmp_path, bad, message):
    with pytest.raises(TargetError, match=message) as err:
        load_targets(write_targets(tmp_path, bad))
    assert "target x" in str(err.value)


def test_county_adds_a_target_without_code(tmp_path):
    path = write_targets(tmp_path, {"frequent_emergency": {
        "description": "3+ emergency visits", "cohort": {"min_age": 18},
        "outcome": {"kind": "count", "services": ["emergency"], "min": 3}}}, horizon=180)
    ev = [{"client_id": "a", "start": d, "service": "emergency"} for d in ("2024-01-01", "2024-03-01", "2024-06-28")]
    ev.append({"client_id": "b", "start": "2024-06-29", "service": "emergency"})  # T + 180 days: outside
    ev += [{"client_id": "b", "start": d, "service": "emergency"} for d in ("2024-02-01", "2024-02-02")]
    L = labels_of(frames(clients=["a", "b"], events=ev), "frequent_emergency", targets=path)
    assert L.loc["a", "label"] == 1 and L.loc["b", "label"] == 0
    assert L.loc["b", "horizon_events"] == 2


def test_unknown_target_name():
    with pytest.raises(TargetError, match="unknown target 'nope'"):
        build_labels(frames(), T, "nope")


def test_high_use_quantile_is_strict_and_over_the_cohort():
    clients = [f"c{i}" for i in range(10)]
    ev = [{"client_id": c, "start": "2024-02-01", "service": "emergency", "cost_eur": 100.0 * (i + 1)}
          for i, c in enumerate(clients)]
    ev.append({"client_id": "c9", "start": "2023-12-31", "service": "emergency", "cost_eur": 1e6})  # before T
    L = labels_of(frames(clients=clients, events=ev), "high_use")
    threshold = np.quantile(np.arange(1, 11) * 100.0, 0.9)
    assert L["threshold"].iloc[0] == pytest.approx(threshold)
    assert L.index[L["label"] == 1].tolist() == ["c9"]
    assert L.loc["c9", "horizon_cost"] == 1000.0


def test_costs_count_by_start_date_and_missing_costs_are_filled():
    ev = [{"client_id": "a", "start": "2024-12-20", "end": "2025-03-01", "service": "inpatient", "cost_eur": 5000.0},
          {"client_id": "a", "start": "2023-12-20", "end": "2024-01-05", "service": "inpatient", "cost_eur": 900.0},
          {"client_id": "a", "start": "2024-05-01", "service": "emergency", "cost_eur": None}]
    L = labels_of(frames(events=ev), "high_use")
    assert L.loc["a", "horizon_cost"] == 5000.0 + 300.0  # started in the horizon: whole cost; before T: none


def test_death_and_moving_out_end_observation_but_keep_the_client():
    clients = [{"client_id": "dies", "death_date": "2024-03-01"}, {"client_id": "moves", "moved_out": "2024-03-01"},
               "stays"]
    ev = [{"client_id": c, "start": d, "service": "emergency", "cost_eur": 1000.0}
          for c in ("dies", "moves", "stays") for d in ("2024-02-01", "2024-03-01", "2024-04-01")]
    L = labels_of(frames(clients=clients, events=ev), "high_use")
    assert set(L.index) == {"dies", "moves", "stays"}
    assert L.loc["dies", "horizon_cost"] == 2000.0  # events on the day of death count
    assert L.loc["moves", "horizon_cost"] == 1000.0  # from the moving-out day on the client is not ours
    assert L.loc["stays", "horizon_cost"] == 3000.0
    assert (L.loc["dies", "observed_days"], L.loc["moves", "observed_days"], L.loc["stays", "observed_days"]) == (
        61, 60, 365)
    assert L["died_in_horizon"].tolist() == [True, False, False]
    assert L["moved_out_in_horizon"].tolist() == [False, True, False]


def test_population_matches_the_feature_table(county):
    L = build_labels(county, T, "high_use")
    X = build_features(county, T)
    assert L["client_id"].tolist() == X["client_id"].tolist()


def test_diabetes_cohort_uses_diagnoses_before_T_in_both_code_systems():
    dx = [{"client_id": "icd", "date": "2020-01-01", "code": "E11.9"},
          {"client_id": "icpc", "date": "2023-12-31", "code": "T90", "system": "ICPC-2"},
          {"client_id": "late", "date": "2024-01-01", "code": "E11.9"},
          {"client_id": "wrong_system", "date": "2020-01-01", "code": "T90.0"}]
    L = labels_of(frames(clients=["icd", "icpc", "late", "wrong_system"], diagnoses=dx), "diabetes_high_use")
    assert sorted(L.index) == ["icd", "icpc"]


def test_elderly_low_function_outcomes():
    old = {"birth_date": "1940-01-01"}
    clients = [{"client_id": k, **old} for k in ("housing", "maple", "maple_already", "adl_rise", "adl_small",
                                                 "adl_no_base", "in_housing")]
    clients.append({"client_id": "young", "birth_date": "1960-01-01"})
    ev = [{"client_id": "housing", "start": "2024-05-01", "service": "housing_24h"},
          {"client_id": "in_housing", "start": "2023-01-01", "service": "housing_24h"}]  # running at T: excluded
    a = [
        {"client_id": "maple", "date": "2023-06-01", "scale": "maple", "value": 3.0},
        {"client_id": "maple", "date": "2024-06-01", "scale": "maple", "value": 4.0},
        {"client_id": "maple_already", "date": "2023-06-01", "scale": "maple", "value": 4.0},
        {"client_id": "maple_already", "date": "2024-06-01", "scale": "maple", "value": 5.0},
        {"client_id": "adl_rise", "date": "2023-06-01", "scale": "adl_h", "value": 1.0},
        {"client_id": "adl_rise", "date": "2024-06-01", "scale": "adl_h", "value": 3.0},
        {"client_id": "adl_small", "date": "2023-06-01", "scale": "adl_h", "value": 2.0},
        {"client_id": "adl_small", "date": "2024-06-01", "scale": "adl_h", "value": 3.0},
        {"client_id": "adl_no_base", "date": "2024-06-01", "scale": "adl_h", "value": 2.0},  # baseline 0
        {"client_id": "young", "date": "2024-06-01", "scale": "maple", "value": 5.0},
    ]
    L = labels_of(frames(clients=clients, events=ev, assessments=a), "elderly_low_function")
    assert "young" not in L.index and "in_housing" not in L.index
    assert L["label"].to_dict() == {"adl_no_base": 1, "adl_rise": 1, "adl_small": 0, "housing": 1, "maple": 1,
                                    "maple_already": 0}


def test_young_adult_mhsu_cohort_and_count():
    clients = [{"client_id": "ya", "birth_date": "2000-01-01"}, {"client_id": "old_contact", "birth_date": "2000-01-01"},
               {"client_id": "too_old", "birth_date": "1990-01-01"}]
    ev = [{"client_id": "ya", "start": "2023-06-01", "service": "mental_health_substance"},
          {"client_id": "old_contact", "start": "2022-06-01", "service": "mental_health_substance"},
          {"client_id": "too_old", "start": "2023-06-01", "service": "mental_health_substance"}]
    ev += [{"client_id": "ya", "start": f"2024-{m:02d}-01", "service": s} for m in range(1, 11)
           for s in ["emergency"]]
    L = labels_of(frames(clients=clients, events=ev), "young_adult_mhsu")
    assert L.index.tolist() == ["ya"] and L.loc["ya", "label"] == 1


def test_training_set_for_several_dates(county):
    ts = build_training_set(county, ["2022-01-01", "2023-01-01"], "high_use")
    assert set(ts["as_of"]) == {pd.Timestamp("2022-01-01"), pd.Timestamp("2023-01-01")}
    assert not ts.duplicated(["client_id", "as_of"]).any()
    for t, part in ts.groupby("as_of"):
        X = build_features(county, t)
        assert part["client_id"].tolist() == X["client_id"].tolist()
        assert part["emergency_count_90d"].tolist() == X["emergency_count_90d"].tolist()
        assert 0 < part["label"].sum() <= 0.1 * len(part) + 1
    assert {"label", "horizon_cost", "cost_total_365d"} <= set(ts.columns)


def test_monthly_housing_rows_are_one_stay_for_cohort_and_outcome(tmp_path):
    """24 h housing billed month by month: a resident at T is not 'entering' it in the horizon."""
    path = write_targets(tmp_path, {"enters_housing": {
        "cohort": {"exclude_ongoing": "housing_24h"},
        "outcome": {"kind": "service_start", "service": "housing_24h"}}})
    rows = []
    # a: in housing since 2023-11, rows end on the last day of each month (the last before T ends on T - 1)
    for start, end in (("2023-11-15", "2023-11-30"), ("2023-12-01", "2023-12-31"), ("2024-01-01", "2024-01-31")):
        rows.append({"client_id": "a", "start": start, "end": end, "service": "housing_24h"})
    # b: enters in the horizon and stays two months (second row continues the first)
    for start, end in (("2024-03-10", "2024-03-31"), ("2024-04-01", "2024-04-30")):
        rows.append({"client_id": "b", "start": start, "end": end, "service": "housing_24h"})
    # c: never in housing
    rows.append({"client_id": "c", "start": "2024-02-01", "service": "emergency"})
    L = labels_of(frames(clients=["a", "b", "c"], events=rows), "enters_housing", targets=path)
    assert "a" not in L.index  # ongoing at T (in housing on the day before T)
    assert L.loc["b", "label"] == 1 and L.loc["c", "label"] == 0
    assert labels_of(frames(clients=["a", "b", "c"], events=rows), "high_use").index.isin(["a"]).any()


def test_a_continuation_row_is_not_a_new_start(tmp_path):
    path = write_targets(tmp_path, {"starts": {"cohort": {},
                                               "outcome": {"kind": "service_start", "service": "housing_24h"}}})
    rows = [{"client_id": "a", "start": "2023-12-01", "end": "2023-12-31", "service": "housing_24h"},
            {"client_id": "a", "start": "2024-01-01", "end": "2024-01-31", "service": "housing_24h"},
            {"client_id": "b", "start": "2023-10-01", "end": "2023-10-20", "service": "housing_24h"},
            {"client_id": "b", "start": "2024-05-01", "end": "2024-05-31", "service": "housing_24h"}]
    L = labels_of(frames(clients=["a", "b"], events=rows), "starts", targets=path)
    assert L.loc["a", "label"] == 0  # the January row goes on from December
    assert L.loc["b", "label"] == 1  # a new stay after a gap
