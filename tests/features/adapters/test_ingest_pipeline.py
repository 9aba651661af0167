"""The pipeline on ingested fixtures: features, labels and segments; and what training does on 59 patients.

Index date T = 2021-01-01 lies inside both fixtures' data (Synthea to 2022-02-27,
OMOP to 2022-10-10), so the 12-month high_use horizon is fully observed.
"""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.adapters import ingest_omop, ingest_synthea
from features.histories.build import build_features
from features.targets.labels import build_labels
from features.contract.load import load_tables
from segmentation.segments import horizon_cost, segment_clients

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
T = pd.Timestamp("2021-01-01")
TZ = "America/Los_Angeles"
pytestmark = pytest.mark.skipif(not (FIXTURES / "synthea" / "patients.csv").exists()
                                or not (FIXTURES / "omop" / "PERSON.csv").exists(),
                                reason=f"fixtures not found at {FIXTURES} (clone the repo next to shared/)")


def csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def alive_at(birth: pd.Series, death: pd.Series) -> pd.Series:
    birth, death = pd.to_datetime(birth), pd.to_datetime(death)
    return (birth < T) & (death.isna() | (death >= T))


@pytest.fixture(scope="module")
def synthea(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "synthea"
    ingest_synthea(FIXTURES / "synthea", timezone=TZ).write(out)
    return load_tables(out)


@pytest.fixture(scope="module")
def omop(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "omop"
    ingest_omop(FIXTURES / "omop").write(out)
    return load_tables(out)


def test_synthea_features_cover_the_population_at_t(synthea):
    patients = csv(FIXTURES / "synthea" / "patients.csv")
    X = build_features(synthea, T)
    assert len(X) == int(alive_at(patients["BIRTHDATE"], patients["DEATHDATE"]).sum()) == 50
    # Hypertension (SNOMED 59621000 -> I10) recorded before T, among those clients.
    cond = csv(FIXTURES / "synthea" / "conditions.csv")
    ids = dict(zip(patients["Id"], synthea.tables["clients"].sort_values("source_row")["client_id"]))
    before = cond[(cond["CODE"] == "59621000") & (pd.to_datetime(cond["START"]) < T)]
    expected = set(before["PATIENT"].map(ids)) & set(X["client_id"])
    assert set(X.loc[X["dx_hypertension"] == 1, "client_id"]) == expected and len(expected) == 12
    assert X["hba1c_last"].dropna().between(35, 50).all()  # converted to mmol/mol (fixture: 5.7-6.4 %)


def test_synthea_high_use_labels_match_the_claims(synthea):
    y = build_labels(synthea, T, "high_use")
    assert len(y) == 50
    assert y["label"].sum() == (y["horizon_cost"] > np.quantile(y["horizon_cost"], 0.9)).sum() == 5
    # Horizon cost, recomputed from encounters.csv: claims of the year after T in local days, in EUR.
    enc = csv(FIXTURES / "synthea" / "encounters.csv")
    day = pd.to_datetime(enc["START"], utc=True).dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    in_h = (day >= T) & (day < T + pd.Timedelta(days=365)) & (enc["CODE"] != "308646001")
    ids = dict(zip(csv(FIXTURES / "synthea" / "patients.csv")["Id"],
                   synthea.tables["clients"].sort_values("source_row")["client_id"]))
    claims = enc[in_h].assign(cid=enc["PATIENT"].map(ids)).query("cid in @y.client_id")
    assert y["horizon_cost"].sum() == pytest.approx(0.92 * claims["TOTAL_CLAIM_COST"].astype(float).sum())


def test_synthea_segments_every_client(synthea):
    X = build_features(synthea, T)
    cost = horizon_cost(synthea.tables["events"], X["client_id"], T)
    for method in ("grid", "kmeans"):
        with warnings.catch_warnings():  # k-means on 50 clients warns about tiny clusters
            warnings.simplefilter("ignore")
            seg = segment_clients(X, method=method, next_year_cost=cost)
        assert len(seg.assignments) == 50 and seg.assignments["segment_name"].notna().all()
        assert seg.profiles["clients"].sum() == 50


def test_omop_features_labels_and_segments(omop):
    person, death = csv(FIXTURES / "omop" / "PERSON.csv"), csv(FIXTURES / "omop" / "DEATH.csv")
    died = person["person_id"].map(death.set_index("person_id")["death_date"])
    X = build_features(omop, T)
    assert len(X) == int(alive_at(person["birth_datetime"].str.slice(0, 10), died).sum()) == 24
    y = build_labels(omop, T, "high_use")
    assert len(y) == 24 and y["label"].sum() == (y["horizon_cost"] > y["threshold"]).sum() == 3
    # Costs are DOMAIN.md unit costs (COST is empty): a primary-care visit is EUR 100.
    assert (y["horizon_cost"] % 100 == 0).all()
    seg = segment_clients(X, method="grid", next_year_cost=horizon_cost(omop.tables["events"], X["client_id"], T))
    assert len(seg.assignments) == 24


def test_training_on_59_patients_stops_with_an_honest_message(synthea):
    """LightGBM needs >= 2 positives in each held-out slice; 5 positives among 51 clients are too few."""
    from models.train import TrainConfig, train

    config = TrainConfig(target="high_use", train_as_of="2020-02-01", valid_as_of="2021-02-01")
    with pytest.raises(ValueError, match=r"too few positive outcomes .* \(5 in 51 cohort members\)"):
        train(synthea, config, log=False)


@pytest.mark.slow
def test_a_model_trained_on_the_synthetic_county_scores_ingested_clients(synthea, tmp_path):
    """Scoring works on ingested data; the metric on 50 US patients is noise and is not asserted."""
    from features.synth import SynthConfig, generate_county
    from models.scoring import ModelRef, RiskList, score_features
    from models.train import TrainConfig, train

    generate_county(tmp_path / "county", SynthConfig(clients=1500, seed=41, truth_reps=1, workers=1))
    model = train(load_tables(tmp_path / "county"), TrainConfig(target="high_use", n_estimators=60,
                  early_stopping_rounds=20, shap_sample=300, min_child_samples=20), log=False).model
    X = build_features(synthea, T)
    risk = score_features(ModelRef("memory", "high_use", "", "", None, model), X, T)
    RiskList.validate(risk)
    assert len(risk) == 50 and set(risk["unit"]) <= set(synthea.tables["clients"]["unit"])
    assert risk["reasons_en"].str.len().gt(0).all()
