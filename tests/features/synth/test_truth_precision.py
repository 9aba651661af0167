"""The truth's precision: stratified futures, exact Poisson tails and the standard error of every probability."""
import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from features.synth import SynthConfig, generate_county
from features.synth.dynamics import YEAR_SHAPE
from features.synth.estimate import (
    half_mean, mean_and_se, poisson_at_least, shock_quantile, stratified_shock, stratum_bounds,
)
from models.metrics import oracle_auroc


def _futures_of_a_known_case(seed: int, clients: int, reps: int, lam: float, k: int, exact_tail: bool):
    """``clients`` identical clients: N ~ Poisson(shock × lam), outcome N ≥ k, over ``reps`` stratified futures.

    A gamma-mixed Poisson count is negative binomial, so the true probability is known.
    """
    rng = np.random.default_rng(seed)
    g = stratified_shock(rng, np.arange(reps), reps, clients).astype(np.float64)
    if exact_tail:
        y = poisson_at_least(np.full(len(g), k), g * lam)
    else:
        y = (rng.poisson(g * lam) >= k).astype(float)
    return mean_and_se(y.reshape(reps, clients).T)


def _known(lam: float, k: int) -> float:
    return float(stats.nbinom.sf(k - 1, YEAR_SHAPE, YEAR_SHAPE / (YEAR_SHAPE + lam)))


@pytest.mark.parametrize("exact_tail", [False, True])
def test_estimator_is_unbiased_and_its_standard_error_is_right_on_a_known_probability(exact_tail):
    lam, k, clients, reps = 6.0, 10, 20_000, 16
    truth = _known(lam, k)
    assert 0.1 < truth < 0.3
    p, se = _futures_of_a_known_case(1, clients, reps, lam, k, exact_tail)
    # Unbiased: the mean over many clients lands within 4 standard errors of the known value.
    assert abs(p.mean() - truth) < 4 * p.std(ddof=1) / np.sqrt(clients)
    # The recorded standard error matches the actual spread of the estimates (within 10 %).
    assert np.sqrt(np.mean(se**2)) == pytest.approx(p.std(ddof=1), rel=0.10)
    assert (se >= 0).all()


def test_stratified_shock_and_exact_tail_beat_independent_draws():
    lam, k, clients, reps = 6.0, 10, 20_000, 16
    rng = np.random.default_rng(3)
    plain = (rng.poisson(rng.gamma(YEAR_SHAPE, 1 / YEAR_SHAPE, (clients, reps)) * lam) >= k).mean(axis=1)
    strat, _ = _futures_of_a_known_case(3, clients, reps, lam, k, exact_tail=False)
    exact, _ = _futures_of_a_known_case(3, clients, reps, lam, k, exact_tail=True)
    assert strat.var() < 0.9 * plain.var()
    assert exact.var() < 0.25 * plain.var()


def test_standard_error_shrinks_as_one_over_root_futures():
    lam, k, clients = 6.0, 10, 10_000
    rms = {}
    for reps in (8, 32):
        _, se = _futures_of_a_known_case(5, clients, reps, lam, k, exact_tail=False)
        rms[reps] = np.sqrt(np.mean(se**2))
    # Four times the futures: half the standard error (stratification may do a little better).
    assert 1.8 < rms[8] / rms[32] < 2.6


def test_draws_keep_the_shock_distribution_and_fill_their_strata():
    reps, clients = 6, 4_000
    g = stratified_shock(np.random.default_rng(0), np.arange(reps), reps, clients)
    assert stats.kstest(g, stats.gamma(YEAR_SHAPE, scale=1 / YEAR_SHAPE).cdf).pvalue > 0.01
    lower, width = stratum_bounds(reps)
    u = special.gammainc(YEAR_SHAPE, YEAR_SHAPE * g.astype(np.float64)).reshape(reps, clients)
    assert ((u >= lower[:, None] - 1e-6) & (u <= (lower + width)[:, None] + 1e-6)).all()
    assert np.isinf(shock_quantile(np.array([1.0]))).all() and shock_quantile(np.array([0.0]))[0] == 0.0


def test_mean_and_se_by_hand():
    values = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], float)
    p, se = mean_and_se(values)
    assert p.tolist() == [0.6, 0.0]
    # pairs (1,0), (1,1): squared differences 1 and 0; odd last future adds their mean half-difference.
    assert se[0] == pytest.approx(np.sqrt((1 + 0) / 25 + (0.5 + 0) / 2 / 25))
    assert se[1] == 0.0
    assert np.isnan(mean_and_se(np.ones((3, 1)))[1]).all()
    assert poisson_at_least(np.array([0, -2, 1]), np.array([2.0, 2.0, 2.0])).tolist() == pytest.approx(
        [1.0, 1.0, 1 - np.exp(-2.0)])


