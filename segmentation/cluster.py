"""Data-driven segments: k-means, Gaussian mixture or HDBSCAN with automatic k and a stability check."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from segmentation.preprocess import UseProfileTransformer

METHODS = ("kmeans", "gmm", "hdbscan")


class Segmenter(ClusterMixin, BaseEstimator):
    """Cluster clients' use profiles into segments, choosing k when asked.

    Parameters
    ----------
    method
        ``"kmeans"``, ``"gmm"`` (Gaussian mixture) or ``"hdbscan"``.
    k
        Number of segments, or ``"auto"``: k-means takes the k with the best
        silhouette, the mixture the lowest BIC, over ``k_range``. HDBSCAN
        finds its own number (``k`` is ignored).
    k_range
        Inclusive range of k tried when ``k="auto"``.
    preprocess
        Transformer from the feature table to the clustering space; a
        :class:`~segmentation.preprocess.UseProfileTransformer` by default.
    sample_size
        Clients used for model selection scores and for HDBSCAN fitting
        (all clients are still assigned); keeps large counties fast.
    n_bootstrap
        Bootstrap refits behind the stability score (0 to skip).
    min_cluster_share
        HDBSCAN's smallest segment as a share of the sample.
    random_state
        Seed of every random step.

    Attributes
    ----------
    n_features_in_ : int
        Columns of the table seen in ``fit`` (from the fitted preprocessor; ``feature_names_in_`` too when it has them).
    k_ : int
        Number of segments found.
    scores_ : pandas.DataFrame
        Per k tried: silhouette (k-means), BIC (mixture); the choice can be read back.
    stability_ : float
        Mean adjusted Rand index between the segments of bootstrap refits and
        the final model on the same clients (1 = perfectly stable).
    stability_scores_ : list of float
        The individual bootstrap ARIs.
    centers_ : ndarray
        Segment centres in the clustering space (used to assign new clients).
    labels_ : ndarray
        Segment of each training client (0 … k-1, ordered by size, largest first).
    """

    def __init__(self, method: str = "kmeans", k: int | str = "auto", k_range: tuple[int, int] = (3, 10),
                 preprocess=None, sample_size: int = 20_000, n_bootstrap: int = 5, min_cluster_share: float = 0.01,
                 random_state: int = 0):
        self.method = method
        self.k = k
        self.k_range = k_range
        self.preprocess = preprocess
        self.sample_size = sample_size
        self.n_bootstrap = n_bootstrap
        self.min_cluster_share = min_cluster_share
        self.random_state = random_state

    # -- model per method ---------------------------------------------------------------------------
    def _model(self, k: int | None, seed: int):
        if self.method == "kmeans":
            return KMeans(n_clusters=k, n_init=4, random_state=seed)
        if self.method == "gmm":
            return GaussianMixture(n_components=k, covariance_type="diag", n_init=2, random_state=seed)
        if self.method == "hdbscan":
            return HDBSCAN(min_cluster_size=max(5, int(self.min_cluster_share * self.sample_size)), copy=True)
        raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def _fit_model(self, Z: np.ndarray, k: int | None, seed: int):
        """One fit on Z: the model and its centres (HDBSCAN: the means of the clusters it found)."""
        model = self._model(k, seed)
        labels = model.fit_predict(Z)
        if self.method == "hdbscan":
            found = np.unique(labels[labels >= 0])
            if not found.size:
                raise ValueError("HDBSCAN found no segment; lower min_cluster_share or use kmeans")
            return model, np.vstack([Z[labels == c].mean(axis=0) for c in found])
        return model, (model.cluster_centers_ if self.method == "kmeans" else model.means_)

    def _assign(self, model, centers: np.ndarray, Z: np.ndarray) -> np.ndarray:
        # The mixture assigns by posterior; k-means and HDBSCAN (noise included) by nearest centre.
        return model.predict(Z) if self.method == "gmm" else _nearest(Z, centers)

    def _choose_k(self, Z: np.ndarray, rng: np.random.Generator) -> int:
        lo, hi = self.k_range
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range must satisfy 2 <= low <= high, got {self.k_range}")
        rows = []
        for k in range(lo, hi + 1):
            if self.method == "gmm":
                gm = self._model(k, self.random_state).fit(Z)
                rows.append({"k": k, "bic": gm.bic(Z), "silhouette": np.nan})
            else:
                labels = self._model(k, self.random_state).fit_predict(Z)
                sample = rng.choice(len(Z), min(len(Z), 5_000), replace=False)
                sil = silhouette_score(Z[sample], labels[sample]) if len(np.unique(labels[sample])) > 1 else -1.0
                rows.append({"k": k, "bic": np.nan, "silhouette": sil})
        self.scores_ = pd.DataFrame(rows)
        col, best = ("bic", "idxmin") if self.method == "gmm" else ("silhouette", "idxmax")
        return int(self.scores_.loc[getattr(self.scores_[col], best)(), "k"])

    # -- estimator API ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is fine where the preprocessor imputes it (UseProfileTransformer, the default, does)
        tags.input_tags.allow_nan = self.preprocess is None or isinstance(self.preprocess, UseProfileTransformer)
        return tags

    def fit(self, X: pd.DataFrame, y=None) -> "Segmenter":
        """Preprocess, choose k if asked, cluster, order segments by size, and measure stability."""
        rng = np.random.default_rng(self.random_state)
        self.preprocess_ = clone(self.preprocess) if self.preprocess is not None else UseProfileTransformer()
        Z_all = _finite(self.preprocess_.fit_transform(X))
        self.n_features_in_ = self.preprocess_.n_features_in_
        if hasattr(self.preprocess_, "feature_names_in_"):
            self.feature_names_in_ = self.preprocess_.feature_names_in_
        sample = np.sort(rng.choice(len(Z_all), min(len(Z_all), self.sample_size), replace=False))
        Z = Z_all[sample]
        if self.method == "hdbscan":
            k = None
            self.scores_ = pd.DataFrame(columns=["k", "bic", "silhouette"])
        elif self.k == "auto":
            k = self._choose_k(Z, rng)
        else:
            k = int(self.k)
            self.scores_ = pd.DataFrame(columns=["k", "bic", "silhouette"])
        self.model_, centers = self._fit_model(Z, k, self.random_state)
        # Order segments by size (largest first) so labels are stable and readable.
        raw = self._assign(self.model_, centers, Z_all)
        order = np.argsort(-np.bincount(raw, minlength=len(centers)), kind="stable")
        self.order_ = np.argsort(order)  # raw label -> ordered label
        self.centers_ = centers[order]
        self.k_ = len(self.centers_)
        self.labels_ = self.order_[raw]
        self.stability_scores_ = []
        base = self.order_[self._assign(self.model_, centers, Z)]
        for b in range(self.n_bootstrap):
            boot = rng.choice(len(Z), len(Z), replace=True)
            model_b, c_b = self._fit_model(Z[boot], k, self.random_state + 1 + b)
            self.stability_scores_.append(float(adjusted_rand_score(base, self._assign(model_b, c_b, Z))))
        self.stability_ = float(np.mean(self.stability_scores_)) if self.stability_scores_ else np.nan
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment of each client (mixture: most probable component; otherwise the nearest centre)."""
        check_is_fitted(self, "centers_")
        Z = _finite(self.preprocess_.transform(X))
        if self.method == "gmm":
            return self.order_[self.model_.predict(Z)]
        return _nearest(Z, self.centers_)

    def fit_predict(self, X: pd.DataFrame, y=None) -> np.ndarray:
        """Fit and return the training clients' segments."""
        return self.fit(X).labels_


def _finite(Z: np.ndarray) -> np.ndarray:
    """The clustering space must be finite: a preprocessor that passes NaN or inf through is an error."""
    if not np.isfinite(Z).all():
        raise ValueError("Input X contains NaN or infinity after preprocessing; use a preprocessor that imputes "
                         "missing values (the default UseProfileTransformer does)")
    return Z


def _nearest(Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d = (Z**2).sum(axis=1)[:, None] - 2 * Z @ centers.T + (centers**2).sum(axis=1)[None, :]
    return np.argmin(d, axis=1)

