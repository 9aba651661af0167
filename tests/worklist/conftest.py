"""Shared worklist fixtures: one small synthetic county, two risk lists over its residents, a migrated database.

The county (600 residents) and the lists are built once per session; each test that writes gets its own
migrated SQLite file (``db_url``), or shares the session's imported database read-only (``loaded_url``).
"""
import json

import numpy as np
import pandas as pd
import pytest

from features.synth import SynthConfig, generate_county
from list_helpers import LIST_TARGET, load_lists

LIST_DATES = ("2024-01-01", "2025-01-01")
REASONS = {
    "fi": "3 päivystyskäyntiä viimeisen 6 kuukauden aikana (nostaa riskiä) | ikä 81 vuotta (nostaa riskiä) | "
          "diabetes (nostaa riskiä) | 2 osastojaksoa (nostaa riskiä) | HbA1c 71 mmol/mol (nostaa riskiä)",
    "sv": "3 jourbesök under de senaste 6 månaderna (höjer risken) | ålder 81 år (höjer risken) | "
          "diabetes (höjer risken) | 2 vårdperioder (höjer risken) | HbA1c 71 mmol/mol (höjer risken)",
    "en": "3 emergency visits in the last 6 months (raises risk) | age 81 (raises risk) | diabetes (raises risk) "
          "| 2 inpatient stays (raises risk) | HbA1c 71 mmol/mol (raises risk)",
}
SEGMENTS = ("Omatoimiset", "Ohjausta tarvitsevat", "Jatkuvaa yhteistyötä tarvitsevat", "Paljon tukea tarvitsevat")


@pytest.fixture(scope="session")
def wl_county(tmp_path_factory):
    """A 600-resident synthetic county (seed 14) with canonical tables in ``county/``."""
    path = tmp_path_factory.mktemp("wl_county") / "county"
    generate_county(path, SynthConfig(clients=600, seed=14, truth_reps=1, workers=1))
    return path


def risklist_for(clients: pd.DataFrame, as_of: str, seed: int, target: str = LIST_TARGET) -> pd.DataFrame:
    """A valid risk list (models.scoring.RiskList) over ``clients`` alive and resident at ``as_of``; no model.

    Probabilities are random (seeded) and ranked; every fifth client has no reasons (not explained).
    """
    t = pd.Timestamp(as_of)
    alive = clients[(clients["death_date"].isna() | (pd.to_datetime(clients["death_date"]) > t))
                    & (pd.to_datetime(clients["birth_date"]) < t)]
    rng = np.random.default_rng(seed)
    ids = alive["client_id"].to_numpy()
    prob = rng.beta(1.2, 9.0, len(ids))
    order = np.argsort(-prob, kind="stable")
    ids, prob = ids[order], prob[order]
    meta = alive.set_index("client_id").loc[ids]
    n = len(ids)
    explained = np.arange(n) % 5 != 4
    return pd.DataFrame({
        "client_id": ids.astype(str),
        "unit": meta["unit"].astype(str).to_numpy(),
        "municipality": meta["municipality"].astype(str).to_numpy(),
        "probability": prob,
        "rank": np.arange(1, n + 1, dtype=np.int64),
        "percentile": 100.0 * (1.0 - np.arange(n) / n),
        "segment": pd.array([SEGMENTS[i % 4] for i in range(n)], dtype="string"),
        **{f"reasons_{lang}": pd.array(np.where(explained, text, None), dtype="string")
           for lang, text in REASONS.items()},
        "model_name": target,
        "model_version": "1",
        "run_id": "0" * 32,
        "data_digest": "feedfacefeedface",
        "as_of": pd.Timestamp(as_of),
        "intensive_ongoing": rng.random(n) < 0.05,
        "prior_high_use": np.zeros(n, dtype=bool),
        "reason_types": pd.array(np.where(explained, "change|demographic|level|level|level", None), dtype="string"),
    })


@pytest.fixture(scope="session")
def wl_lists(wl_county, tmp_path_factory):
    """Paths of two risk lists of ``rising_high_use`` (2024-01-01, then 2025-01-01), each with its sidecar."""
    clients = pd.read_parquet(wl_county / "clients.parquet")
    folder = tmp_path_factory.mktemp("wl_lists")
    paths = []
    for i, as_of in enumerate(LIST_DATES):
        frame = risklist_for(clients, as_of, seed=i)
        path = folder / f"{LIST_TARGET}_{as_of}.parquet"
        frame.to_parquet(path, index=False)
        sidecar = {"target": LIST_TARGET, "list_kind": "rising", "rows": len(frame), "as_of": as_of,
                   "cohort": {lang: f"cohort text {lang}" for lang in ("fi", "sv", "en")},
                   "purpose": {lang: f"purpose text {lang}" for lang in ("fi", "sv", "en")}}
        (folder / f"{path.name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def db_url(tmp_path):
    """A fresh, migrated SQLite database of this test."""
    from worklist.db import migrate

    url = f"sqlite:///{tmp_path / 'worklist.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def loaded_url(wl_county, wl_lists, tmp_path_factory):
    """A migrated SQLite database (session-wide; treat as read-only) with both lists and the directory imported."""
    from worklist.db import migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('wl_loaded') / 'worklist.db'}"
    migrate(url)
    load_lists(url, wl_lists, wl_county)
    return url
