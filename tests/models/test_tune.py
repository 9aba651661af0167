"""Optuna tuning inside the training date: seeded, within the search space, logged as nested runs."""
import mlflow
import pandas as pd
import pytest

from features.targets.labels import build_training_set
from features.histories.spec import load_spec
from models.train import TrainConfig, train
from models.tune import SEARCH_SPACE, tune

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")


@pytest.fixture(scope="module")
def tables(tables_3000):
    return tables_3000


def test_search_is_seeded_bounded_and_starts_from_the_defaults(tables):
    names = load_spec().column_names()[1:]
    training = build_training_set(tables, ["2023-01-01"], "high_use").reset_index(drop=True)
    config = TrainConfig(target="high_use", n_estimators=200, early_stopping_rounds=20, seed=3)
    X, y, ids = training[names], training["label"].to_numpy(int), training["client_id"]
    a = tune(X, y, ids, config, n_trials=4, seconds=600)
    b = tune(X, y, ids, config, n_trials=4, seconds=600)
    assert len(a.trials) == 4
    pd.testing.assert_frame_equal(a.trials.drop(columns="seconds"), b.trials.drop(columns="seconds"))
    first = a.trials.iloc[0]
    assert all(first[name] == pytest.approx(getattr(config, name)) for name in SEARCH_SPACE)
    for name, (low, high, _, integer) in SEARCH_SPACE.items():
        assert a.trials[name].between(low, high).all(), name
        assert isinstance(a.best_params[name], int) == integer
    assert a.best_auroc == a.trials["auroc"].max() and 0.6 < a.best_auroc <= 1


def test_train_with_tune_uses_the_best_trial_and_logs_nested_runs(tables, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = TrainConfig(target="high_use", n_estimators=200, early_stopping_rounds=20, tune=True, tune_trials=3)
    result = train(tables, config, tracking_uri=uri, experiment="tune-test")
    best = result.tuning.sort_values("auroc", ascending=False).iloc[0]
    assert result.config.num_leaves == int(best["num_leaves"])
    assert result.config.learning_rate == pytest.approx(best["learning_rate"])
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tune-test"])
    children = runs[runs["tags.mlflow.parentRunId"] == result.run_id]
    assert len(children) == 3 and children["metrics.stop_slice_auroc"].notna().all()
