"""Label-free performance estimation: what a list will realise if its probabilities are calibrated.

Confidence-based performance estimation (CBPE; the method NannyML calls by
that name): when a list's probabilities are calibrated, P(outcome | p) = p,
the outcomes its clients will have are independent Bernoulli(p) draws. Every
figure the list will realise once the horizon has passed -- AUROC, the
precision and recall of its top 1, 2 and 5 % -- then has a known expectation
and a known spread, computable on the day the list is scored:

- expected precision of the top k: the mean probability of those k;
- expected recall of the top k: their summed probability over the list's;
- expected AUROC: every (client i, client j) pair counts with the chance that
  i has the outcome and j does not, ``p_i (1 - p_j)``, towards a correct
  order when i ranks above j (ties half) -- the Mann-Whitney statistic with
  probabilities in place of outcomes (:func:`expected_auroc`);
- the 95 % range: the figures of seeded simulated outcome draws
  (:func:`simulated_ranges`) -- how far the realised figure may land from the
  expectation by chance alone, with calibration taken as given.

The estimate holds under covariate shift (a different mix of clients) for as
long as the probabilities stay calibrated for each kind of client; it cannot
see a change in what the outcome means or in how likely it is at given
features (concept shift), and it is too optimistic when the calibration is
over-confident (an isotonic fit on a small calibration slice). Calibration
itself cannot be estimated without outcomes: it is the assumption.
"""
from __future__ import annotations

import zlib

import numpy as np
from scipy.stats import rankdata

#: Simulated outcome draws behind each 95 % range.
DRAWS = 200
#: Draws simulated at a time (bounds memory: DRAW_CHUNK x clients floats).
DRAW_CHUNK = 25


def expected_auroc(p: np.ndarray, score: np.ndarray | None = None) -> float:
    """The AUROC a ranking by ``score`` is expected to realise when outcomes are Bernoulli(``p``).

    Parameters
    ----------
    p
        Calibrated probabilities of the outcome.
    score
        The ranking score (default ``p`` itself); ties count one half.

    Returns
    -------
    float
        ``sum_{i != j} p_i (1 - p_j) [s_i > s_j] (+ half for ties) / sum_{i != j} p_i (1 - p_j)``,
        the ratio of the expected concordant pairs to the expected pairs (NaN for fewer than two clients).
    """
    p = np.asarray(p, dtype=float)
    score = p if score is None else np.asarray(score, dtype=float)
    if len(p) < 2:
        return float("nan")
    q = 1.0 - p
    _, level = np.unique(score, return_inverse=True)
    pos, neg = np.bincount(level, weights=p), np.bincount(level, weights=q)
    below = np.cumsum(neg) - neg  # expected negatives strictly below each score level
    concordant = (pos * below).sum() + 0.5 * ((pos * neg).sum() - (p * q).sum())  # a client never pairs with itself
    pairs = p.sum() * q.sum() - (p * q).sum()
    return float(concordant / pairs) if pairs > 0 else float("nan")


def expected_top(p: np.ndarray, top: np.ndarray) -> tuple[float, float]:
    """Expected precision and recall of the clients at positions ``top`` of a list with probabilities ``p``."""
    p = np.asarray(p, dtype=float)
    hits = float(p[top].sum())
    total = float(p.sum())
    return hits / max(len(top), 1), (hits / total if total > 0 else float("nan"))


def group_seed(seed: int, *names: str) -> int:
    """A stable seed for one group of one scope (CRC-32 of its names mixed with ``seed``)."""
    return (zlib.crc32("/".join(names).encode("utf-8")) ^ int(seed)) & 0xFFFFFFFF


def simulated_ranges(p: np.ndarray, score: np.ndarray, tops: dict[str, np.ndarray], *, draws: int = DRAWS,
                     seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """The central ``level`` range of AUROC and of precision and recall at each top, over simulated outcomes.

    Parameters
    ----------
    p
        Calibrated probabilities.
    score
        The ranking score (the list's probability; ties count one half in the AUROC).
    tops
        Name (``top5pct``) to the positions of the clients in that top.
    draws, seed
        Number of outcome draws and the seed of the generator (same inputs, same ranges).

    Returns
    -------
    dict
        ``auroc`` and ``precision_<top>``, ``recall_<top>`` for each top: ``(low, high)``.
        A draw with no outcome or no non-outcome has no AUROC and is left out of it.
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    ranks = rankdata(score)  # average ranks: ties count one half
    rng = np.random.default_rng(seed)
    auroc, hits = [], {name: [] for name in tops}
    totals = []
    for start in range(0, draws, DRAW_CHUNK):
        size = min(DRAW_CHUNK, draws - start)
        y = (rng.random((size, n)) < p).astype(np.float64)
        m = y.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auroc.append(np.where((m > 0) & (m < n), (y @ ranks - m * (m + 1) / 2) / (m * (n - m)), np.nan))
        totals.append(m)
        for name, rows in tops.items():
            hits[name].append(y[:, rows].sum(axis=1))
    tail = (1 - level) / 2
    auroc_all = np.concatenate(auroc)
    total = np.concatenate(totals)
    out = {"auroc": _range(auroc_all, tail)}
    for name, rows in tops.items():
        h = np.concatenate(hits[name])
        out[f"precision_{name}"] = _range(h / max(len(rows), 1), tail)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"recall_{name}"] = _range(np.where(total > 0, h / total, np.nan), tail)
    return out


def _range(values: np.ndarray, tail: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
