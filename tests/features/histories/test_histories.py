"""Client-history features: boundary rules, population, missing values, leakage, SQL vs pandas reference."""
import math

import numpy as np
import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.histories.pandas_reference import reference_features
from features.contract.tables import EPISODE_SERVICES, SERVICE_LINES
from features.histories.schema import feature_schema
from features.histories.build import ClientHistories, build_features
from features.histories.spec import load_spec
from history_data import AS_OF, frames, make_county

T = AS_OF


def row(tables, client="a", as_of=T):
    X = build_features(tables, as_of)
    return X.set_index("client_id").loc[client]


# -- window edges and the index date ------------------------------------------------

def test_window_is_half_open_at_both_edges():
    x = row(frames(events=[
        {"client_id": "a", "start": "2023-10-03", "service": "emergency"},  # T - 90 days: inside 90d
        {"client_id": "a", "start": "2023-10-02", "service": "emergency"},  # T - 91 days: only 180d
        {"client_id": "a", "start": "2023-12-31", "service": "emergency"},  # T - 1 day
        {"client_id": "a", "start": "2024-01-01", "service": "emergency"},  # at T: never
    ]))
    assert x["emergency_count_90d"] == 2
    assert x["emergency_count_180d"] == 3
    assert x["emergency_cost_90d"] == 200.0
    assert x["count_total_730d"] == 3
    assert x["days_since_last_emergency"] == 1.0


def test_episode_crossing_T_counts_days_to_T_minus_1_and_ignores_its_future():
    ev = {"client_id": "a", "start": "2023-12-20", "end": "2024-01-10", "service": "inpatient",
          "professional": "ward.1", "cost_eur": 9000.0}
    x = row(frames(events=[ev]))
    assert x["inpatient_days_90d"] == 12  # 20-31 December
    assert x["inpatient_count_90d"] == 1
    assert x["inpatient_cost_90d"] == pytest.approx(12 * 350.0)  # ward rate x days before T, not the 9000
    assert x["days_since_last_inpatient"] == 1.0
    for end, cost in [(None, None), ("2024-06-30", 123.0), ("2024-01-01", 1.0)]:
        y = row(frames(events=[{**ev, "end": end, "cost_eur": cost}]))
        pd.testing.assert_series_equal(x, y)


def test_completed_episode_cost_is_prorated_by_days_in_window():
    x = row(frames(events=[
        {"client_id": "a", "start": "2023-09-25", "end": "2023-10-05", "service": "inpatient", "cost_eur": 1100.0},
    ]))
    assert x["inpatient_days_90d"] == 3  # 3-5 October; the window starts on 3 October
    assert x["inpatient_count_90d"] == 0  # started before the window
    assert x["inpatient_cost_90d"] == pytest.approx(300.0)
    assert (x["inpatient_days_180d"], x["inpatient_count_180d"], x["inpatient_cost_180d"]) == (11, 1, 1100.0)
    assert x["days_since_last_inpatient"] == (T - pd.Timestamp("2023-10-05")).days


def test_open_episode_and_missing_costs_use_the_unit_cost_table():
    x = row(frames(events=[
        {"client_id": "a", "start": "2022-01-01", "service": "housing_24h", "cost_eur": None},
        {"client_id": "a", "start": "2023-11-01", "service": "primary_care_visit", "professional": "doctor.7",
         "cost_eur": None},
        {"client_id": "a", "start": "2023-11-02", "service": "primary_care_visit", "cost_eur": None},
    ]))
    assert x["housing_24h_days_365d"] == 365 and x["housing_24h_days_730d"] == 730
    assert x["housing_24h_cost_365d"] == pytest.approx(365 * 160.0)
    assert x["primary_care_visit_cost_90d"] == pytest.approx(130.0 + 100.0)  # doctor rate, then base rate
    assert x["cost_total_90d"] == pytest.approx(90 * 160.0 + 230.0)


def test_multi_sector_and_distinct_units():
    x = row(frames(events=[
        {"client_id": "a", "start": "2023-05-01", "service": "home_care", "unit": "u1", "professional": "n.1"},
        {"client_id": "a", "start": "2023-06-01", "service": "home_care", "unit": "u2", "professional": "n.1"},
        {"client_id": "a", "start": "2023-07-01", "service": "home_care", "unit": "u2", "professional": None},
        {"client_id": "a", "start": "2022-01-01", "service": "emergency"},
    ]))
    assert x["home_care_units_365d"] == 2 and x["home_care_professionals_365d"] == 1
    assert (x["service_lines_365d"], x["social_and_health_365d"]) == (1, 0)
    assert (x["service_lines_730d"], x["social_and_health_730d"]) == (2, 1)


