"""Training at scale: sampled training rows (outcome share kept, seeded), and the lazy data path of scoring.

Scoring, list evaluation and training given a data folder read it through a
validated dataset (DuckDB over Parquet, only the windows a step needs in
pandas); their results must equal those from the tables in pandas.
"""
import mlflow
import numpy as np
import pandas as pd
import pytest

from features.contract.stream import open_dataset
from models.train import TrainConfig, sample_training_rows, train


def _training(n: int, positives_every: int = 7) -> pd.DataFrame:
    ids = [f"k{i:05d}" for i in range(n)]
    return pd.DataFrame({"client_id": ids, "x": np.arange(n, dtype=float),
                         "label": (np.arange(n) % positives_every == 0).astype(int)})


def test_sampling_keeps_the_outcome_share_and_the_order():
    full = _training(10_000)
    sample = sample_training_rows(full, 2_500, seed=3)
    assert len(sample) == 2_500 and sample["client_id"].is_unique
    share, kept = full["label"].mean(), sample["label"].mean()
    assert abs(kept - share) < 1 / 2_500 + 1e-12  # within one row of the cohort's share
    assert sample["label"].sum() == int(np.ceil(full["label"].sum() * 2_500 / 10_000))
    assert sample["client_id"].is_monotonic_increasing  # the cohort's order kept
    assert list(sample.index) == list(range(2_500))


def test_sampling_is_seeded_and_only_when_over_the_maximum():
    full = _training(5_000)
    a, b = sample_training_rows(full, 1_000, seed=1), sample_training_rows(full, 1_000, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a["client_id"].equals(sample_training_rows(full, 1_000, seed=2)["client_id"])
    assert sample_training_rows(full, 5_000, seed=1) is full
    assert sample_training_rows(full, None, seed=1) is full


def test_a_rare_outcome_keeps_its_positives_rounded_up():
    full = _training(3_001, positives_every=1_000)  # 4 positives
    sample = sample_training_rows(full, 1_000, seed=0)
    assert len(sample) == 1_000 and sample["label"].sum() == 2  # ceil(4 * 1000 / 3001)


def test_training_records_rows_available_and_used(trained_3000):
    """Under the maximum nothing is sampled, and the run's params say so."""
    rows = trained_3000.result.rows
    assert rows["available"] == rows["used"] > 0
    mlflow.set_tracking_uri(trained_3000.uri)
    params = mlflow.get_run(trained_3000.result.run_id).data.params
    assert params["train_rows_available"] == params["train_rows_used"] == str(rows["used"])
    assert params["max_train_rows"] == "300000"


def test_training_over_the_maximum_fits_on_a_sample(tables_3000):
    config = TrainConfig(target="high_use", max_train_rows=1_500, n_estimators=60)
    result = train(tables_3000, config, log=False)
    assert result.rows["used"] == 1_500 < result.rows["available"]
    auroc = float(result.metrics.set_index("model").loc["lightgbm", "auroc"])
    assert auroc > 0.75  # still a model: judged on every validation client
    # the same model as one fitted on the whole training date's table sampled afterwards (the old path), though
    # train built features for the sampled clients only
    from features.histories.dictionary import feature_dictionary
    from features.histories.spec import load_spec
    from features.targets.labels import build_training_set
    from models.train import _spec_text, fit_model

    spec = load_spec(None)
    whole = build_training_set(tables_3000, [config.train_as_of], "high_use", spec=spec)
    old = fit_model(sample_training_rows(whole, 1_500, config.seed), config, spec, _spec_text(None),
                    feature_dictionary(spec))
    assert old.estimator.best_iteration_ == result.model.estimator.best_iteration_
    np.testing.assert_array_equal(old.predict_proba(whole)[:, 1], result.model.predict_proba(whole)[:, 1])


def test_scoring_a_folder_equals_scoring_the_tables(trained_3000, tmp_path):
    from models.scoring import score

    eager, lazy = tmp_path / "eager.parquet", tmp_path / "lazy.parquet"
    a = score("models:/high_use@champion", trained_3000.tables, "2025-01-01", eager, tracking_uri=trained_3000.uri,
              explain_share=0.2)
    b = score("models:/high_use@champion", trained_3000.data, "2025-01-01", lazy, tracking_uri=trained_3000.uri,
              explain_share=0.2)
    pd.testing.assert_frame_equal(pd.read_parquet(lazy), pd.read_parquet(eager))
    assert a["sha256"] == b["sha256"] and a["top"] == b["top"]


def test_evaluating_a_list_on_a_dataset_equals_the_tables(trained_3000, tmp_path):
    from models.evaluate_list import evaluate_list
    from models.scoring import score

    path = tmp_path / "list.parquet"
    score("models:/high_use@champion", trained_3000.tables, "2024-01-01", path, tracking_uri=trained_3000.uri,
          reasons=0)
    eager = evaluate_list(path, trained_3000.tables, tracking_uri=trained_3000.uri, log=False)
    with open_dataset(trained_3000.data) as dataset:
        lazy = evaluate_list(path, dataset, tracking_uri=trained_3000.uri, log=False)
    assert lazy.basis == eager.basis == "realised"
    pd.testing.assert_frame_equal(lazy.table, eager.table)


@pytest.mark.slow
def test_training_on_a_folder_equals_training_on_the_tables(county_3000, tables_3000):
    """The whole training path over the dataset gives the same model figures as over the tables in pandas."""
    config = TrainConfig(target="rising_high_use", n_estimators=80)
    eager = train(tables_3000, config, log=False, truth=county_3000 / "truth.parquet")  # the folder's oracle too
    lazy = train(county_3000, config, log=False)
    pd.testing.assert_frame_equal(lazy.metrics, eager.metrics)
    assert lazy.top == eager.top and lazy.rows == eager.rows
