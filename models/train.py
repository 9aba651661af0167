"""Training a service-need model with temporal validation, baselines, equity metrics, SHAP and MLflow."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.config.defaults import DEFAULT_TARGET, TRAIN_AS_OF, VALID_AS_OF
from models.baselines import BASELINE_COLUMNS, PriorCostBaseline, age_sex_comorbidity_model
from models.calibration import ProbabilityCalibrator
from models.metrics import age_band, binary_metrics, group_metrics

LABEL_COLUMNS = ("label", "target", "horizon_cost", "horizon_events", "observed_days", "died_in_horizon",
                 "moved_out_in_horizon", "threshold")
EQUITY_GROUPS = ("sex", "language", "age_band", "municipality")
PIP_REQUIREMENTS = ["lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "duckdb", "pandera", "pyyaml"]


@dataclass
class TrainConfig:
    """What to train.

    Parameters
    ----------
    target
        Target name in ``features/config/targets.yaml``.
    train_as_of, valid_as_of
        Index dates: the model learns from the earlier and is judged on the later only.
    seed
        Seed of every random step (splits, LightGBM).
    calibration
        ``isotonic`` or ``platt``.
    holdout
        Share of training-date clients held out (half for early stopping, half for calibration).
    tune, tune_trials, tune_seconds
        Search LightGBM's hyper-parameters with Optuna (seeded TPE) first, for
        at most ``tune_trials`` trials or ``tune_seconds``, whichever ends
        first; see :mod:`models.tune`. Trials are logged as nested runs.
    """

    target: str = DEFAULT_TARGET
    train_as_of: str = TRAIN_AS_OF
    valid_as_of: str = VALID_AS_OF
    seed: int = 0
    calibration: str = "isotonic"
    holdout: float = 0.3
    n_estimators: int = 2000
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    early_stopping_rounds: int = 100
    shap_sample: int = 5000
    tune: bool = False
    tune_trials: int = 30
    tune_seconds: float = 600.0


@dataclass
class TrainResult:
    """What a training run produced (figures as tables; the model as the logged pyfunc object)."""

    config: TrainConfig
    metrics: pd.DataFrame
    groups: pd.DataFrame
    importance: pd.DataFrame
    model: object
    run_id: str | None = None
    model_uri: str | None = None
    version: str | None = None
    promoted: bool | None = None
    decision: str = ""
    digests: dict = field(default_factory=dict)
    tuning: pd.DataFrame | None = None


def _split(ids: pd.Series, seed: int) -> np.ndarray:
    """A client-disjoint uniform number in [0, 1) per row, from a seeded hash of the client id."""
    h = pd.util.hash_array(ids.astype(str).to_numpy(object), hash_key=f"sote{seed:012d}"[:16])
    return (h % np.uint64(1_000_000)).astype(float) / 1_000_000


def frame_digest(frame: pd.DataFrame) -> str:
    """A short, stable digest of a table's contents (identifiers are hashed, never logged)."""
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


def _feature_columns(training: pd.DataFrame, spec) -> tuple[list[str], list[str]]:
    names = [c for c in spec.column_names() if c != "client_id" and c in training.columns]
    categorical = [c for c in names if training[c].dtype == object or pd.api.types.is_string_dtype(training[c])]
    return names, categorical


def _oracle(truth_path: Path | None, ids: pd.Series, as_of: pd.Timestamp, target: str) -> np.ndarray | None:
    if truth_path is None or not truth_path.exists():
        return None
    truth = pd.read_parquet(truth_path, filters=[("target", "==", target)])
    truth = truth[pd.to_datetime(truth["as_of"]) == as_of].set_index("client_id")["probability"]
    p = truth.reindex(ids.astype(str).to_numpy()).to_numpy(dtype=float)
    return None if np.isnan(p).any() else p


def _prepared(training: pd.DataFrame, config: TrainConfig, spec, spec_yaml: str, dictionary: pd.DataFrame):
    """The model shell, its input frame, labels, categorical columns and the three client-disjoint slices."""
    from models.pyfunc import ServiceNeedModel

    names, categorical = _feature_columns(training, spec)
    levels = {c: sorted(training[c].dropna().astype(str).unique()) for c in categorical}
    u = _split(training["client_id"], config.seed)
    fit_rows, stop_rows, cal_rows = u >= config.holdout, u < config.holdout / 2, (u >= config.holdout / 2) & (
        u < config.holdout)
    y = training["label"].to_numpy(dtype=int)
    if min(y[fit_rows].sum(), y[stop_rows].sum(), y[cal_rows].sum()) < 2:
        raise ValueError(f"too few positive outcomes in the training date to train {config.target!r} "
                         f"({int(y.sum())} in {len(y)} cohort members); use a larger county or another date")
    shell = ServiceNeedModel(None, None, names, levels, spec, spec_yaml, config.target, dictionary)
    return shell, shell.frame(training), y, categorical, (fit_rows, stop_rows, cal_rows)