def test_continuity_of_primary_care():
    visits = [("u1", "p1"), ("u1", "p2"), ("u2", "p3"), (None, "p1")]
    x = row(frames(clients=["a", "b"], events=[
        *[{"client_id": "a", "start": f"2023-0{i + 1}-01", "service": "primary_care_visit", "unit": u,
           "professional": p} for i, (u, p) in enumerate(visits)],
        {"client_id": "b", "start": "2023-05-01", "service": "primary_care_visit", "unit": "u1"},
    ]))
    assert x["continuity_unit_730d"] == pytest.approx(2 / 3)  # contacts without a unit are left out
    assert x["continuity_professional_730d"] == pytest.approx(2 / 4)
    tables = frames(clients=["b"], events=[{"client_id": "b", "start": "2023-05-01", "service": "primary_care_visit",
                                            "unit": "u1"}])
    assert math.isnan(row(tables, "b")["continuity_unit_730d"])  # one contact: below min_contacts


# -- diagnoses, measurements, assessments ------------------------------------------

def test_diagnosis_groups_and_charlson_hierarchy():
    x = row(frames(diagnoses=[
        {"client_id": "a", "date": "2020-01-01", "code": "E11.0"},   # diabetes without complications (1)
        {"client_id": "a", "date": "2021-01-01", "code": "E11.2"},   # with complications (2) supersedes
        {"client_id": "a", "date": "2021-01-01", "code": "C50.9"},   # malignancy (2) ...
        {"client_id": "a", "date": "2022-01-01", "code": "C78.0"},   # ... superseded by metastatic (6)
        {"client_id": "a", "date": "2022-01-01", "code": "K70.3"},   # mild liver (1) + ascites ...
        {"client_id": "a", "date": "2023-01-01", "code": "R18"},     # ... makes severe liver (3)
        {"client_id": "a", "date": "2023-05-01", "code": "K86", "system": "ICPC-2"},  # ICPC-2 hypertension
        {"client_id": "a", "date": "2024-01-01", "code": "I50.1"},   # at T: ignored
    ]))
    assert x["charlson_index"] == 2 + 6 + 3
    assert (x["dx_diabetes"], x["dx_cancer"], x["dx_hypertension"], x["dx_heart_failure"]) == (1, 1, 1, 0)
    assert x["chronic_conditions"] == 3


def test_icd10_code_in_an_icpc2_range_does_not_match():
    x = row(frames(diagnoses=[{"client_id": "a", "date": "2023-01-01", "code": "K86.0"}]))  # ICD-10 pancreas
    assert x["dx_hypertension"] == 0


def test_measurements_last_change_and_lookback():
    x = row(frames(measurements=[
        {"client_id": "a", "date": "2021-06-01", "name": "hba1c", "value": 99.0},  # older than 730 days
        {"client_id": "a", "date": "2023-06-01", "name": "hba1c", "value": 60.0},
        {"client_id": "a", "date": "2023-11-01", "name": "hba1c", "value": 70.0},
        {"client_id": "a", "date": "2023-11-01", "name": "hba1c", "value": 72.0},  # same day: averaged
        {"client_id": "a", "date": "2024-01-01", "name": "hba1c", "value": 120.0},  # at T: ignored
        {"client_id": "a", "date": "2023-12-01", "name": "bmi", "value": 31.0},
    ]))
    assert x["hba1c_last"] == 71.0
    assert x["hba1c_change"] == 11.0
    assert x["days_since_last_hba1c"] == 61.0
    assert x["bmi_last"] == 31.0
    assert math.isnan(x["egfr_last"]) and math.isnan(x["egfr_change"])


def test_rai_last_and_change_over_the_last_year():
    x = row(frames(assessments=[
        {"client_id": "a", "date": "2022-12-01", "scale": "adl_h", "value": 1.0},  # before the change window
        {"client_id": "a", "date": "2023-03-01", "scale": "adl_h", "value": 2.0},
        {"client_id": "a", "date": "2023-09-01", "scale": "adl_h", "value": 4.0},
        {"client_id": "a", "date": "2023-09-01", "scale": "maple", "value": 3.0},
    ]))
    assert x["rai_adl_h_last"] == 4.0
    assert x["rai_adl_h_change_365d"] == 2.0
    assert x["rai_maple_last"] == 3.0 and math.isnan(x["rai_maple_change_365d"])  # one assessment: no change
    assert math.isnan(x["rai_cps_last"])


# -- population and missing values ---------------------------------------------------

