import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segmentation.cluster import Segmenter
from segmentation.preprocess import UseProfileTransformer


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=2400, centers=5, n_features=5, cluster_std=0.8, random_state=3)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]), y


def _pre():
    return UseProfileTransformer(patterns=(r"^f\d$",))


@pytest.mark.parametrize("method", ["kmeans", "gmm", "hdbscan"])
def test_auto_k_recovers_known_clusters(blobs, method):
    X, y = blobs
    seg = Segmenter(method=method, k="auto", k_range=(2, 9), preprocess=_pre(), n_bootstrap=2,
                    select="silhouette").fit(X)
    assert seg.k_ == 5
    assert adjusted_rand_score(y, seg.labels_) > 0.95
    assert seg.stability_ > 0.9 and len(seg.stability_scores_) == 2
    np.testing.assert_array_equal(seg.predict(X), seg.labels_)


def test_k_choice_can_be_read_back(blobs):
    X, _ = blobs
    km = Segmenter(method="kmeans", k_range=(2, 8), preprocess=_pre(), n_bootstrap=0, select="silhouette").fit(X)
    assert list(km.scores_["k"]) == list(range(2, 9))
    assert km.scores_.loc[km.scores_["silhouette"].idxmax(), "k"] == km.k_
    gm = Segmenter(method="gmm", k_range=(2, 8), preprocess=_pre(), n_bootstrap=0, select="silhouette").fit(X)
    assert gm.scores_.loc[gm.scores_["bic"].idxmin(), "k"] == gm.k_


def test_segments_are_ordered_by_size_and_seeded(blobs):
    X, _ = blobs
    a = Segmenter(k=4, preprocess=_pre(), n_bootstrap=0, random_state=7).fit(X)
    b = clone(a).fit(X)
    sizes = np.bincount(a.labels_)
    assert (np.diff(sizes) <= 0).all()
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert "random_state" in a.get_params()


def test_structureless_data_is_unstable():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1500, 4)), columns=[f"f{i}" for i in range(4)])
    seg = Segmenter(k=6, preprocess=_pre(), n_bootstrap=4).fit(X)
    assert seg.stability_ < 0.9  # bootstrap refits disagree when there is nothing to find


def test_heavy_tailed_use_is_log_scaled_and_missing_kept_visible():
    X = pd.DataFrame({"emergency_count_365d": [0, 0, 1, 200], "rai_maple_last": [np.nan, 2.0, 3.0, np.nan],
                      "age": [20, 40, 60, 80]})
    pre = UseProfileTransformer().fit(X)
    Z = pre.transform(X)
    names = list(pre.get_feature_names_out())
    assert names == ["emergency_count_365d", "rai_maple_last", "age", "missing_rai_maple_last"]
    col = names.index("emergency_count_365d")
    # log1p: the 200-contact client is far but not 200x as far
    assert Z[3, col] / Z[2, col] < 10
    assert Z[:, names.index("missing_rai_maple_last")].tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="lacks profile columns"):
        pre.transform(X.drop(columns=["age"]))


def test_unknown_method_is_an_error(blobs):
    with pytest.raises(ValueError, match="method must be one of"):
        Segmenter(method="spectral", k=3, preprocess=_pre()).fit(blobs[0])


def test_eta_squared_and_cost_bands_by_hand():
    from segmentation.cluster import cost_bands, eta_squared

    # groups {0: [1, 3], 1: [10, 14]}: mean 7, total SS 36+16+9+49 = 110, between 2*25 + 2*25 = 100
    assert eta_squared(np.array([0, 0, 1, 1]), np.array([1.0, 3.0, 10.0, 14.0])) == pytest.approx(100 / 110)
    assert np.isnan(eta_squared(np.array([0, 1]), np.array([5.0, 5.0])))
    bands = cost_bands(np.array([0, 0, 10, 20, 30, 40, 50, 60]), 4)  # no cost, then 3 quantile bands
    assert bands.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_planner_selection_keeps_candidates_figures_and_applies_each_rule(blobs):
    X, y = blobs
    rng = np.random.default_rng(0)
    X = X.assign(cost_total_365d=rng.exponential(100, len(X)))  # last year's cost: unrelated to the blobs
    next_cost = y * 1000.0 + rng.normal(0, 50, len(X))           # next year's cost: follows the blobs
    pre = UseProfileTransformer(patterns=(r"^f\d$",))
    seg = Segmenter(k_range=(3, 7), preprocess=pre, n_bootstrap=2, min_segment_share=0.15).fit(X, next_cost)
    s = seg.scores_.set_index("k")
    assert {"stability", "min_share", "eta2", "eta2_bands", "eligible", "chosen"} <= set(s.columns)
    assert s["chosen"].sum() == 1 and seg.k_ == 5 and s.loc[5, "eligible"]
    assert not s.loc[6, "passes_share"] and not s.loc[7, "passes_share"]  # a blob split in two: < 15 % each
    assert s.loc[5, "eta2"] > 0.99 and s.loc[5, "eta2"] > s.loc[5, "eta2_bands"]
    assert adjusted_rand_score(y, seg.labels_) > 0.95
    # η² must beat the bands: a cost unrelated to the blobs and the same both years, no clustering can
    cost = rng.lognormal(5, 1, len(X))
    same = Segmenter(k_range=(3, 5), preprocess=pre, n_bootstrap=0).fit(X.assign(cost_total_365d=cost), cost)
    assert not same.scores_["passes_eta2"].any()
    assert not same.scores_["eligible"].any() and same.scores_["chosen"].sum() == 1
    with pytest.raises(ValueError, match="y has"):
        Segmenter(k_range=(3, 4), preprocess=pre, n_bootstrap=0).fit(X, next_cost[:10])
    with pytest.raises(ValueError, match="select must be one of"):
        Segmenter(k_range=(3, 4), preprocess=pre, select="elbow").fit(X)


