"""Rising risk: the prior-cost and intensive-episode cohort keys, population-wide thresholds, leakage, flags."""
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract.tables import EPISODE_SERVICES, SERVICE_LINES
from features.histories.build import build_features
from features.targets.labels import (
    TargetError,
    build_labels,
    cohort_members,
    current_use_flags,
    load_targets,
    ongoing_clients,
    prior_cost,
)
from features.targets.spec import Cohort, intensive_services
from history_data import AS_OF, frames, make_county

T = AS_OF


def write(tmp_path, targets, **top):
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"horizon_days": 365, "targets": targets, **top}))
    return path


def members(tables, cohort: Cohort, as_of=T) -> list[str]:
    return sorted(cohort_members(tables, as_of, cohort).index)


# -- declarations -----------------------------------------------------------------

def test_packaged_rising_high_use_declaration():
    t = load_targets()["rising_high_use"]
    assert t.cohort.max_prior_cost_quantile == 0.9 and t.cohort.prior_window_days == 365
    assert t.cohort.exclude_ongoing == intensive_services() == ("housing_24h", "inpatient")
    assert (t.outcome.kind, t.outcome.quantile, t.outcome.population) == ("cost_quantile", 0.9, "all")
    assert load_targets()["high_use"].outcome.population == "cohort"
    assert load_targets()["elderly_low_function"].cohort.exclude_ongoing == ("housing_24h",)


def test_exclude_ongoing_takes_a_service_a_list_or_the_intensive_keyword(tmp_path):
    outcome = {"kind": "cost_quantile", "quantile": 0.9}
    path = write(tmp_path, {
        "a": {"cohort": {"exclude_ongoing": "inpatient"}, "outcome": outcome},
        "b": {"cohort": {"exclude_ongoing": ["inpatient", "housing_24h"]}, "outcome": outcome},
        "c": {"cohort": {"exclude_ongoing": "intensive_services"}, "outcome": outcome},
    }, intensive_services=["housing_24h"])
    t = load_targets(path)
    assert t["a"].cohort.exclude_ongoing == ("inpatient",)
    assert t["b"].cohort.exclude_ongoing == ("inpatient", "housing_24h")
    assert t["c"].cohort.exclude_ongoing == ("housing_24h",) == intensive_services(path)
    # a county file without its own list uses the packaged one
    other = tmp_path / "other"
    other.mkdir()
    assert intensive_services(write(other, {"x": {"outcome": outcome}})) == ("housing_24h", "inpatient")


@pytest.mark.parametrize("cohort,outcome,top,message", [
    ({"max_prior_cost_quantile": 1.0}, {}, {}, "x.cohort.max_prior_cost_quantile: expected a value < 1"),
    ({"max_prior_cost_quantile": 0}, {}, {}, "expected a value > 0"),
    ({"prior_cost_days": 180}, {}, {}, "prior_cost_days is only meaningful with max_prior_cost_quantile"),
    ({"max_prior_cost_quantile": 0.9, "prior_cost_days": 0}, {}, {}, "prior_cost_days: expected a value >= 1"),
    ({"exclude_ongoing": ["sauna"]}, {}, {}, r"exclude_ongoing: \['sauna'\] are not episode services"),
    ({"exclude_ongoing": "emergency"}, {}, {}, "not episode services"),
    ({}, {"population": "county"}, {}, r"x.outcome.population: expected one of \['cohort', 'all'\]"),
    ({}, {"population": "all", "min": 3}, {}, "takes exactly"),
    ({}, {}, {"intensive_services": ["emergency"]}, "intensive_services"),
    ({}, {}, {"intensive_services": []}, "intensive_services"),
])
def test_bad_rising_keys_are_rejected_naming_the_key(tmp_path, cohort, outcome, top, message):
    path = write(tmp_path, {"x": {"cohort": cohort, "outcome": {"kind": "cost_quantile", "quantile": 0.9,
                                                                 **outcome}}}, **top)
    with pytest.raises(TargetError, match=message):
        load_targets(path)


# -- the prior-cost bound at its boundaries ---------------------------------------

def eleven_clients(extra_events=()):
    """c00..c10 with last-year costs 0, 100, ..., 1000 EUR (one emergency visit each, none for c00)."""
    clients = [f"c{i:02d}" for i in range(11)]
    ev = [{"client_id": c, "start": "2023-06-01", "service": "emergency", "cost_eur": 100.0 * i}
          for i, c in enumerate(clients) if i]
    return frames(clients=clients, events=[*ev, *extra_events]), clients


