"""ServiceNeedClassifier on a small synthetic table: client-disjoint slices, categoricals, refusals."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from models.estimator import ServiceNeedClassifier, TooFewOutcomesError, client_split


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(11)
    n = 3000
    ids = np.repeat([f"c{i:05d}" for i in range(n // 2)], 2)  # two rows per client (two index dates)
    unit = rng.choice(["north", "south", "east"], n)
    cost = rng.gamma(1.0, 1000.0, n)
    cost[rng.random(n) < 0.1] = np.nan  # missing values go to LightGBM as they are
    logit = -2.5 + 1.2 * (unit == "north") + 0.0008 * np.nan_to_num(cost)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"unit": pd.array(unit, dtype="string"), "cost": cost, "age": rng.integers(0, 100, n)})
    return X, y, ids


def test_split_keeps_every_client_in_one_slice_and_follows_the_holdout(table):
    _, _, ids = table
    s = client_split(ids, 0.3, seed=0)
    assert (s.fit.astype(int) + s.stop + s.calibration == 1).all()
    per_client = pd.DataFrame({"id": ids, "slice": np.select([s.fit, s.stop], ["fit", "stop"], "cal")})
    assert (per_client.groupby("id")["slice"].nunique() == 1).all()
    assert s.fit.mean() == pytest.approx(0.7, abs=0.04) and s.stop.mean() == pytest.approx(0.15, abs=0.03)
    assert not np.array_equal(client_split(ids, 0.3, seed=1).fit, s.fit)  # the seed moves clients


def test_fit_learns_the_documented_attributes_and_predicts_two_columns(table):
    X, y, ids = table
    model = ServiceNeedClassifier(n_estimators=200, early_stopping_rounds=20).fit(X, y, groups=ids)
    assert list(model.feature_names_in_) == ["unit", "cost", "age"] and model.n_features_in_ == 3
    assert model.categories_ == {"unit": ["east", "north", "south"]} and model.classes_.tolist() == [0, 1]
    assert 1 <= model.best_iteration_ <= 200 and model.booster_.num_trees() >= model.best_iteration_
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y, proba[:, 1]) > 0.7
    assert set(model.predict(X)) <= {0, 1}
    unseen = X.head(5).assign(unit=pd.array(["west"] * 5, dtype="string"))  # an unseen level reads as missing
    assert np.isfinite(model.predict_proba(unseen)).all()
    again = clone(model).fit(X, y, groups=ids)
    np.testing.assert_array_equal(again.predict_proba(X), proba)  # deterministic


def test_the_thread_count_does_not_change_the_model(table):
    # n_jobs defaults to OpenMP's count, which differs between machines: the trees must not depend on it
    X, y, ids = table
    probas = [ServiceNeedClassifier(n_estimators=150, early_stopping_rounds=20, n_jobs=n).fit(X, y, groups=ids)
              .predict_proba(X) for n in (1, 2, 3)]
    np.testing.assert_array_equal(probas[0], probas[1])
    np.testing.assert_array_equal(probas[0], probas[2])


def test_refusals_name_the_problem(table):
    X, y, ids = table
    with pytest.raises(TooFewOutcomesError, match="slice has"):
        ServiceNeedClassifier().fit(X.head(40), np.r_[1, 1, np.zeros(38, int)], groups=ids[:40])
    with pytest.raises(ValueError, match="Only binary"):
        ServiceNeedClassifier().fit(X, np.arange(len(X)) % 3, groups=ids)
    model = ServiceNeedClassifier(n_estimators=50, early_stopping_rounds=5).fit(X, y, groups=ids)
    with pytest.raises(ValueError, match="infinity"):
        model.predict_proba(X.head(3).assign(cost=np.inf))
    with pytest.raises(ValueError, match="feature names"):
        model.predict_proba(X[["cost", "unit", "age"]])