def test_block_scaling_gives_each_block_the_same_weight():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(500, 6)), columns=["dx_a", "dx_b", "dx_c", "dx_d", "age", "cost_total_365d"])
    X["cost_total_365d"] = np.abs(X["cost_total_365d"]) * 100
    eq = UseProfileTransformer(block_scaling="equal").fit(X)
    Z = eq.transform(X)
    assert eq.block_sizes_ == {"conditions": 4, "person": 1, "service_use": 1}
    block = np.array(eq.block_of_)
    variances = {b: Z[:, block == b].var(axis=0).sum() for b in eq.block_sizes_}
    assert all(v == pytest.approx(1.0) for v in variances.values())
    pca = UseProfileTransformer(block_scaling="pca", block_components=2).fit(X)
    Zp = pca.transform(X)
    assert Zp.shape == (500, 4)
    assert list(pca.get_feature_names_out()) == ["conditions_pc0", "conditions_pc1", "person_pc0", "service_use_pc0"]
    assert Zp[:, :2].var(axis=0, ddof=1).sum() == pytest.approx(1.0)  # the kept components carry the block's weight
    with pytest.raises(ValueError, match="block_scaling must be one of"):
        UseProfileTransformer(block_scaling="both").fit(X)


def test_block_weights_set_each_blocks_total_variance():
    from segmentation.preprocess import TWO_BLOCKS

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(500, 6)), columns=["dx_a", "dx_b", "dx_c", "dx_d", "age", "cost_total_365d"])
    X["cost_total_365d"] = np.abs(X["cost_total_365d"]) * 100
    pre = UseProfileTransformer(block_scaling="equal", blocks=TWO_BLOCKS, block_weights=(("conditions", 1.5),)).fit(X)
    Z, block = pre.transform(X), np.array(pre.block_of_)
    assert pre.block_weight_ == {"conditions": 1.5, "use_and_person": 1.0}
    assert Z[:, block == "conditions"].var(axis=0).sum() == pytest.approx(1.5)
    assert Z[:, block == "use_and_person"].var(axis=0).sum() == pytest.approx(1.0)
    pca = UseProfileTransformer(block_scaling="pca", block_components=2, block_weights={"conditions": 2.0}).fit(X)
    assert pca.transform(X)[:, :2].var(axis=0, ddof=1).sum() == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"block_weights names \['diagnoses'\], which are not blocks"):
        UseProfileTransformer(block_scaling="equal", block_weights={"diagnoses": 2.0}).fit(X)
    with pytest.raises(ValueError, match="block_weights must be positive"):
        UseProfileTransformer(block_scaling="equal", block_weights={"conditions": 0}).fit(X)
    # Segmenter's default representation: two blocks, the recorded conditions 1.5 times the rest
    seg = Segmenter(k=3, n_bootstrap=0, n_refits=0).fit(X)
    assert seg.preprocess_.block_weight_ == {"conditions": 1.5, "use_and_person": 1.0}


def test_central_run_is_the_one_agreeing_best_with_the_others(monkeypatch):
    # four blobs at the corners of a square, k = 2: two optima of equal inertia, left/right and top/bottom
    Xa, _ = make_blobs(n_samples=800, centers=[[-5, -5], [-5, 5], [5, -5], [5, 5]], cluster_std=0.5, random_state=1)
    X = pd.DataFrame(Xa, columns=["f0", "f1"])
    left_right, top_bottom = np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, -1.0], [0.0, 1.0]])

    def runs(script):
        calls = iter(script)
        monkeypatch.setattr(Segmenter, "_fit_model", lambda self, Z, k, seed: (None, next(calls)))
        return Segmenter(k=2, preprocess=_pre(), n_bootstrap=0, n_refits=len(script)).fit(X).labels_

    # the run the others agree with most is the majority's optimum, whichever comes first
    split_x = (Xa[:, 0] > 0).astype(int)
    split_y = (Xa[:, 1] > 0).astype(int)
    assert adjusted_rand_score(split_x, runs([top_bottom, left_right, left_right, top_bottom, left_right])) == 1
    assert adjusted_rand_score(split_y, runs([left_right, top_bottom, top_bottom, left_right, top_bottom])) == 1
    monkeypatch.undo()
    seg = Segmenter(k=2, preprocess=_pre(), n_bootstrap=3, n_refits=10).fit(X)
    np.testing.assert_array_equal(seg.predict(X), seg.labels_)  # every client in its nearest centre's segment
    assert len(seg.stability_scores_) == 3 and seg.get_params()["n_refits"] == 10