def test_truth_records_a_standard_error_that_shrinks_with_more_futures(small_county):
    path, manifest = small_county
    reps = manifest["truth_reps_by_date"]
    assert reps["2024-01-01"] == 3 * reps["2023-01-01"] == 3 * manifest["config"]["truth_reps"]
    truth = pd.read_parquet(path / "truth.parquet")
    assert truth["probability_se"].notna().all() and (truth["probability_se"] >= 0).all()
    # Paired strata bound the standard error by 1 / sqrt(2 R); a probability of 0 or 1 over 0/1 futures has none.
    bound = truth["as_of"].dt.strftime("%Y-%m-%d").map(reps).pow(-0.5) / np.sqrt(2)
    assert (truth["probability_se"] <= bound + 1e-9).all()
    certain = truth["probability"].isin([0.0, 1.0]) & (truth["target"] != "young_adult_mhsu")
    assert (truth.loc[certain, "probability_se"] == 0).all()
    rms = truth.assign(v=truth["probability_se"] ** 2).groupby(["target", "as_of"], observed=True)["v"].mean() ** 0.5
    for target in ("high_use", "elderly_low_function", "young_adult_mhsu"):
        ratio = rms[(target, pd.Timestamp("2023-01-01"))] / rms[(target, pd.Timestamp("2024-01-01"))]
        assert 1.3 < ratio < 2.4, (target, ratio)  # three times the futures: sqrt(3) = 1.73
    # The exact Poisson tail: young adults' probabilities are far more precise than 0/1 futures would allow.
    young = truth[(truth["target"] == "young_adult_mhsu") & (truth["as_of"] == "2023-01-01")]
    plain = np.sqrt(young["probability"] * (1 - young["probability"]) / reps["2023-01-01"])
    assert young["probability_se"].mean() < 0.7 * plain.mean()


def test_half_estimate_is_unbiased_and_corrects_the_oracle_auroc():
    # Half estimate by hand: pairs (1,0), (1,1) and an odd last future of half weight.
    assert half_mean(np.array([[1, 0, 1, 1, 0]], float)).tolist() == pytest.approx([(2 * (1 + 1) + 0) / 5])
    # Clients with known probabilities; outcomes drawn from them; probabilities estimated from R futures.
    rng = np.random.default_rng(4)
    n, reps = 40_000, 16
    p = rng.beta(0.5, 4.0, n)
    y = rng.random(n) < p
    futures = rng.random((n, reps)) < p[:, None]
    full, half = mean_and_se(futures)[0], half_mean(futures)
    assert abs(half.mean() - p.mean()) < 4 * half.std() / np.sqrt(n)
    exact = oracle_auroc(y, p)["auroc"]
    got = oracle_auroc(y, full, half)
    assert got["auroc_half"] < got["auroc"] < exact  # noise lowers the AUROC, more noise lowers it more
    # The correction removes most of the bias.
    assert abs(got["auroc_limit"] - exact) < 0.35 * (exact - got["auroc"])


def test_truth_is_deterministic_with_the_seed(tmp_path):
    cfg = SynthConfig(clients=300, seed=7, start="2022-01-01", end="2024-12-31", truth_reps=2,
                      evaluated_reps_factor=2, workers=1)
    generate_county(tmp_path / "a", cfg)
    generate_county(tmp_path / "b", cfg)
    generate_county(tmp_path / "c", SynthConfig(**{**cfg.__dict__, "seed": 8}))
    digest = lambda p: hashlib.sha256((p / "truth.parquet").read_bytes()).hexdigest()  # noqa: E731
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    a = pd.read_parquet(tmp_path / "a" / "truth.parquet")
    assert sorted(a["as_of"].dt.strftime("%Y-%m-%d").unique()) == ["2023-01-01", "2024-01-01"]
    assert "probability_se" in a and a["probability_se"].gt(0).any()
    assert a["probability_half"].between(0, 1).all()


def test_evaluated_dates_are_validated(tmp_path):
    with pytest.raises(ValueError, match="evaluated_dates"):
        generate_county(tmp_path / "x", SynthConfig(clients=10, evaluated_dates=("2024-13-01",)))
    with pytest.raises(ValueError, match="evaluated_reps_factor"):
        generate_county(tmp_path / "y", SynthConfig(clients=10, evaluated_reps_factor=0))
