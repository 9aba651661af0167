"""Change features: use against a year earlier, first uses, new diagnoses and RAI steps, at their boundaries."""
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from features.histories.build import build_features
from features.histories.dictionary import describe, feature_dictionary
from features.histories.pandas_reference import reference_features
from features.histories.schema import feature_schema
from features.histories.spec import CHANGE_KINDS, SpecError, load_spec, parse_spec, reason_type
from history_data import AS_OF, frames, make_county

T = AS_OF


def day(n: int) -> str:
    """T - n days as text."""
    return f"{T - pd.Timedelta(days=n):%Y-%m-%d}"


def table(tables, as_of=T, reference=False):
    X = build_features(tables, as_of)
    if reference:  # the SQL and the plain-pandas reference agree on these hand-built cases too
        pd.testing.assert_frame_equal(X, reference_features(tables, as_of), check_exact=False, rtol=1e-12)
    return X.set_index("client_id")


def row(tables, client="a", as_of=T, reference=False):
    return table(tables, as_of, reference).loc[client]


def test_use_against_the_same_span_a_year_earlier_edges():
    visits = [1, 2, 90, 91, 365, 366, 455, 456, 546]
    ev = [{"client_id": "a", "start": day(n), "service": "emergency", "cost_eur": 300.0} for n in visits]
    ev.append({"client_id": "a", "start": day(0), "service": "emergency", "cost_eur": 300.0})  # at T: never
    x = row(frames(events=ev), reference=True)
    # 90 days: [T-90, T) holds T-1, T-2, T-90; a year earlier [T-455, T-365) holds T-366, T-455
    assert x["emergency_count_change_90d"] == 1.0
    assert x["emergency_cost_change_90d"] == 300.0
    # 180 days: [T-180, T) holds 4 (with T-91); [T-545, T-365) holds T-366, T-455, T-456 (not T-546, not T-365)
    assert x["emergency_count_change_180d"] == 1.0
    assert x["total_count_change_180d"] == 1.0 and x["health_count_change_180d"] == 1.0
    assert x["social_count_change_180d"] == 0.0 and x["inpatient_count_change_90d"] == 0.0


def test_episodes_are_prorated_into_each_span_and_a_running_one_is_costed_to_T_minus_1():
    ev = [{"client_id": "a", "start": day(370), "end": day(361), "service": "inpatient", "cost_eur": 1000.0},
          {"client_id": "a", "start": day(30), "end": None, "service": "housing_24h", "cost_eur": None}]
    x = row(frames(events=ev), reference=True)
    # the stay's 10 days: 5 fall in [T-455, T-365) (T-370 .. T-366), 5 in the year before T but not in 90 days
    assert x["inpatient_cost_change_90d"] == pytest.approx(-500.0)
    assert x["inpatient_count_change_90d"] == -1.0  # it started in the earlier span
    assert x["social_cost_change_90d"] == pytest.approx(30 * 160.0)  # 24-hour housing, unit rate x 30 days
    assert x["total_cost_change_90d"] == pytest.approx(30 * 160.0 - 500.0)
    # the running episode's recorded end and cost are after T: changing them changes nothing
    ev[1].update(end=day(-40), cost_eur=99_999.0)
    y = row(frames(events=ev))
    assert x.equals(y)


CASES_HISTORY = [  # (field, days before T, NaN for the 90-day comparison, NaN for the 180-day one)
    ("moved_in", 455, False, True),   # resident since T - 455: the 90-day comparison is on record
    ("moved_in", 454, True, True),
    ("moved_in", 545, False, False),
    ("birth_date", 455, False, True),
    ("birth_date", 454, True, True),
]


def test_change_is_missing_without_the_history_it_compares_with():
    clients = [{"client_id": f"h{i}", field: day(n)} for i, (field, n, _, _) in enumerate(CASES_HISTORY)]
    ev = [{"client_id": c["client_id"], "start": day(10), "service": "emergency"} for c in clients]
    X = table(frames(clients=clients, events=ev), reference=True)
    for i, (field, n, nan_90, nan_180) in enumerate(CASES_HISTORY):
        x = X.loc[f"h{i}"]
        assert math.isnan(x["emergency_count_change_90d"]) is nan_90, (field, n)
        assert math.isnan(x["emergency_cost_change_180d"]) is nan_180, (field, n)
        if not nan_90:
            assert x["emergency_count_change_90d"] == 1.0
        # a first emergency visit looks back 180 + 730 days, a new home-care start 90 + 365
        assert math.isnan(x["first_emergency_180d"])
        assert math.isnan(x["first_home_care_90d"]) is nan_90
        assert x["emergency_count_180d"] == 1  # level features do not depend on the history