def test_population_at_T():
    clients = [
        {"client_id": "born_at_T", "birth_date": "2024-01-01"},
        {"client_id": "born_before", "birth_date": "2023-12-31"},
        {"client_id": "died_before", "death_date": "2023-12-31"},
        {"client_id": "died_at_T", "death_date": "2024-01-01"},
        {"client_id": "in_at_T", "moved_in": "2024-01-01"},
        {"client_id": "in_after", "moved_in": "2024-01-02"},
        {"client_id": "out_at_T", "moved_out": "2024-01-01"},
        {"client_id": "out_after", "moved_out": "2024-01-02"},
    ]
    X = build_features(frames(clients=clients), T)
    assert list(X["client_id"]) == sorted(["born_before", "died_at_T", "in_at_T", "out_after"])
    assert X.set_index("client_id").loc["born_before", "age"] == 0


def test_age_in_completed_years_with_leap_day_birth():
    X = build_features(frames(clients=[{"client_id": "a", "birth_date": "1940-02-29"}]), "2023-02-28")
    assert X["age"].iloc[0] == 82
    assert build_features(frames(clients=[{"client_id": "a", "birth_date": "1940-02-29"}]), "2023-03-01")[
        "age"].iloc[0] == 83


def test_client_without_records_gets_zeros_and_nans():
    x = row(frames())
    spec = load_spec()
    for c in spec.columns():
        v = x[c.name]
        if c.kind in ("count", "days", "units", "professionals", "total_count", "service_lines",
                      "social_and_health", "dx", "chronic_conditions", "charlson_index"):
            assert v == 0, c.name
        elif c.kind in ("cost", "total_cost"):
            assert v == 0.0, c.name
        elif c.history_days is not None:  # a change feature of a client on record long enough: no change, a real 0
            assert v == 0.0, c.name
        elif c.dtype == "float":
            assert math.isnan(v), c.name  # never a silent 0 for a missing lab value, "days since" or a RAI step
    assert (x["sex"], x["language"], x["age"]) == ("F", "fi", 73)


def test_output_types_schema_and_stable_names(county):
    X = build_features(county, T)
    feature_schema().validate(X)
    assert X["client_id"].is_unique and X["client_id"].is_monotonic_increasing
    assert {"emergency_count_180d", "cost_total_365d", "hba1c_last", "days_since_last_emergency",
            "charlson_index", "rai_adl_h_change_365d"} <= set(X.columns)
    assert X["emergency_count_180d"].dtype == "int64" and X["hba1c_last"].dtype == "float64"


def test_empty_population_gives_typed_empty_table(county):
    X = build_features(county, "1900-01-01")
    assert len(X) == 0 and list(X.columns) == load_spec().column_names()


# -- SQL: reference equality and Spark transpilation -------------------------------

@pytest.mark.parametrize("seed,as_of", [(7, "2024-01-01"), (8, "2023-03-15"), (9, "2022-07-01")])
def test_sql_matches_pandas_reference(seed, as_of):
    tables = make_county(120, seed=seed)
    X, R = build_features(tables, as_of), reference_features(tables, as_of)
    assert list(X.columns) == list(R.columns) and (X.dtypes == R.dtypes).all()
    assert X["client_id"].tolist() == R["client_id"].tolist()
    for col in X.columns:
        if X[col].dtype == "float64":
            np.testing.assert_allclose(X[col], R[col], rtol=1e-9, atol=1e-9, err_msg=col)
        else:
            assert (X[col] == R[col]).all(), col
    assert X["housing_24h_days_365d"].sum() > 0 and X["hba1c_last"].notna().sum() > 0  # data exercise the rules


def test_generated_sql_transpiles_to_spark(county):
    sql = ClientHistories(county).sql(T)
    spark = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    assert len(spark) == 1 and "DATE_DIFF" not in spark[0] and "`end`" in spark[0]


