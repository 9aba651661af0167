"""Hyper-parameter search for the LightGBM model with Optuna, inside the training date only.

Each trial fits on the training slice and is judged by AUROC on the
client-disjoint early-stopping slice of the same index date; the calibration
slice and the later validation date are never looked at, so temporal
validation of the tuned model stays honest. The sampler is seeded: with a
trial limit (and no time limit reached) the same data give the same search.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

# name: (low, high, log scale, integer)
SEARCH_SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.02, 0.2, True, False),
    "num_leaves": (15, 127, True, True),
    "min_child_samples": (20, 400, True, True),
    "feature_fraction": (0.5, 1.0, False, False),
    "bagging_fraction": (0.5, 1.0, False, False),
    "lambda_l2": (1e-3, 10.0, True, False),
}


@dataclass
class TuneResult:
    """The best parameters and every trial (one row each: number, parameters, AUROC, rounds, seconds)."""

    best_params: dict
    best_auroc: float
    trials: pd.DataFrame


def tune(X: pd.DataFrame, y: np.ndarray, groups, config, *, n_trials: int | None = None,
         seconds: float | None = None, progress=None) -> TuneResult:
    """Search :data:`SEARCH_SPACE` with a seeded TPE sampler.

    Parameters
    ----------
    X, y, groups
        The training date's feature columns, outcomes and client ids (the
        estimator's client-disjoint split uses them, as training does).
    config
        A :class:`models.train.TrainConfig`; its seed seeds the sampler and the
        split, its other values are the starting point (trial 0), and
        ``config.estimator(**params)`` builds each trial's estimator.
    n_trials, seconds
        Stop after this many trials or this much time, whichever comes first
        (defaults: ``config.tune_trials`` and ``config.tune_seconds``).

    Returns
    -------
    TuneResult
    """
    import optuna
    from sklearn.metrics import roc_auc_score

    from models.estimator import client_split

    n_trials = config.tune_trials if n_trials is None else n_trials
    seconds = config.tune_seconds if seconds is None else seconds
    y = np.asarray(y, dtype=int)
    stop = client_split(groups, config.holdout, config.seed).stop
    X_stop, y_stop = X[stop], y[stop]
    rows = []

    def objective(trial) -> float:
        params = {}
        for name, (low, high, log, integer) in SEARCH_SPACE.items():
            suggest = trial.suggest_int if integer else trial.suggest_float
            params[name] = suggest(name, int(low) if integer else low, int(high) if integer else high, log=log)
        t0 = time.perf_counter()
        estimator = config.estimator(**params).fit(X, y, groups=groups)
        auroc = float(roc_auc_score(y_stop, estimator.raw_probability(X_stop)))
        rows.append({"trial": trial.number, **params, "auroc": auroc, "rounds": estimator.best_iteration_,
                     "seconds": round(time.perf_counter() - t0, 2)})
        if progress:
            progress(f"trial {trial.number}: AUROC {auroc:.4f} ({estimator.best_iteration_} rounds)")
        return auroc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial({name: getattr(config, name) for name in SEARCH_SPACE})  # the defaults are trial 0
    study.optimize(objective, n_trials=n_trials, timeout=seconds)
    trials = pd.DataFrame(rows)
    best = trials.loc[int(np.argmax(trials["auroc"].to_numpy()))]
    params = {name: (int(best[name]) if SEARCH_SPACE[name][3] else float(best[name])) for name in SEARCH_SPACE}
    return TuneResult(params, float(best["auroc"]), trials)
