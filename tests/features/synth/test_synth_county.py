import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract.codes import code_in_ranges
from features.contract.tables import SERVICE_LINES, TABLES
from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county
from features.synth.realism import REFERENCE, realism_report


def _digests(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob("*.parquet"))}


def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path):
    cfg = SynthConfig(clients=600, seed=5, truth_reps=2, chunk_size=300, workers=1)
    generate_county(tmp_path / "a", cfg)
    generate_county(tmp_path / "b", SynthConfig(**{**cfg.__dict__, "workers": 2}))
    generate_county(tmp_path / "c", SynthConfig(**{**cfg.__dict__, "seed": 6}))
    a, b, c = _digests(tmp_path / "a"), _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert set(a) == {f"{t}.parquet" for t in TABLES} | {"truth.parquet"}
    assert a == b
    assert a["events.parquet"] != c["events.parquet"]


def test_truth_replicates_do_not_change_the_recorded_data(tmp_path):
    generate_county(tmp_path / "a", SynthConfig(clients=300, seed=5, truth_reps=2, workers=1))
    generate_county(tmp_path / "b", SynthConfig(clients=300, seed=5, truth_reps=3, workers=1))
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "truth.parquet"} == {k: v for k, v in b.items() if k != "truth.parquet"}


def test_clean_county_passes_strict_validation(small_county, small_tables):
    _, manifest = small_county
    assert manifest["rows"]["clients"] == len(small_tables["clients"]) > 6_000  # births and people moving in
    assert set(small_tables["events"]["service"].unique()) == set(SERVICE_LINES)
    assert small_tables["clients"]["language"].value_counts(normalize=True)["sv"] < 0.03
    assert set(small_tables["clients"]["municipality"].unique()) == {
        "Hyvinkää", "Järvenpää", "Tuusula", "Nurmijärvi", "Mäntsälä", "Pornainen"}
    # Some costs are left missing on purpose and filled from the unit-cost table when read.
    assert 0.01 < small_tables["events"]["cost_imputed"].mean() < 0.03


def test_realism_figures_within_reference_ranges(small_tables):
    report = realism_report(small_tables, [2021, 2022, 2023, 2024])
    checked = report[report["figure"].isin(list(REFERENCE))]
    outside = checked[~checked["within"].astype(bool)]
    assert outside.empty, outside.to_string()
    assert set(checked["figure"]) == set(REFERENCE)


def test_truth_is_long_form_with_probabilities_per_cohort(small_county):
    path, manifest = small_county
    truth = pd.read_parquet(path / "truth.parquet")
    assert {"client_id", "as_of", "target", "probability", "archetype"} <= set(truth.columns)
    assert manifest["truth_index_dates"] == [f"{y}-01-01" for y in range(2020, 2026)]
    assert truth["probability"].between(0, 1).all()
    assert not truth.duplicated(["client_id", "as_of", "target"]).any()
    hu = truth[truth["target"] == "high_use"]
    per_date = hu.groupby("as_of")["probability"].mean()
    assert per_date.between(0.07, 0.13).all(), per_date  # a top-decile outcome has base rate ~10 %


def test_truth_cohorts_follow_what_is_recorded_before_the_index_date(small_county, small_tables):
    path, _ = small_county
    truth = pd.read_parquet(path / "truth.parquet")
    as_of = pd.Timestamp("2023-01-01")
    t = truth[truth["as_of"] == as_of]
    dg = small_tables["diagnoses"]
    diab_ids = set(dg.loc[(dg["date"] < as_of) & code_in_ranges(dg["code"], [("E10", "E14"), ("T89", "T90")]),
                          "client_id"])
    pop = set(t.loc[t["target"] == "high_use", "client_id"])
    assert set(t.loc[t["target"] == "diabetes_high_use", "client_id"]) == diab_ids & pop
    clients = small_tables["clients"].set_index("client_id")
    eld = t.loc[t["target"] == "elderly_low_function", "client_id"]
    age = (as_of - clients.loc[eld, "birth_date"]).dt.days / 365.25
    assert (age >= 74.99).all()
    ya = t.loc[t["target"] == "young_adult_mhsu", "client_id"]
    ev = small_tables["events"]
    mh = ev[(ev["service"] == "mental_health_substance") & (ev["start"] < as_of)
            & (ev["start"] >= as_of - pd.Timedelta(days=365))]
    assert set(ya) <= set(mh["client_id"])


def test_true_probabilities_rank_and_calibrate_the_realised_outcome(small_county, small_tables):
    path, _ = small_county
    truth = pd.read_parquet(path / "truth.parquet")
    as_of = pd.Timestamp("2022-01-01")
    hu = truth[(truth["as_of"] == as_of) & (truth["target"] == "high_use")].set_index("client_id")
    ev = small_tables["events"]
    horizon = ev[(ev["start"] >= as_of) & (ev["start"] < as_of + pd.Timedelta(days=365))]
    cost = horizon.groupby("client_id", observed=True)["cost_eur"].sum().reindex(hu.index, fill_value=0.0)
    label = (cost > cost.quantile(0.9)).astype(int)
    auc = roc_auc_score(label, hu["probability"])
    assert 0.75 < auc < 0.97, auc  # informative, and not a copy of the future
    assert abs(hu["probability"].mean() - label.mean()) < 0.02