def test_one_engine_serves_several_dates(county):
    h = ClientHistories(county)
    many = h.features_many(["2023-01-01", "2024-01-01"])
    assert set(many["as_of"]) == {pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-01")}
    one = many[many["as_of"] == pd.Timestamp("2024-01-01")].drop(columns="as_of").reset_index(drop=True)
    pd.testing.assert_frame_equal(one, build_features(county, T))


# -- properties: no leakage, order does not matter ---------------------------------

BASE = make_county(40, seed=3)
BASE_X = {t: build_features(BASE, t) for t in ("2023-06-01", "2024-01-01")}
IDS = BASE["clients"]["client_id"].tolist()


def _future_dates(as_of):
    t = pd.Timestamp(as_of)
    return st.integers(0, 800).map(lambda d: t + pd.Timedelta(days=d))


@st.composite
def future_changes(draw):
    """Tables where records dated at or after T were added, removed or changed."""
    as_of = draw(st.sampled_from(sorted(BASE_X)))
    t = pd.Timestamp(as_of)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tables = {k: v.copy() for k, v in BASE.items()}
    for name, col in (("events", "start"), ("diagnoses", "date"), ("measurements", "date"), ("assessments", "date")):
        f = tables[name]
        future = (f[col] >= t).to_numpy()
        drop = future & (rng.random(len(f)) < draw(st.floats(0, 1)))
        f = f.loc[~drop].copy()
        future = (f[col] >= t).to_numpy()
        if name == "events":
            f.loc[future, "cost_eur"] = rng.gamma(2, 500, future.sum())
            f.loc[future, "service"] = rng.choice(list(SERVICE_LINES), future.sum())
            f.loc[future, "unit"] = "changed.unit"
            # episodes running at T: their end and cost are not known at T
            running = (f["service"].isin(EPISODE_SERVICES) & (f["start"] < t)
                       & (f["end"].isna() | (f["end"] >= t))).to_numpy()
            ends = pd.Series(t + pd.to_timedelta(rng.integers(0, 400, running.sum()), unit="D")).astype(
                "datetime64[s]")
            ends[rng.random(running.sum()) < 0.3] = pd.NaT
            f.loc[running, "end"] = ends.to_numpy()
            f.loc[running, "cost_eur"] = rng.gamma(2, 500, running.sum())
        elif name in ("measurements", "assessments"):
            f.loc[future, "value"] = f.loc[future, "value"] + 1
        else:
            f.loc[future, "code"] = "I50.1"
        tables[name] = f
    new_events = draw(st.lists(st.fixed_dictionaries({
        "client_id": st.sampled_from(IDS), "start": _future_dates(as_of), "service": st.sampled_from(SERVICE_LINES),
        "cost_eur": st.one_of(st.none(), st.floats(0, 50_000)), "unit": st.sampled_from(["x", "y"]),
        "professional": st.sampled_from(["doctor.1", "nurse.9"]), "days": st.integers(0, 30),
    }), max_size=8))
    for e in new_events:
        e["end"] = e["start"] + pd.Timedelta(days=e.pop("days"))
    new_dx = draw(st.lists(st.fixed_dictionaries({
        "client_id": st.sampled_from(IDS), "date": _future_dates(as_of),
        "code": st.sampled_from(["E11.2", "C78.0", "T90", "I50.1"])}), max_size=4))
    new_m = draw(st.lists(st.fixed_dictionaries({
        "client_id": st.sampled_from(IDS), "date": _future_dates(as_of), "name": st.sampled_from(["hba1c", "bmi"]),
        "value": st.floats(20, 100)}), max_size=4))
    new_a = draw(st.lists(st.fixed_dictionaries({
        "client_id": st.sampled_from(IDS), "date": _future_dates(as_of), "scale": st.sampled_from(["adl_h", "maple"]),
        "value": st.integers(1, 5).map(float)}), max_size=4))
    extra = frames(clients=(), events=new_events, diagnoses=[{**d, "system": "ICPC-2" if d["code"] == "T90"
                                                              else "ICD-10"} for d in new_dx],
                   measurements=new_m, assessments=new_a)
    for name in ("events", "diagnoses", "measurements", "assessments"):
        tables[name] = pd.concat([tables[name], extra[name]], ignore_index=True)
    c = tables["clients"].copy()
    later = (c["death_date"] >= t).to_numpy()
    c.loc[later, "death_date"] = pd.NaT  # dying after T is not known at T
    c.loc[c["moved_out"].notna().to_numpy() & (c["moved_out"] > t).to_numpy(), "moved_out"] = t + pd.Timedelta(
        days=999)
    tables["clients"] = c
    return as_of, tables


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(future_changes())
def test_records_at_or_after_T_change_no_feature(case):
    as_of, tables = case
    pd.testing.assert_frame_equal(build_features(tables, as_of), BASE_X[as_of])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_row_order_changes_nothing(seed):
    rng = np.random.default_rng(seed)
    shuffled = {k: v.iloc[rng.permutation(len(v))].reset_index(drop=True) for k, v in BASE.items()}
    pd.testing.assert_frame_equal(build_features(shuffled, "2024-01-01"), BASE_X["2024-01-01"])


def test_leakage_check_is_sensitive_to_the_past():
    """The property above would catch a change: a record one day before T does change features."""
    tables = {k: v.copy() for k, v in BASE.items()}
    extra = frames(clients=(), events=[{"client_id": IDS[10], "start": "2023-12-31", "service": "emergency"}])
    tables["events"] = pd.concat([tables["events"], extra["events"]], ignore_index=True)
    X = build_features(tables, "2024-01-01").set_index("client_id")
    before = BASE_X["2024-01-01"].set_index("client_id")
    if IDS[10] in X.index:
        assert X.loc[IDS[10], "emergency_count_90d"] == before.loc[IDS[10], "emergency_count_90d"] + 1
        assert X.loc[IDS[10], "days_since_last_emergency"] == 1.0
