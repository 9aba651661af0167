"""Estimating the true probabilities from replicate futures: stratified shocks, exact tails, standard errors.

The truth's probabilities are Monte Carlo averages over replicate futures
(:func:`features.synth.simulate._futures`). Three things make them precise
without many more futures:

- **Stratified yearly shock.** The yearly shock on all service use (gamma,
  mean 1, :data:`features.synth.dynamics.YEAR_SHAPE`) is the largest single
  source of next year's variation. Instead of an independent draw per future,
  the futures of a client split its distribution into equal-probability strata,
  two futures per stratum (:func:`stratified_shock`). Each draw still has the
  shock's exact distribution, so every average stays unbiased; the spread of the
  shock across futures is balanced, which lowers the estimate's variance.
- **Exact last step.** Where the outcome, given the simulated path, is a
  Poisson tail (mental-health and substance contacts, drawn once over the year
  from their summed expectation), the future contributes that conditional
  probability instead of a 0/1 draw (:func:`poisson_at_least`; the conditional
  expectation can only lower the variance).
- **Standard errors.** Two futures share each stratum, so the within-stratum
  differences give an unbiased estimate of the estimate's variance
  (:func:`mean_and_se`).
- **Half estimate.** One future of each stratum alone is another unbiased
  estimate with twice the variance (:func:`half_mean`). Noise in the
  probabilities lowers the oracle's AUROC by an amount proportional to the
  noise variance, so 2 A(full) - A(half) removes that bias to first order
  (:func:`models.metrics.oracle_auroc`).
"""
from __future__ import annotations

from functools import cache

import numpy as np
from scipy import special

from features.synth.dynamics import YEAR_SHAPE

#: Grid of the tabulated inverse distribution function of the yearly shock (linear between points).
_GRID = 1 << 16


@cache
def _shock_table() -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(0.0, 1.0, _GRID + 1)
    return u, special.gammaincinv(YEAR_SHAPE, u) / YEAR_SHAPE


def shock_quantile(u: np.ndarray) -> np.ndarray:
    """The yearly shock's quantile function at ``u`` (gamma with shape :data:`YEAR_SHAPE`, mean 1).

    Tabulated at 65,537 points and linear between them (relative error below
    1e-6 away from the ends); the top cell, where the quantile is unbounded,
    is computed exactly.
    """
    u = np.asarray(u, np.float64)
    grid, table = _shock_table()
    out = np.interp(u, grid[:-1], table[:-1])
    top = u > grid[-2]
    if top.any():
        out[top] = special.gammaincinv(YEAR_SHAPE, u[top]) / YEAR_SHAPE
    return out


def stratum_bounds(reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower end and width (in probability) of the stratum of each of ``reps`` futures.

    Futures 2h and 2h + 1 share stratum h of width 2 / reps; with an odd
    number the last future has a stratum of width 1 / reps of its own. Every
    future's stratum has the width of its share of the futures, so the plain
    mean over futures is the stratified estimate.
    """
    r = np.arange(reps)
    h = r // 2
    lower = 2 * h / reps
    width = np.minimum(2, reps - 2 * h) / reps
    return lower, width


def stratified_shock(rng: np.random.Generator, reps: np.ndarray, total: int, n: int) -> np.ndarray:
    """Yearly shocks of ``n`` clients in futures ``reps`` (of ``total``), rows ordered future by future.

    Each draw is uniform within its future's stratum (:func:`stratum_bounds`),
    then mapped through the shock's quantile function: marginally every draw
    has the shock's exact distribution.
    """
    lower, width = stratum_bounds(total)
    reps = np.asarray(reps)
    u = np.repeat(lower[reps], n) + np.repeat(width[reps], n) * rng.random(len(reps) * n)
    return shock_quantile(u).astype(np.float32)


def poisson_at_least(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """P(N ≥ k) for N ~ Poisson(lam), elementwise; 1 where k ≤ 0."""
    k = np.asarray(k, np.float64)
    lam = np.asarray(lam, np.float64)
    out = np.ones(np.broadcast(k, lam).shape)
    need = np.broadcast_to(k > 0, out.shape)
    if need.any():
        kk, ll = np.broadcast_to(k, out.shape)[need], np.broadcast_to(lam, out.shape)[need]
        out[need] = special.pdtrc(kk - 1, ll)  # P(N > k - 1)
    return out


def mean_and_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the mean over futures (columns) and its standard error under the paired strata.

    ``values`` is clients × futures, futures in the order of
    :func:`stratum_bounds` (0/1 outcomes or conditional probabilities). With
    two futures per stratum the variance of the mean is estimated without bias
    by Σ (y₂ₕ − y₂ₕ₊₁)² / R²; an odd last future adds the mean within-stratum
    variance / R². One future alone has no estimate (NaN).
    """
    values = np.asarray(values, np.float64)
    reps = values.shape[1]
    mean = values.mean(axis=1)
    pairs = reps // 2
    if pairs == 0:
        return mean, np.full(len(mean), np.nan)
    d2 = (values[:, 0:2 * pairs:2] - values[:, 1:2 * pairs:2]) ** 2
    var = d2.sum(axis=1) / reps**2
    if reps % 2:
        var += (d2 / 2).mean(axis=1) / reps**2
    return mean, np.sqrt(var)


def half_mean(values: np.ndarray) -> np.ndarray:
    """Per row: the stratified mean over one future of each stratum (the first of each pair).

    Unbiased like the full mean, with twice its variance. With an odd number
    of futures the last (a stratum of half the width of the others) keeps its
    weight 1 / R and each pair's first future gets 2 / R.
    """
    values = np.asarray(values, np.float64)
    reps = values.shape[1]
    if reps == 1:
        return values[:, 0].copy()
    pairs = reps // 2
    total = 2 * values[:, 0:2 * pairs:2].sum(axis=1)
    if reps % 2:
        total += values[:, -1]
    return total / reps