def test_dirty_county_faults_are_each_caught_and_quarantine_loses_nothing(tmp_path):
    manifest = generate_county(tmp_path / "d", SynthConfig(clients=1_500, seed=2, truth_reps=1, workers=1, dirty=True))
    injected = manifest["faults_injected"]
    assert all(n > 0 for k, n in injected.items() if k != "assessments.out_of_scale")
    result = load_tables(tmp_path / "d", lenient=True, quarantine_dir=tmp_path / "q")
    report = result.report
    for table in TABLES:
        assert report.rows_kept[table] + len(result.quarantine[table]) == report.rows_in[table]
    rules = {(p.table, p.column) for p in report.problems}
    expected = {
        "events.duplicate_row": ("events", "(all)"), "events.unknown_client": ("events", "client_id"),
        "events.negative_cost": ("events", "cost_eur"), "events.before_birth": ("events", "start"),
        "events.end_before_start": ("events", "end"), "events.unknown_service": ("events", "service"),
        "diagnoses.malformed_code": ("diagnoses", "code"), "diagnoses.unknown_system": ("diagnoses", "system"),
        "diagnoses.unknown_client": ("diagnoses", "client_id"), "measurements.out_of_range": ("measurements", "value"),
        "clients.duplicate_id": ("clients", "client_id"), "clients.bad_sex": ("clients", "sex"),
    }
    for fault, where in expected.items():
        if injected[fault]:
            assert where in rules, fault
    by_table = {t: sum(n for k, n in injected.items() if k.startswith(t + ".")) for t in TABLES}
    for table in TABLES:
        assert len(result.quarantine[table]) >= by_table[table], table
    assert len(result.quarantine["clients"]) == by_table["clients"]
    # The clean remainder passes strict validation.
    from features.contract.load import write_tables

    write_tables(result.tables, tmp_path / "clean")
    assert load_tables(tmp_path / "clean").report.ok


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="first day"):
        generate_county(tmp_path / "x", SynthConfig(clients=10, start="2019-01-05"))
    with pytest.raises(ValueError, match="county preset"):
        generate_county(tmp_path / "x", SynthConfig(clients=10, county="atlantis"))
    assert not (tmp_path / "x").exists()


def test_ita_uusimaa_preset_has_a_large_swedish_minority(tmp_path):
    generate_county(tmp_path / "iu", SynthConfig(clients=800, seed=1, truth_reps=1, workers=1, county="ita-uusimaa"))
    clients = pd.read_parquet(tmp_path / "iu" / "clients.parquet")
    share = (clients["language"] == "sv").mean()
    assert 0.2 < share < 0.4
    assert np.isin(clients["municipality"].unique(), ["Porvoo", "Sipoo", "Loviisa", "Askola", "Pukkila",
                                                      "Myrskylä", "Lapinjärvi"]).all()


@pytest.mark.parametrize("target", ["high_use", "diabetes_high_use", "elderly_low_function", "young_adult_mhsu",
                                    "rising_high_use"])
def test_truth_cohorts_are_exactly_the_label_cohorts(small_county, small_tables, target):
    from features.targets.labels import build_labels

    path, _ = small_county
    truth = pd.read_parquet(path / "truth.parquet")
    for as_of in ("2021-01-01", "2024-01-01"):
        labels = build_labels(small_tables, as_of, target, validate=False)
        t = truth[(truth["target"] == target) & (truth["as_of"] == pd.Timestamp(as_of))]
        assert set(labels["client_id"]) == set(t["client_id"]), (target, as_of)


def test_rising_high_use_truth_excludes_heavy_users_and_its_oracle_is_informative(small_county, small_tables):
    from features.targets.labels import build_labels, current_use_flags

    path, manifest = small_county
    truth = pd.read_parquet(path / "truth.parquet")
    as_of = "2023-01-01"
    t = truth[truth["as_of"] == pd.Timestamp(as_of)]
    rising = t[t["target"] == "rising_high_use"].set_index("client_id")
    high = t[t["target"] == "high_use"].set_index("client_id")
    # the same futures as high_use: a rising client's probability is their high_use probability
    np.testing.assert_allclose(rising["probability"], high.loc[rising.index, "probability"])
    flags = current_use_flags(small_tables, as_of, validate=False).set_index("client_id")
    assert not (flags.loc[rising.index, "prior_top"] | flags.loc[rising.index, "intensive_ongoing"]).any()
    excluded = flags.index.difference(rising.index)
    assert (flags.loc[excluded, "prior_top"] | flags.loc[excluded, "intensive_ongoing"]).all()
    assert manifest["truth_realism"][as_of]["prior_cost_threshold_eur"] == round(
        flags["prior_cost_threshold"].iloc[0], 0)
    labels = build_labels(small_tables, as_of, "rising_high_use", validate=False).set_index("client_id")
    joined = labels.join(rising["probability"], how="inner")
    assert len(joined) == len(labels) == len(rising)
    auc = roc_auc_score(joined["label"], joined["probability"])
    assert 0.65 < auc < 0.95, auc  # new heavy use is harder to foresee than persistent heavy use
    assert 0.02 < joined["label"].mean() < 0.09  # most of next year's top decile were already heavy users
    assert abs(joined["probability"].mean() - joined["label"].mean()) < 0.02