def test_first_emergency_visit_looks_back_two_years_before_the_window():
    cases = {"p0": None, "p1": 910, "p2": 911, "p3": 181}  # an earlier visit, days before T
    expected = {"p0": 1.0, "p1": 0.0, "p2": 1.0, "p3": 0.0}
    ev = [{"client_id": c, "start": day(180), "service": "emergency"} for c in cases]  # first day of the window
    ev += [{"client_id": c, "start": day(n), "service": "emergency"} for c, n in cases.items() if n]
    X = table(frames(clients=list(cases), events=ev))
    assert X["first_emergency_180d"].to_dict() == expected


def test_new_home_care_start():
    cases = {  # client: (visit, earlier visit, new within 90 days, new within 180 days), in days before T
        "k0": (90, None, 1.0, 1.0), "k1": (91, None, 0.0, 1.0), "k2": (90, 455, 0.0, 0.0), "k3": (90, 456, 1.0, 0.0),
        "k4": (90, 546, 1.0, 1.0), "k5": (30, 100, 0.0, 1.0),
        "k6": (0, None, 0.0, 0.0),  # a home-care visit on T is not known at T
    }
    ev = [{"client_id": c, "start": day(v), "service": "home_care"} for c, (v, _, _, _) in cases.items()]
    ev += [{"client_id": c, "start": day(p), "service": "home_care"} for c, (_, p, _, _) in cases.items() if p]
    X = table(frames(clients=list(cases), events=ev))
    for c, (_, _, new90, new180) in cases.items():
        assert (X.loc[c, "first_home_care_90d"], X.loc[c, "first_home_care_180d"]) == (new90, new180), c


def test_new_diagnosis_in_the_last_six_months():
    cases = {"d0": None, "d1": 910, "d2": 911}  # an earlier heart-failure diagnosis, days before T
    dx = []
    for c, earlier in cases.items():
        dx += [{"client_id": c, "date": day(180), "code": "I50.1"},
               {"client_id": c, "date": day(5), "code": "K77", "system": "ICPC-2"},  # heart failure again, ICPC-2
               {"client_id": c, "date": day(0), "code": "E11.9"}]  # diabetes on T: not known
        if earlier:
            dx.append({"client_id": c, "date": day(earlier), "code": "I50.9"})
    X = table(frames(clients=list(cases), diagnoses=dx), reference=True)
    assert X["new_dx_heart_failure_180d"].to_dict() == {"d0": 1.0, "d1": 0.0, "d2": 1.0}
    assert X["new_dx_count_180d"].to_dict() == {"d0": 1.0, "d1": 0.0, "d2": 1.0}
    assert (X["new_dx_diabetes_180d"] == 0).all() and (X["dx_heart_failure"] == 1).all()


def test_rai_step_is_the_latest_assessment_day_against_the_previous_one():
    a = [{"client_id": "a", "date": day(800), "scale": "adl_h", "value": 0.0},  # beyond the 730-day lookback
         {"client_id": "a", "date": day(400), "scale": "adl_h", "value": 1.0},
         {"client_id": "a", "date": day(100), "scale": "adl_h", "value": 3.0},
         {"client_id": "a", "date": day(100), "scale": "adl_h", "value": 4.0},  # same day: the mean, 3.5
         {"client_id": "a", "date": day(0), "scale": "adl_h", "value": 6.0},    # on T: not known
         {"client_id": "a", "date": day(50), "scale": "cps", "value": 2.0}]
    x = row(frames(assessments=a), reference=True)
    assert x["rai_adl_h_step"] == 2.5
    assert math.isnan(x["rai_adl_h_change_365d"])  # it needs two assessment days within the last year
    assert math.isnan(x["rai_cps_step"]) and math.isnan(x["rai_maple_step"])