def test_a_client_exactly_at_the_quantile_stays_in_the_cohort():
    tables, clients = eleven_clients()
    # numpy's linear 0.9 quantile of 0, 100, ..., 1000 is exactly 900: c09 is at it, c10 above it
    assert np.quantile(np.arange(11) * 100.0, 0.9) == 900.0
    assert members(tables, Cohort(max_prior_cost_quantile=0.9)) == clients[:10]
    flags = current_use_flags(tables, T).set_index("client_id")
    assert flags["prior_cost_threshold"].iloc[0] == 900.0
    assert flags.index[flags["prior_top"]].tolist() == ["c10"]
    assert flags.loc["c09", "prior_cost"] == 900.0 and not flags.loc["c09", "prior_top"]


def test_prior_window_is_half_open_and_its_length_declared():
    extra = [{"client_id": "c00", "start": "2023-01-01", "service": "emergency", "cost_eur": 5000.0},  # T - 365
             {"client_id": "c01", "start": "2022-12-31", "service": "emergency", "cost_eur": 5000.0},  # T - 366
             {"client_id": "c02", "start": "2024-01-01", "service": "emergency", "cost_eur": 5000.0}]  # at T
    tables, clients = eleven_clients(extra)
    cost = prior_cost(tables, T)
    assert cost["c00"] == 5000.0 and cost["c01"] == 100.0 and cost["c02"] == 200.0
    assert "c00" not in members(tables, Cohort(max_prior_cost_quantile=0.9))
    # a 90-day window holds none of these visits (June 2023 and earlier): everyone is at the quantile, 0
    assert prior_cost(tables, T, 90).eq(0).all()
    assert members(tables, Cohort(max_prior_cost_quantile=0.9, prior_cost_days=90)) == clients


def test_the_quantile_is_over_the_whole_population_not_the_narrowed_cohort():
    tables, clients = eleven_clients()
    births = {c: ("1930-01-01" if c in ("c08", "c09", "c10") else "1990-01-01") for c in clients}
    tables["clients"]["birth_date"] = pd.to_datetime(tables["clients"]["client_id"].map(births)).astype(
        "datetime64[s]")
    # among the three aged 75+ alone the 0.9 quantile would be 980 and keep c09; over everyone it is 900
    assert members(tables, Cohort(min_age=75, max_prior_cost_quantile=0.9)) == ["c08", "c09"]
    assert members(tables, Cohort(min_age=75, max_prior_cost_quantile=0.5)) == []


def test_prior_cost_is_the_feature_cost_total_365d(county):
    X = build_features(county, T).set_index("client_id")["cost_total_365d"]
    cost = prior_cost(county, T)
    assert list(cost.index) == list(X.index)
    np.testing.assert_allclose(cost.to_numpy(), X.to_numpy(), rtol=1e-12, atol=1e-9)
    assert (cost > 0).sum() > 10


def test_a_running_episode_is_costed_up_to_T_minus_1_at_the_unit_rate():
    ev = {"client_id": "a", "start": "2023-12-20", "end": "2024-03-01", "service": "inpatient",
          "professional": "ward.1", "cost_eur": 90_000.0}
    assert prior_cost(frames(clients=["a"], events=[ev]), T)["a"] == 12 * 350.0
    assert prior_cost(frames(clients=["a"], events=[{**ev, "end": None, "cost_eur": None}]), T)["a"] == 12 * 350.0
    done = {**ev, "end": "2023-12-29", "cost_eur": 1000.0}  # finished: its recorded cost, prorated (all inside)
    assert prior_cost(frames(clients=["a"], events=[done]), T)["a"] == 1000.0


# -- the intensive-episode exclusion at its boundaries -----------------------------