def fit_booster(X: pd.DataFrame, y: np.ndarray, fit_rows: np.ndarray, stop_rows: np.ndarray, categorical: list[str],
                config: TrainConfig):
    """LightGBM on ``fit_rows`` with early stopping on the client-disjoint ``stop_rows``."""
    import lightgbm as lgb

    params = dict(objective="binary", learning_rate=config.learning_rate, num_leaves=config.num_leaves,
                  min_child_samples=config.min_child_samples, feature_fraction=config.feature_fraction,
                  bagging_fraction=config.bagging_fraction, bagging_freq=1, lambda_l2=config.lambda_l2,
                  seed=config.seed, deterministic=True, force_row_wise=True, num_threads=2, verbose=-1)
    train_set = lgb.Dataset(X[fit_rows], y[fit_rows], categorical_feature=categorical or "auto")
    stop_set = lgb.Dataset(X[stop_rows], y[stop_rows], reference=train_set)
    booster = lgb.train(params, train_set, num_boost_round=config.n_estimators, valid_sets=[stop_set],
                        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    booster.free_dataset()
    return booster


def fit_model(training: pd.DataFrame, config: TrainConfig, spec, spec_yaml: str, dictionary: pd.DataFrame):
    """Fit LightGBM on the training date (early stopping and calibration on client-disjoint held-out slices).

    Returns the :class:`~models.pyfunc.ServiceNeedModel` and the number of boosting rounds kept.
    """
    shell, X, y, categorical, (fit_rows, stop_rows, cal_rows) = _prepared(training, config, spec, spec_yaml,
                                                                          dictionary)
    booster = fit_booster(X, y, fit_rows, stop_rows, categorical, config)
    shell.booster = booster
    shell.calibrator = ProbabilityCalibrator(config.calibration).fit(shell.raw_probability(training[cal_rows]),
                                                                     y[cal_rows])
    return shell, booster.best_iteration


def evaluate(model, training: pd.DataFrame, validation: pd.DataFrame, oracle: np.ndarray | None, seed: int
             ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Metrics of the model, its baselines and the oracle on the validation date, and per-group metrics."""
    y_tr, y_va = training["label"].to_numpy(int), validation["label"].to_numpy(int)
    scores = {"lightgbm": model.predict_proba(validation)}
    base_cols = [c for c in BASELINE_COLUMNS if c in training]
    if "cost_total_365d" in base_cols:
        scores["prior_cost"] = PriorCostBaseline().fit(training, y_tr).predict_proba(validation)[:, 1]
    if {"age", "sex", "charlson_index", "chronic_conditions"} <= set(base_cols):
        logit = age_sex_comorbidity_model(seed).fit(training[base_cols], y_tr)
        scores["age_sex_comorbidity"] = logit.predict_proba(validation[base_cols])[:, 1]
    if oracle is not None:
        scores["oracle"] = oracle
    metrics = pd.DataFrame([{"model": name, **binary_metrics(y_va, p)} for name, p in scores.items()])
    groups = validation[[c for c in ("sex", "language", "municipality") if c in validation]].copy()
    if "age" in validation:
        groups["age_band"] = age_band(validation["age"])
    group_table = group_metrics(y_va, scores["lightgbm"], groups[[c for c in EQUITY_GROUPS if c in groups]])
    return metrics, group_table, scores


def train(data, config: TrainConfig = TrainConfig(), *, experiment: str | None = None, register: bool = False,
          tracking_uri: str | None = None, log: bool = True, truth: str | Path | None = None,
          histories=None, progress=None) -> TrainResult:
    """Train, evaluate and (optionally) log and register a model for one target.

    Parameters
    ----------
    data
        A data folder or validated tables (:func:`features.contract.load.load_tables`).
    config
        Target, index dates and hyper-parameters.
    experiment
        MLflow experiment name (default ``sote-<target>``).
    register
        Register the model under the target's name; move the ``champion``
        alias to it only if it beats the current champion on the validation date.
    tracking_uri
        MLflow tracking URI (default: the local store under ``mlruns/``).
    log
        Log to MLflow at all (False: train and evaluate only, e.g. in tests of the pieces).
    truth
        Ground-truth file for the oracle (default: ``truth.parquet`` in a data folder, if present).
    histories
        A :class:`~features.histories.build.ClientHistories` over ``data`` to reuse (cached) feature tables.
    progress
        Optional callable receiving short status messages.
    """
    from features.histories.dictionary import feature_dictionary
    from features.targets.labels import build_training_set, load_targets
    from features.contract.load import load_tables
    from features.histories.spec import load_spec
    from models.explain import contributions, global_importance

    say = progress or (lambda msg: None)
    targets = load_targets()
    if config.target not in targets:
        raise ValueError(f"unknown target {config.target!r}; declared: {sorted(targets)}")
    t_train, t_valid = pd.Timestamp(config.train_as_of), pd.Timestamp(config.valid_as_of)
    if t_valid < t_train + pd.Timedelta(days=targets[config.target].horizon_days):
        raise ValueError(f"valid_as_of {t_valid.date()} must be at least one horizon after train_as_of "
                         f"{t_train.date()}, or training labels would overlap the validation period")
    truth_path = Path(truth) if truth else (Path(data) / "truth.parquet" if isinstance(data, (str, Path)) else None)
    tables = load_tables(data) if isinstance(data, (str, Path)) else data
    max_day = tables.tables["events"]["start"].max()
    if max_day < t_valid + pd.Timedelta(days=targets[config.target].horizon_days - 1):
        raise ValueError(f"the data end on {max_day.date()}, before the validation horizon of {t_valid.date()} ends")

    say("building training and validation sets")
    spec = load_spec()
    spec_yaml = (Path(__file__).resolve().parents[1] / "features" / "config" / "features.yaml").read_text()
    both = build_training_set(tables, [t_train, t_valid], config.target, histories=histories)
    training = both[both["as_of"] == t_train].reset_index(drop=True)
    validation = both[both["as_of"] == t_valid].reset_index(drop=True)
    say(f"training LightGBM on {len(training):,} clients ({int(training['label'].sum()):,} positive)")
    dictionary = feature_dictionary(spec)
    tuning = None
    if config.tune:
        from models.tune import tune

        say(f"tuning: up to {config.tune_trials} trials or {config.tune_seconds:.0f} s")
        tuned = tune(training, config, spec, spec_yaml, dictionary, progress=say)
        config = replace(config, **tuned.best_params)
        tuning = tuned.trials
        say(f"tuning: best AUROC {tuned.best_auroc:.4f} on the early-stopping slice after {len(tuning)} trials")
    model, rounds = fit_model(training, config, spec, spec_yaml, dictionary)

    say(f"evaluating on {len(validation):,} clients of {t_valid.date()}")
    oracle = _oracle(truth_path, validation["client_id"], t_valid, config.target)
    metrics, groups, scores = evaluate(model, training, validation, oracle, config.seed)
    sample = validation.sample(min(len(validation), config.shap_sample), random_state=config.seed)
    contrib, base = contributions(model.booster, model.frame(sample))
    importance = global_importance(contrib)
    feature_names = model.columns
    digests = {"training_rows": frame_digest(training.drop(columns=["client_id"])),
               "validation_rows": frame_digest(validation.drop(columns=["client_id"]))}
    result = TrainResult(config, metrics, groups, importance, model, digests=digests, tuning=tuning)
    if log:
        _log_run(result, training, validation, scores, targets[config.target], rounds, experiment, register,
                 tracking_uri, truth_path, feature_names, say)
    return result


def _typical_row(model, training: pd.DataFrame) -> pd.DataFrame:
    """An input example that is no client: medians of numbers, the most common category levels.

    Columns keep the feature table's types, so the logged signature accepts
    feature tables exactly as ``build_features`` returns them.
    """
    row = {}
    for c in model.columns:
        col = training[c]
        if c in model.categories:
            row[c] = pd.array([str(col.mode(dropna=True).iloc[0]) if col.notna().any() else None], dtype="string")
        elif pd.api.types.is_integer_dtype(col):
            row[c] = np.array([int(round(float(col.median())))], dtype=col.dtype)
        else:
            row[c] = np.array([float(col.median())])
    return pd.DataFrame(row)


def _log_run(result: TrainResult, training, validation, scores, target, rounds, experiment, register,
             tracking_uri, truth_path, feature_names, say) -> None:
    import mlflow
    from mlflow.models import infer_signature

    from models import plots
    from models.card import model_card
    from models.registry import champion_challenger
    from models.tracking import configure_tracking, ensure_experiment

    config = result.config
    configure_tracking(tracking_uri)
    name = experiment or f"sote-{config.target}"
    ensure_experiment(name)
    mlflow.set_experiment(name)
    y_va = validation["label"].to_numpy(int)
    params = {**{k: v for k, v in asdict(config).items()}, "boosting_rounds": rounds, "n_features": len(feature_names),
              "n_train": len(training), "n_valid": len(validation)}
    say("logging to MLflow")
    with mlflow.start_run(run_name=f"{config.target} {config.train_as_of}→{config.valid_as_of}") as run:
        mlflow.log_params(params)
        mlflow.set_tags({"target": config.target, "train_as_of": config.train_as_of,
                         "valid_as_of": config.valid_as_of, **{f"digest_{k}": v for k, v in result.digests.items()}})
        for row in result.metrics.to_dict("records"):
            prefix = "valid" if row["model"] == "lightgbm" else f"valid_{row['model']}"
            mlflow.log_metrics({f"{prefix}_{k}": float(v) for k, v in row.items() if k != "model" and pd.notna(v)})
        if truth_path is not None and truth_path.exists():
            mlflow.set_tag("truth_digest", hashlib.sha256(truth_path.read_bytes()).hexdigest()[:16])
        mlflow.log_text(result.metrics.to_csv(index=False), "evaluation/metrics.csv")
        mlflow.log_text(result.groups.to_csv(index=False), "evaluation/group_metrics.csv")
        mlflow.log_text(result.importance.to_csv(index=False), "explanations/global_importance.csv")
        mlflow.log_text(result.model.spec_yaml, "model_spec/features.yaml")
        figures = {"roc_pr": plots.roc_pr(y_va, scores), "calibration": plots.calibration(y_va, scores),
                   "capacity_lift": plots.capacity(y_va, scores), "group_auroc": plots.group_auroc(result.groups),
                   "shap_summary": plots.shap_summary(result.importance)}
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"plots/{name}.png")
        if result.tuning is not None:
            mlflow.log_text(result.tuning.to_csv(index=False), "tuning/trials.csv")
            for trial in result.tuning.to_dict("records"):
                with mlflow.start_run(run_name=f"trial {trial['trial']}", nested=True):
                    mlflow.log_params({k: v for k, v in trial.items() if k not in ("auroc", "rounds", "seconds")})
                    mlflow.log_metrics({"stop_slice_auroc": trial["auroc"], "rounds": trial["rounds"],
                                        "seconds": trial["seconds"]})
        cohort = ", ".join(f"{k}={v}" for k, v in asdict(target.cohort).items() if v not in (None, (), [])) or "everyone"
        mlflow.log_text(model_card(target=config.target, description=target.description, cohort=cohort,
                                   train_as_of=config.train_as_of, valid_as_of=config.valid_as_of,
                                   horizon_days=target.horizon_days, n_train=len(training), n_valid=len(validation),
                                   metrics=result.metrics, groups=result.groups, importance=result.importance,
                                   params=params), "model_card.md")
        example = _typical_row(result.model, training)
        signature = infer_signature(example, result.model.predict_proba(example))
        info = mlflow.pyfunc.log_model(name="model", python_model=result.model, signature=signature,
                                       input_example=example, pip_requirements=PIP_REQUIREMENTS,
                                       registered_model_name=config.target if register else None)
        result.run_id, result.model_uri = run.info.run_id, info.model_uri
        if register:
            result.version = str(info.registered_model_version)
            result.promoted, result.decision = champion_challenger(config.target, result.version, validation, y_va,
                                                                   float(result.metrics.iloc[0]["auroc"]))
            mlflow.set_tags({"registered_version": result.version, "promoted_to_champion": str(result.promoted)})
            mlflow.log_text(result.decision, "registry_decision.txt")
            mlflow.log_text(json.dumps({"version": result.version, "promoted": result.promoted}), "registry.json")