@pytest.mark.parametrize("seed,as_of", [(21, "2024-01-01"), (22, "2023-05-20")])
def test_a_custom_change_spec_matches_the_reference(tmp_path, seed, as_of):
    raw = {"windows": [30], "events": [{"agg": "count"}], "demographics": ["age"],
           "diagnoses": {"groups": ["diabetes", "copd"]},
           "assessments": {"scales": ["adl_h"], "step": True},
           "changes": {"use": {"windows": [60, 120], "lag_days": 180, "aggs": ["cost"],
                               "groups": {"acute": ["emergency", "inpatient"]}},
                       "first_use": [{"service": "housing_24h", "days": 30, "none_before_days": 90}],
                       "new_diagnoses": {"days": 90, "none_before_days": 365, "groups": ["copd"]}}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    tables = make_county(150, seed=seed)
    X, R = build_features(tables, as_of, spec), reference_features(tables, as_of, spec)
    assert list(X.columns)[-6:] == ["acute_cost_change_60d", "acute_cost_change_120d", "first_housing_24h_30d",
                                    "new_dx_copd_90d", "new_dx_count_90d", "rai_adl_h_step"]
    assert [c for c in X.columns if "change_" in c or c.startswith(("first_", "new_dx"))] == [
        "rai_adl_h_change_365d", "acute_cost_change_60d", "acute_cost_change_120d", "first_housing_24h_30d",
        "new_dx_copd_90d", "new_dx_count_90d"]
    pd.testing.assert_frame_equal(X, R, check_exact=False, rtol=1e-9, atol=1e-9)
    assert X["acute_cost_change_120d"].abs().sum() > 0 and X["acute_cost_change_120d"].isna().sum() > 0
    feature_schema(spec).validate(X)
    assert describe("acute_cost_change_60d", 1234.4, "en", spec) == (
        "costs of emergency care and inpatient care changed by +1,234 € in the last 2 months against the same "
        "period 180 days earlier")


@pytest.mark.parametrize("changes,message", [
    ({"use": {"windows": [400], "groups": {"x": "all"}}}, "longer than lag_days"),
    ({"use": {"groups": {"x": ["sauna"]}}}, "changes.use.groups.x"),
    ({"use": {"groups": {}}}, "non-empty"),
    ({"use": {"groups": {"Bad Name": "all"}}}, "lower_snake_case"),
    ({"use": {"groups": {"x": "all"}, "aggs": ["days"]}}, "days"),
    ({"first_use": [{"service": "sauna", "days": 30, "none_before_days": 30}]}, "sauna"),
    ({"first_use": [{"service": "emergency", "days": 0, "none_before_days": 30}]}, "first_use"),
    ({"new_diagnoses": {"groups": ["gout"]}}, "changes.new_diagnoses.groups"),
    ({"colour": 1}, "unknown key"),
])
def test_bad_change_declarations_name_the_key(changes, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({"windows": [30], "events": [{"agg": "count"}], "changes": changes}, "test.yaml")


def test_every_change_feature_is_classified_and_templated():
    d = feature_dictionary().set_index("feature")
    assert d.loc["emergency_count_change_90d", "reason_type"] == "change"
    assert d.loc["first_home_care_90d", "reason_type"] == "change"
    assert d.loc["rai_adl_h_change_365d", "reason_type"] == "change"
    assert d.loc["cost_total_365d", "reason_type"] == "level" and d.loc["dx_diabetes", "reason_type"] == "level"
    assert d.loc["age", "reason_type"] == "demographic" and reason_type("sex") == "demographic"
    assert set(d["reason_type"]) == {"change", "level", "demographic"}
    assert (d["reason_type"] == "change").sum() == d["kind"].isin(CHANGE_KINDS).sum() == 66
    assert describe("emergency_count_change_90d", 2, "en") == (
        "+2 emergency visits in the last 3 months against the same period a year earlier")
    assert describe("emergency_count_change_90d", -1, "fi") == (
        "-1 päivystyskäyntiä viimeisen 3 kuukauden aikana verrattuna samaan jaksoon vuotta aiemmin")
    assert describe("first_home_care_90d", 1, "sv") == (
        "1 hemvårdsbesök för första gången under de senaste 3 månaderna (inga kontakter med hemvården under de "
        "föregående 12 månaderna)")
    assert describe("new_dx_heart_failure_180d", 1, "en") == (
        "1 new diagnosis of heart failure in the last 6 months, not recorded in the 2 years before")
    assert describe("rai_adl_h_step", 2, "fi") == "RAI ADL-H muuttunut +2 edellisestä arvioinnista"
    assert describe("total_cost_change_180d", float("nan"), "en").endswith(": no record")


def test_change_features_come_after_every_level_feature():
    names = load_spec().column_names()
    first_change = names.index("total_count_change_90d")
    assert names[first_change - 1] == "continuity_professional_730d"
    assert all(reason_type(c.kind) == "change" for c in load_spec().columns()[first_change - 1:])
    assert np.all([n in names for n in ("first_emergency_180d", "new_dx_count_180d", "rai_maple_step")])