@pytest.mark.parametrize("start,end,service,excluded", [
    ("2023-12-01", "2023-12-31", "housing_24h", True),    # ends on T - 1: a monthly row, still in housing
    ("2023-12-01", "2023-12-30", "housing_24h", False),   # ended on T - 2
    ("2023-06-01", None, "housing_24h", True),            # not ended
    ("2024-01-01", "2024-01-31", "housing_24h", False),   # starts on T: not known before T
    ("2023-12-28", "2024-01-04", "inpatient", True),      # in hospital over the new year
    ("2023-12-20", "2023-12-31", "inpatient", True),      # discharged on T - 1
    ("2023-12-20", "2023-12-30", "inpatient", False),     # discharged on T - 2
    ("2023-12-31", None, "home_care", False),             # not an intensive service
])
def test_ongoing_intensive_episode_boundaries(start, end, service, excluded):
    ev = {"client_id": "a", "start": start, "end": end, "service": service, "cost_eur": 100.0}
    tables = frames(clients=["a", "b"], events=[ev])
    assert members(tables, Cohort(exclude_ongoing=intensive_services())) == (["b"] if excluded else ["a", "b"])
    assert ("a" in ongoing_clients(tables["events"], T, intensive_services())) is excluded
    flags = current_use_flags(tables, T).set_index("client_id")
    assert flags.loc["a", "intensive_ongoing"] is np.bool_(excluded)
    assert flags.loc["a", "intensive_services"] == (service if excluded else "")


def test_flags_list_every_running_intensive_service():
    ev = [{"client_id": "a", "start": "2023-06-01", "service": "housing_24h"},
          {"client_id": "a", "start": "2023-12-30", "end": "2024-01-02", "service": "inpatient"}]
    flags = current_use_flags(frames(clients=["a"], events=ev), T)
    assert flags.loc[0, "intensive_services"] == "housing_24h;inpatient"


# -- the outcome over the whole population -----------------------------------------

def test_rising_high_use_threshold_is_the_whole_populations_and_equals_high_use():
    clients = [f"c{i:02d}" for i in range(20)]
    ev = [{"client_id": c, "start": "2024-03-01", "service": "emergency", "cost_eur": 100.0 * (i + 1)}
          for i, c in enumerate(clients)]  # next year: 100, 200, ..., 2000 EUR
    ev += [{"client_id": c, "start": "2023-03-01", "service": "specialist_outpatient", "cost_eur": cost}
           for c, cost in (("c17", 10_000.0), ("c18", 20_000.0), ("c19", 30_000.0))]
    ev.append({"client_id": "c00", "start": "2023-06-01", "end": None, "service": "housing_24h"})
    tables = frames(clients=clients, events=ev)
    prior = prior_cost(tables, T)
    assert prior["c00"] == 214 * 160.0  # 1 June - 31 December at the unit rate: running at T
    # last year's 0.9 quantile: 16 zeros, 10,000, 20,000, 30,000, 34,240 -> 20,000 + 0.1 x 10,000 = 21,000
    rising = build_labels(tables, T, "rising_high_use").set_index("client_id")
    high = build_labels(tables, T, "high_use").set_index("client_id")
    assert list(rising.index) == clients[1:19]  # not c00 (housing, and above), not c19 (above 21,000)
    # next year's threshold over all 20: 1,800 + 0.1 x 100 = 1,810, the same as high_use's
    assert rising["threshold"].iloc[0] == high["threshold"].iloc[0] == pytest.approx(1810.0)
    assert rising.index[rising["label"] == 1].tolist() == ["c18"]
    # over the cohort alone the threshold would be 1,730 and c17 would be positive too
    assert np.quantile(rising["horizon_cost"], 0.9) == pytest.approx(1730.0)


def test_population_all_labels_against_clients_outside_the_cohort(tmp_path):
    clients = [f"c{i:02d}" for i in range(10)]
    ev = [{"client_id": c, "start": "2024-02-01", "service": "emergency", "cost_eur": 100.0 * (i + 1)}
          for i, c in enumerate(clients)]
    ev += [{"client_id": c, "start": "2024-02-01", "end": "2024-02-10", "service": "inpatient",
            "cost_eur": 50_000.0} for c in clients[:5]]
    tables = frames(clients=clients, events=ev)
    births = {c: ("2020-01-01" if i < 5 else "1950-01-01") for i, c in enumerate(clients)}
    tables["clients"]["birth_date"] = pd.to_datetime(tables["clients"]["client_id"].map(births)).astype(
        "datetime64[s]")
    cohort = {"min_age": 60}
    path = write(tmp_path, {
        "mine": {"cohort": cohort, "outcome": {"kind": "cost_quantile", "quantile": 0.5}},
        "all": {"cohort": cohort, "outcome": {"kind": "cost_quantile", "quantile": 0.5, "population": "all"}},
        "nested": {"cohort": cohort, "outcome": {"kind": "any_of", "of": [
            {"kind": "cost_quantile", "quantile": 0.5, "population": "all"}]}}})
    mine = build_labels(tables, T, "mine", targets=path)
    everyone = build_labels(tables, T, "all", targets=path)
    nested = build_labels(tables, T, "nested", targets=path)
    assert mine["client_id"].tolist() == everyone["client_id"].tolist() == clients[5:]
    assert mine["threshold"].iloc[0] == 800.0 and mine["label"].tolist() == [0, 0, 0, 1, 1]
    # the population's median lies between 1,000 (c09) and 50,100 (c00): nobody in the cohort is above it
    assert everyone["threshold"].iloc[0] == (1000.0 + 50_100.0) / 2 and everyone["label"].sum() == 0
    pd.testing.assert_frame_equal(nested.drop(columns="target"), everyone.drop(columns="target"))


