"""Data-driven segments: k-means, Gaussian mixture or HDBSCAN with automatic k and a stability check."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from segmentation.preprocess import CONDITIONS_WEIGHT, TWO_BLOCKS, UseProfileTransformer

METHODS = ("kmeans", "gmm", "hdbscan")
SELECTIONS = ("planner", "silhouette")
#: Column of the feature table holding last year's cost (the bands the segments are compared with).
PRIOR_COST = "cost_total_365d"


def eta_squared(groups: np.ndarray, values: np.ndarray) -> float:
    """Share of the variance of ``values`` between ``groups`` (η², correlation ratio; 0 … 1).

    Parameters
    ----------
    groups
        Group label of each observation.
    values
        The quantity (e.g. next-year cost), same length.
    """
    values = np.asarray(values, dtype=float)
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return float("nan")
    frame = pd.DataFrame({"g": np.asarray(groups), "v": values})
    stats = frame.groupby("g")["v"].agg(["size", "mean"])
    return float((stats["size"] * (stats["mean"] - values.mean()) ** 2).sum() / total)


def cost_bands(prior_cost: np.ndarray, k: int) -> np.ndarray:
    """``k`` bands of last year's cost: clients with no cost, then ``k - 1`` quantile bands of the others.

    Ties and a small number of distinct values can give fewer bands than ``k``.
    """
    cost = np.asarray(prior_cost, dtype=float)
    bands = np.zeros(len(cost), dtype=int)
    positive = cost > 0
    if positive.sum() and k > 1:
        codes = pd.qcut(cost[positive], k - 1, labels=False, duplicates="drop")
        bands[positive] = np.asarray(codes, dtype=int) + 1
    return bands


class Segmenter(ClusterMixin, BaseEstimator):
    """Cluster clients' use profiles into segments, choosing k when asked.

    Parameters
    ----------
    method
        ``"kmeans"``, ``"gmm"`` (Gaussian mixture) or ``"hdbscan"``.
    k
        Number of segments, or ``"auto"``: chosen over ``k_range`` by
        ``select``. HDBSCAN finds its own number (``k`` is ignored).
    k_range
        Inclusive range of k tried when ``k="auto"``.
    preprocess
        Transformer from the feature table to the clustering space; by
        default a :class:`~segmentation.preprocess.UseProfileTransformer`
        with ``block_scaling="equal"`` over two blocks, recorded conditions
        and use-and-person (:data:`~segmentation.preprocess.TWO_BLOCKS`), the
        conditions weighing 1.5 times the rest
        (:data:`~segmentation.preprocess.CONDITIONS_WEIGHT`), so the many
        heavy-tailed use columns cannot drown the conditions; see
        ``benchmarks/bench_segmentation.py`` and docs/segmentation.md.
    sample_size
        Clients used for model selection scores and for HDBSCAN fitting
        (all clients are still assigned); keeps large counties fast.
    n_bootstrap
        Bootstrap refits behind the stability score (0 to skip). With
        ``n_refits`` > 1 these are single k-means runs (one initialisation)
        on bootstrap samples, independent of the refits the segments were chosen from.
    n_refits
        k-means only: the segments of a given k are the most central of
        ``n_refits`` single k-means runs on bootstrap samples — the run whose
        segments agree best (mean adjusted Rand index) with the others' —
        refined on all clients from its centres. k-means has several local
        optima of nearly equal inertia that group clients differently; the
        lowest inertia is not the most reproducible of them, the most central
        run is. 0 or 1: one k-means fit with 4 initialisations, the lowest
        inertia kept (the former behaviour).
    min_cluster_share
        HDBSCAN's smallest segment as a share of the sample.
    select
        How ``k="auto"`` chooses. ``"planner"``: every k of ``k_range`` is
        fitted and scored on criteria a planner can sign, none of which needs
        the true groups — bootstrap stability (at least ``min_stability``),
        the smallest segment's share of clients (at least
        ``min_segment_share``) and, when ``fit`` is given next-year cost as
        ``y``, the η² of that cost between the segments, which must be at
        least the η² of as many bands of last year's cost (the column
        ``prior_cost``; η² rises with k by itself, so the comparison is at
        equal k). The largest k meeting all of them is kept (ties: higher
        η², then higher stability); if none does, the k with the highest
        stability among those meeting the size rule. ``"silhouette"``:
        k-means takes the best silhouette, the mixture the lowest BIC.
    min_segment_share
        Smallest segment a planner can use, as a share of clients (``planner``).
    min_stability
        Bootstrap stability a chosen k must reach (``planner``).
    prior_cost
        Column of last year's cost for the bands (``planner`` with ``y``).
    random_state
        Seed of every random step.

    Attributes
    ----------
    n_features_in_ : int
        Columns of the table seen in ``fit`` (from the fitted preprocessor; ``feature_names_in_`` too when it has them).
    k_ : int
        Number of segments found.
    scores_ : pandas.DataFrame
        Per k tried: ``silhouette`` (k-means), ``bic`` (mixture) and, with
        ``select="planner"``, ``stability``, ``min_share``, ``eta2`` and
        ``eta2_bands`` (next-year cost, when ``y`` was given), the
        ``passes_*`` flags, ``eligible`` and ``chosen``; the choice can be read back.
    stability_ : float
        Mean adjusted Rand index between the segments of bootstrap refits and
        the final model on the same clients (1 = perfectly stable); with
        ``k="auto"`` the chosen candidate's figure (the same refits).
    stability_scores_ : list of float
        The individual bootstrap ARIs.
    centers_ : ndarray
        Segment centres in the clustering space (used to assign new clients).
    labels_ : ndarray
        Segment of each training client (0 … k-1, ordered by size, largest first).
    """

    def __init__(self, method: str = "kmeans", k: int | str = "auto", k_range: tuple[int, int] = (3, 10),
                 preprocess=None, sample_size: int = 20_000, n_bootstrap: int = 8, min_cluster_share: float = 0.01,
                 select: str = "planner", min_segment_share: float = 0.01, min_stability: float = 0.8,
                 prior_cost: str = PRIOR_COST, n_refits: int = 10, random_state: int = 0):
        self.method = method
        self.k = k
        self.k_range = k_range
        self.preprocess = preprocess
        self.sample_size = sample_size
        self.n_bootstrap = n_bootstrap
        self.min_cluster_share = min_cluster_share
        self.select = select
        self.min_segment_share = min_segment_share
        self.min_stability = min_stability
        self.prior_cost = prior_cost
        self.n_refits = n_refits
        self.random_state = random_state

    # -- model per method ---------------------------------------------------------------------------
    def _central(self) -> bool:
        return self.method == "kmeans" and self.n_refits > 1

    def _model(self, k: int | None, seed: int):
        if self.method == "kmeans":
            return KMeans(n_clusters=k, n_init=1 if self._central() else 4, random_state=seed)
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

    def _fit_central(self, Z: np.ndarray, k: int | None, seed: int):
        """The segments of k: the most central of ``n_refits`` bootstrap runs, refined on all of Z.

        Without ``n_refits`` (or for another method than k-means) one fit, as :meth:`_fit_model`.
        """
        if not self._central():
            return self._fit_model(Z, k, seed)
        rng = np.random.default_rng([seed, k, 7])
        runs = []
        for _ in range(self.n_refits):
            boot = rng.choice(len(Z), len(Z), replace=True)
            runs.append(self._fit_model(Z[boot], k, int(rng.integers(2**31 - 1)))[1])
        labels = [_nearest(Z, c) for c in runs]
        agree = np.zeros((len(runs), len(runs)))
        for i in range(len(runs)):
            for j in range(i + 1, len(runs)):
                agree[i, j] = agree[j, i] = adjusted_rand_score(labels[i], labels[j])
        best = int(np.argmax(agree.sum(axis=1)))  # first of equals: reproducible
        model = KMeans(n_clusters=k, init=runs[best], n_init=1).fit(Z)
        return model, model.cluster_centers_

    def _assign(self, model, centers: np.ndarray, Z: np.ndarray) -> np.ndarray:
        # The mixture assigns by posterior; k-means and HDBSCAN (noise included) by nearest centre.
        return model.predict(Z) if self.method == "gmm" else _nearest(Z, centers)

    def _stability(self, Z: np.ndarray, k: int | None, base: np.ndarray, rng: np.random.Generator) -> list[float]:
        """ARI between ``base`` (the segments of Z) and the segments of Z by refits on bootstrap samples."""
        out = []
        for b in range(self.n_bootstrap):
            boot = rng.choice(len(Z), len(Z), replace=True)
            model_b, c_b = self._fit_model(Z[boot], k, self.random_state + 1 + b)
            out.append(float(adjusted_rand_score(base, self._assign(model_b, c_b, Z))))
        return out

    def _choose_k(self, Z: np.ndarray, rng: np.random.Generator, y: np.ndarray | None = None,
                  prior: np.ndarray | None = None) -> int:
        lo, hi = self.k_range
        if lo < 2 or hi < lo:
            raise ValueError(f"k_range must satisfy 2 <= low <= high, got {self.k_range}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        rows = []
        self._fits = {}
        sil_sample = rng.choice(len(Z), min(len(Z), 5_000), replace=False)
        for k in range(lo, hi + 1):
            model, centers = self._fit_central(Z, k, self.random_state)
            labels = self._assign(model, centers, Z)
            row = {"k": k, "bic": model.bic(Z) if self.method == "gmm" else np.nan, "silhouette": np.nan}
            if self.method != "gmm" or self.select == "planner":
                row["silhouette"] = (silhouette_score(Z[sil_sample], labels[sil_sample])
                                     if len(np.unique(labels[sil_sample])) > 1 else -1.0)
            if self.select == "planner":
                stab = self._stability(Z, k, labels, np.random.default_rng([self.random_state, k or 0]))
                self._fits[k] = (model, centers, stab)
                row["stability"] = float(np.mean(stab)) if stab else np.nan
                row["min_share"] = float(np.bincount(labels, minlength=k).min() / len(labels))
                row["eta2"] = eta_squared(labels, y) if y is not None else np.nan
                row["eta2_bands"] = eta_squared(cost_bands(prior, k), y) if y is not None and prior is not None \
                    else np.nan
            rows.append(row)
        scores = pd.DataFrame(rows)
        if self.select == "silhouette":
            self.scores_ = scores
            col, best = ("bic", "idxmin") if self.method == "gmm" else ("silhouette", "idxmax")
            return int(scores.loc[getattr(scores[col], best)(), "k"])
        scores["passes_share"] = scores["min_share"] >= self.min_segment_share
        # no bootstrap: stability unknown, not a reason to refuse a k
        scores["passes_stability"] = scores["stability"].isna() | (scores["stability"] >= self.min_stability)
        scores["passes_eta2"] = (scores["eta2"].isna() | scores["eta2_bands"].isna()
                                 | (scores["eta2"] >= scores["eta2_bands"]))
        scores["eligible"] = scores["passes_share"] & scores["passes_stability"] & scores["passes_eta2"]
        scores["chosen"] = False
        pool = scores[scores["eligible"]]
        if len(pool):
            best = pool.sort_values(["k", "eta2", "stability"], ascending=False, na_position="last").index[0]
        else:
            pool = scores[scores["passes_share"]] if scores["passes_share"].any() else scores
            best = pool.sort_values(["stability", "k"], ascending=False, na_position="last").index[0]
        scores.loc[best, "chosen"] = True
        self.scores_ = scores
        return int(scores.loc[best, "k"])

    # -- estimator API ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is fine where the preprocessor imputes it (UseProfileTransformer, the default, does)
        tags.input_tags.allow_nan = self.preprocess is None or isinstance(self.preprocess, UseProfileTransformer)
        return tags

    def fit(self, X: pd.DataFrame, y=None) -> "Segmenter":
        """Preprocess, choose k if asked, cluster, order segments by size, and measure stability.

        Parameters
        ----------
        X
            Feature table (one row per client).
        y
            Optional cost of each client over the year after the index date
            (aligned with ``X``): with ``select="planner"`` it enters the
            choice of k as the out-of-time η² (see the class docstring). It
            is never used to fit the segments themselves.
        """
        rng = np.random.default_rng(self.random_state)
        self._fits = {}  # k -> (model, centres, stability refits) of the candidates of k="auto"
        self.preprocess_ = (clone(self.preprocess) if self.preprocess is not None
                            else UseProfileTransformer(block_scaling="equal", blocks=TWO_BLOCKS,
                                                       block_weights=CONDITIONS_WEIGHT))
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
            y_all = None if y is None or self.select != "planner" else np.asarray(y, dtype=float)
            if y_all is not None and len(y_all) != len(Z_all):
                raise ValueError(f"y has {len(y_all)} values for {len(Z_all)} clients")
            prior = (X[self.prior_cost].to_numpy(dtype=float)
                     if isinstance(X, pd.DataFrame) and self.prior_cost in X.columns else None)
            k = self._choose_k(Z, rng, None if y_all is None else y_all[sample],
                               None if prior is None else prior[sample])
        else:
            k = int(self.k)
            self.scores_ = pd.DataFrame(columns=["k", "bic", "silhouette"])
        cached = getattr(self, "_fits", {}).get(k)
        self._fits = {}
        self.model_, centers = (cached[:2] if cached is not None else self._fit_central(Z, k, self.random_state))
        # Order segments by size (largest first) so labels are stable and readable.
        raw = self._assign(self.model_, centers, Z_all)
        order = np.argsort(-np.bincount(raw, minlength=len(centers)), kind="stable")
        self.order_ = np.argsort(order)  # raw label -> ordered label
        self.centers_ = centers[order]
        self.k_ = len(self.centers_)
        self.labels_ = self.order_[raw]
        if cached is not None:  # the candidate's own refits: the figure the choice was made on
            self.stability_scores_ = list(cached[2])
        else:
            base = self.order_[self._assign(self.model_, centers, Z)]
            self.stability_scores_ = self._stability(Z, k, base, np.random.default_rng([self.random_state, k or 0]))
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

