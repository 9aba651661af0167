"""Hyper-parameter search for the LightGBM model with Optuna, inside the training date only.

Each trial fits on the training slice and is judged by AUROC on the
client-disjoint early-stopping slice of the same index date; the calibration
slice and the later validation date are never looked at, so temporal
validation of the tuned model stays honest. The sampler is seeded: with a
trial limit (and no time limit reached) the same data give the same search.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

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


def tune(training: pd.DataFrame, config, spec, spec_yaml: str, dictionary: pd.DataFrame, *,
         n_trials: int | None = None, seconds: float | None = None, progress=None) -> TuneResult:
    """Search :data:`SEARCH_SPACE` with a seeded TPE sampler.

    Parameters
    ----------
    training
        The training-date set (features, ``client_id``, ``label``).
    config
        :class:`models.train.TrainConfig`; its seed seeds the sampler and the
        splits, its other values are the starting point (trial 0).
    n_trials, seconds
        Stop after this many trials or this much time, whichever comes first
        (defaults: ``config.tune_trials`` and ``config.tune_seconds``).

    Returns
    -------
    TuneResult
    """
    import optuna
    from sklearn.metrics import roc_auc_score

    from models.train import _prepared, fit_booster

    n_trials = config.tune_trials if n_trials is None else n_trials
    seconds = config.tune_seconds if seconds is None else seconds
    shell, X, y, categorical, (fit_rows, stop_rows, _) = _prepared(training, config, spec, spec_yaml, dictionary)
    X_stop, y_stop = X[stop_rows], y[stop_rows]
    rows = []

    def objective(trial) -> float:
        params = {}
        for name, (low, high, log, integer) in SEARCH_SPACE.items():
            suggest = trial.suggest_int if integer else trial.suggest_float
            params[name] = suggest(name, int(low) if integer else low, int(high) if integer else high, log=log)
        t0 = time.perf_counter()
        booster = fit_booster(X, y, fit_rows, stop_rows, categorical, replace(config, **params))
        auroc = float(roc_auc_score(y_stop, booster.predict(X_stop, num_iteration=booster.best_iteration)))
        rows.append({"trial": trial.number, **params, "auroc": auroc, "rounds": booster.best_iteration,
                     "seconds": round(time.perf_counter() - t0, 2)})
        if progress:
            progress(f"trial {trial.number}: AUROC {auroc:.4f} ({booster.best_iteration} rounds)")
        return auroc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial({name: getattr(config, name) for name in SEARCH_SPACE})  # the defaults are trial 0
    study.optimize(objective, n_trials=n_trials, timeout=seconds)
    trials = pd.DataFrame(rows)
    best = trials.loc[int(np.argmax(trials["auroc"].to_numpy()))]
    params = {name: (int(best[name]) if SEARCH_SPACE[name][3] else float(best[name])) for name in SEARCH_SPACE}
    return TuneResult(params, float(best["auroc"]), trials)
