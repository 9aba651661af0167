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
    seg = Segmenter(method=method, k="auto", k_range=(2, 9), preprocess=_pre(), n_bootstrap=2).fit(X)
    assert seg.k_ == 5
    assert adjusted_rand_score(y, seg.labels_) > 0.95
    assert seg.stability_ > 0.9 and len(seg.stability_scores_) == 2
    np.testing.assert_array_equal(seg.predict(X), seg.labels_)


def test_k_choice_can_be_read_back(blobs):
    X, _ = blobs
    km = Segmenter(method="kmeans", k_range=(2, 8), preprocess=_pre(), n_bootstrap=0).fit(X)
    assert list(km.scores_["k"]) == list(range(2, 9))
    assert km.scores_.loc[km.scores_["silhouette"].idxmax(), "k"] == km.k_
    gm = Segmenter(method="gmm", k_range=(2, 8), preprocess=_pre(), n_bootstrap=0).fit(X)
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