# -- leakage: nothing at or after T moves a client in or out of the cohort ----------

BASE = make_county(60, seed=4)
RISING = load_targets()["rising_high_use"]
BASE_COHORT = {t: members(BASE, RISING.cohort, t) for t in ("2023-06-01", "2024-01-01")}
IDS = BASE["clients"]["client_id"].tolist()


@st.composite
def future_changes(draw):
    """Tables where events at or after T were added, removed or changed, and running episodes' ends and costs."""
    as_of = draw(st.sampled_from(sorted(BASE_COHORT)))
    t = pd.Timestamp(as_of)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tables = {k: v.copy() for k, v in BASE.items()}
    f = tables["events"]
    future = (f["start"] >= t).to_numpy()
    f = f.loc[~(future & (rng.random(len(f)) < draw(st.floats(0, 1))))].copy()
    future = (f["start"] >= t).to_numpy()
    f.loc[future, "cost_eur"] = rng.gamma(2, 5000, future.sum())
    f.loc[future, "service"] = rng.choice(list(SERVICE_LINES), future.sum())
    running = (f["service"].isin(EPISODE_SERVICES) & (f["start"] < t) & (f["end"].isna() | (f["end"] >= t))).to_numpy()
    ends = pd.Series(t + pd.to_timedelta(rng.integers(0, 400, running.sum()), unit="D")).astype("datetime64[s]")
    ends[rng.random(running.sum()) < 0.3] = pd.NaT
    f.loc[running, "end"] = ends.to_numpy()
    f.loc[running, "cost_eur"] = rng.gamma(2, 50_000, running.sum())
    new = draw(st.lists(st.fixed_dictionaries({
        "client_id": st.sampled_from(IDS), "days": st.integers(0, 800), "service": st.sampled_from(SERVICE_LINES),
        "cost_eur": st.one_of(st.none(), st.floats(0, 500_000)), "length": st.integers(0, 60)}), max_size=10))
    rows = [{"client_id": e["client_id"], "start": t + pd.Timedelta(days=e["days"]),
             "end": t + pd.Timedelta(days=e["days"] + e["length"]), "service": e["service"],
             "cost_eur": e["cost_eur"]} for e in new]
    tables["events"] = pd.concat([f, frames(clients=(), events=rows)["events"]], ignore_index=True)
    c = tables["clients"].copy()
    c.loc[(c["death_date"] >= t).to_numpy(), "death_date"] = pd.NaT  # dying after T is not known at T
    tables["clients"] = c
    return as_of, tables


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(future_changes())
def test_records_at_or_after_T_change_no_rising_cohort_membership(case):
    as_of, tables = case
    assert members(tables, RISING.cohort, as_of) == BASE_COHORT[as_of]
    assert build_labels(tables, as_of, RISING)["client_id"].tolist() == BASE_COHORT[as_of]


def test_the_leakage_check_is_sensitive_to_the_past():
    """A large cost one day before T does move a client out of the cohort (the property above can fail)."""
    who = BASE_COHORT["2024-01-01"][0]
    extra = frames(clients=(), events=[{"client_id": who, "start": "2023-12-31", "service": "emergency",
                                        "cost_eur": 1e6}])
    tables = {**BASE, "events": pd.concat([BASE["events"], extra["events"]], ignore_index=True)}
    assert who not in members(tables, RISING.cohort)
    running = frames(clients=(), events=[{"client_id": BASE_COHORT["2024-01-01"][1], "start": "2023-12-31",
                                          "end": None, "service": "housing_24h", "cost_eur": 1.0}])
    tables = {**BASE, "events": pd.concat([BASE["events"], running["events"]], ignore_index=True)}
    assert BASE_COHORT["2024-01-01"][1] not in members(tables, RISING.cohort)
