"""Training a service-need model with temporal validation, baselines, equity metrics, SHAP and MLflow."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.config.defaults import DEFAULT_TARGET, TRAIN_AS_OF, VALID_AS_OF
from models.calibration import calibration_at_top
from models.baselines import AGE_SEX_COMORBIDITY_COLUMNS, PriorCostBaseline, age_sex_comorbidity_model
from models.estimator import ServiceNeedClassifier, TooFewOutcomesError
from models.gate import GateResult, QualityGateError
from models.metrics import age_band, binary_metrics, group_metrics
from models.pyfunc import ServiceNeedModel

EQUITY_GROUPS = ("sex", "language", "age_band", "municipality")
#: TrainConfig fields that are ServiceNeedClassifier parameters of the same name.
ESTIMATOR_SETTINGS = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "feature_fraction",
                      "bagging_fraction", "lambda_l2", "early_stopping_rounds")
PIP_REQUIREMENTS = ["lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "duckdb", "pandera", "pyyaml"]


@dataclass
class TrainConfig:
    """What to train.

    Parameters
    ----------
    target
        Target name in ``features/config/targets.yaml``.
    spec
        Feature spec YAML the features are built with (None: the packaged
        ``features/config/features.yaml``). The logged model carries the spec,
        and scoring rebuilds features with it.
    train_as_of, valid_as_of
        Index dates: the model learns from the earlier and is judged on the later only.
    seed
        Seed of every random step (splits, LightGBM).
    calibration
        ``isotonic`` or ``platt``.
    holdout
        Share of training-date clients held out (half for early stopping, half for calibration).
    n_estimators, learning_rate, num_leaves, min_child_samples, feature_fraction, bagging_fraction, lambda_l2, \
early_stopping_rounds
        LightGBM's settings (:class:`~models.estimator.ServiceNeedClassifier`).
    shap_sample
        Validation clients behind the global SHAP importance.
    tune, tune_trials, tune_seconds
        Search LightGBM's hyper-parameters with Optuna (seeded TPE) first, for
        at most ``tune_trials`` trials or ``tune_seconds``, whichever ends
        first; see :mod:`models.tune`. Trials are logged as nested runs.
    max_train_rows
        At most this many training-date cohort members are fitted on (None: all):
        a larger cohort is sampled, seeded, within each label so the outcome
        share stays the cohort's (:func:`sample_training_rows`). The validation
        date is never sampled.
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
    spec: str | None = None
    max_train_rows: int | None = 300_000

    def estimator(self, **overrides) -> ServiceNeedClassifier:
        """The unfitted estimator these settings describe (``overrides`` replace single settings)."""
        settings = {name: getattr(self, name) for name in ESTIMATOR_SETTINGS} | overrides
        return ServiceNeedClassifier(**settings, calibration=self.calibration, holdout=self.holdout,
                                     random_state=self.seed)


@dataclass
class TrainResult:
    """What a training run produced.

    ``metrics`` and ``groups`` are the analysts' full tables; MLflow receives
    them with small cells suppressed (:func:`models.metrics.disclosed_groups`).
    ``model`` is the logged :class:`~models.pyfunc.ServiceNeedModel`; ``gate`` the quality gate's verdict.
    ``rows``: training-date rows ``available`` and ``used`` (sampled down to
    ``TrainConfig.max_train_rows``, :func:`sample_training_rows`; logged as ``train_rows_*`` params).
    ``reference`` is the drift reference stored with the model as ``reference/summary.json``
    (:func:`models.drift_reference.model_reference`: binned summaries of the training rows, never rows).
    ``top_calibration`` is :func:`models.calibration.calibration_at_top` of the
    model on the validation date (top 2 % and 5 %); ``top`` describes the
    validation date's top 5 % (:func:`top_of_validation`): who they are and the
    reason-type mix of their top-3 reasons. ``bias`` is the label-bias check on the
    validation date (:func:`models.bias.label_bias`: need indicators that are not the label,
    compared across groups at equal predicted risk), None if the validation frame has none of
    its groupings or indicators. ``oracle`` holds the oracle's AUROC on the validation date when
    the generator's truth is known (:func:`models.metrics.oracle_auroc`: ``auroc``,
    ``auroc_half`` and the bias-corrected ``auroc_limit``), else it is empty.
    """

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
    gate: GateResult | None = None
    top_calibration: pd.DataFrame | None = None
    top: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    bias: object = None
    oracle: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)


def _spec_text(path: str | None) -> str:
    """The spec's YAML text: the file, or the packaged ``features.yaml``."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    from importlib import resources

    return resources.files("features.config").joinpath("features.yaml").read_text(encoding="utf-8")


def _feature_columns(training: pd.DataFrame, spec) -> list[str]:
    return [c for c in spec.column_names() if c != "client_id" and c in training.columns]


def _oracle(truth_path: Path | None, ids: pd.Series, as_of: pd.Timestamp, target: str
            ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The generator's probabilities for ``ids`` at ``as_of`` and their half-futures estimate (if recorded).

    None without a truth file or when it lacks a client; the half estimate is None when the truth
    predates ``probability_half`` (the oracle's bias-corrected AUROC then cannot be given).
    """
    if truth_path is None or not truth_path.exists():
        return None
    truth = pd.read_parquet(truth_path, filters=[("target", "==", target)])
    truth = truth[pd.to_datetime(truth["as_of"]) == as_of].set_index("client_id")
    rows = truth.reindex(ids.astype(str).to_numpy())
    p = rows["probability"].to_numpy(dtype=float)
    if np.isnan(p).any():
        return None
    half = rows["probability_half"].to_numpy(dtype=float) if "probability_half" in rows else None
    return p, (None if half is None or np.isnan(half).any() else half)


def sample_training_rows(training: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``training``, the same share drawn from each label (seeded; order kept).

    Proportional stratified sampling (:func:`features.targets.labels.stratified_rows`):
    the positives keep their share of ``max_rows`` (rounded up, so a rare outcome never
    loses a row to rounding), the negatives the rest, so the outcome rate — which the
    calibration slice learns — is the cohort's own. Rows are clients (one per client at
    the training date), so a client is in or out whole. :func:`train` samples the labels
    before any feature is built (:func:`~features.targets.labels.build_training_set`
    ``max_rows``), which keeps the same rows.
    """
    from features.targets.labels import stratified_rows

    if max_rows is None or len(training) <= max_rows:
        return training
    return training.iloc[stratified_rows(training["label"].to_numpy(int), max_rows, seed)].reset_index(drop=True)


def fit_model(training: pd.DataFrame, config: TrainConfig, spec, spec_yaml: str, dictionary: pd.DataFrame,
              cohort=None) -> ServiceNeedModel:
    """Fit the estimator on the training date's cohort and wrap it with what scoring needs.

    The estimator (:class:`~models.estimator.ServiceNeedClassifier`) keeps each
    client in one of its fit, early-stopping and calibration slices.

    Raises
    ------
    ValueError
        When a slice has too few outcomes to fit and calibrate.
    """
    names = _feature_columns(training, spec)
    y = training["label"].to_numpy(dtype=int)
    try:
        estimator = config.estimator().fit(training[names], y, groups=training["client_id"])
    except TooFewOutcomesError as err:
        raise ValueError(f"too few positive outcomes in the training date to train {config.target!r} "
                         f"({int(y.sum())} in {len(y)} cohort members); use a larger county or another date "
                         f"({err})") from err
    return ServiceNeedModel(estimator, spec, spec_yaml, config.target, cohort, dictionary)


def fit_baselines(training: pd.DataFrame, seed: int) -> dict[str, object]:
    """The baselines the training date supports, fitted: ``prior_cost`` and ``age_sex_comorbidity``.

    Each takes a feature table and selects its own columns.
    """
    y = training["label"].to_numpy(int)
    fitted = {}
    if "cost_total_365d" in training:
        fitted["prior_cost"] = PriorCostBaseline().fit(training, y)
    if set(AGE_SEX_COMORBIDITY_COLUMNS) <= set(training.columns):
        fitted["age_sex_comorbidity"] = age_sex_comorbidity_model(seed).fit(training, y)
    return fitted


def evaluate(model, training: pd.DataFrame, validation: pd.DataFrame, oracle: np.ndarray | None, seed: int
             ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Metrics of the model, its baselines and the oracle on the validation date, and per-group metrics.

    Every candidate is a fitted estimator taking the feature table
    (``predict_proba(validation)[:, 1]``); the oracle is the generator's known probabilities.
    """
    y_va = validation["label"].to_numpy(int)
    candidates = {"lightgbm": model, **fit_baselines(training, seed)}
    scores = {name: est.predict_proba(validation)[:, 1] for name, est in candidates.items()}
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
        A data folder (validated once into Parquet, :func:`features.contract.stream.open_dataset`;
        features scanned by DuckDB, only the label windows read into pandas), a validated
        dataset, or validated tables (:func:`features.contract.load.load_tables`).
    config
        Target, index dates and hyper-parameters.
    experiment
        MLflow experiment name (default ``sote-<target>``).
    register
        Register the model under the target's name if it passes the quality gate
        (:mod:`models.gate`); move the ``champion`` alias to it only if it also
        beats the current champion on the validation date.
    tracking_uri
        MLflow tracking URI (default: the local store under ``mlruns/``).
    log
        Log to MLflow at all (False: train and evaluate only, e.g. in tests of the pieces).
    truth
        Ground-truth file for the oracle (default: ``truth.parquet`` in a data folder, if present).
    histories
        A :class:`~features.histories.build.ClientHistories` over ``data`` to reuse (cached) feature
        tables; used only when its spec is the one the model is trained with (``config.spec``).
    progress
        Optional callable receiving short status messages.

    Returns
    -------
    TrainResult
        With the quality gate's verdict in ``gate`` (also when not registering).

    Raises
    ------
    QualityGateError
        With ``register=True``, when the model fails the quality gate: the run is
        logged, the model is not registered; the error's ``result`` is the
        :class:`TrainResult`.
    """
    from features.histories.dictionary import feature_dictionary
    from features.histories.spec import load_spec
    from features.provenance import frame_digest
    from features.targets.labels import build_training_set, event_span
    from features.targets.spec import load_targets
    from models.bias import label_bias
    from models.drift_reference import model_reference
    from models.explain import contributions, global_importance
    from models.metrics import oracle_auroc
    from models.gate import quality_gate

    say = progress or (lambda msg: None)
    targets = load_targets()
    if config.target not in targets:
        raise ValueError(f"unknown target {config.target!r}; declared: {sorted(targets)}")
    target = targets[config.target]
    t_train, t_valid = pd.Timestamp(config.train_as_of), pd.Timestamp(config.valid_as_of)
    if t_valid < t_train + pd.Timedelta(days=target.horizon_days):
        raise ValueError(f"valid_as_of {t_valid.date()} must be at least one horizon after train_as_of "
                         f"{t_train.date()}, or training labels would overlap the validation period")
    spec = load_spec(config.spec)
    spec_yaml = _spec_text(config.spec)
    truth_path = Path(truth) if truth else (Path(data) / "truth.parquet" if isinstance(data, (str, Path)) else None)
    if isinstance(data, (str, Path)):
        from features.contract.stream import open_dataset

        with open_dataset(data) as dataset:
            return train(dataset, config, experiment=experiment, register=register, tracking_uri=tracking_uri,
                         log=log, truth=truth_path, histories=histories, progress=progress)
    tables = data
    max_day = event_span(tables)[1]
    if max_day < t_valid + pd.Timedelta(days=target.horizon_days - 1):
        raise ValueError(f"the data end on {max_day.date()}, before the validation horizon of {t_valid.date()} ends")

    if histories is not None and histories.spec != spec:
        histories = None  # built with another spec: the model's features are built afresh
    if histories is None:
        from features.histories.build import ClientHistories

        histories = ClientHistories(tables, spec)
    # the training date: labels first, then features of the sampled clients only (max_train_rows)
    say(f"building the training set of {t_train.date()}")
    training = build_training_set(tables, [t_train], config.target, spec=spec, histories=histories,
                                  max_rows=config.max_train_rows, seed=config.seed)
    rows = {"available": training.attrs["rows_available"][0], "used": len(training)}
    training.attrs = {}
    if rows["used"] < rows["available"]:
        say(f"sampled {rows['used']:,} of {rows['available']:,} training rows (max_train_rows, outcome share kept)")
    say(f"training LightGBM on {len(training):,} clients ({int(training['label'].sum()):,} positive)")
    dictionary = feature_dictionary(spec)
    tuning = None
    if config.tune:
        from models.tune import tune

        say(f"tuning: up to {config.tune_trials} trials or {config.tune_seconds:.0f} s")
        names = _feature_columns(training, spec)
        tuned = tune(training[names], training["label"].to_numpy(int), training["client_id"], config, progress=say)
        config = replace(config, **tuned.best_params)
        tuning = tuned.trials
        say(f"tuning: best AUROC {tuned.best_auroc:.4f} on the early-stopping slice after {len(tuning)} trials")
    model = fit_model(training, config, spec, spec_yaml, dictionary, cohort=target.cohort)

    say(f"building the validation set of {t_valid.date()}")  # whole: never sampled
    validation = build_training_set(tables, [t_valid], config.target, spec=spec, histories=histories)
    validation.attrs = {}
    say(f"evaluating on {len(validation):,} clients of {t_valid.date()}")
    truth_p = _oracle(truth_path, validation["client_id"], t_valid, config.target)
    metrics, groups, scores = evaluate(model, training, validation, truth_p[0] if truth_p else None, config.seed)
    oracle = oracle_auroc(validation["label"].to_numpy(int), *truth_p) if truth_p else {}
    say("label-bias check: need at equal predicted risk")
    bias = _label_bias(label_bias, validation, scores["lightgbm"], say)
    gate = quality_gate(validation["label"].to_numpy(int), scores)
    top_calibration = calibration_at_top(validation["label"].to_numpy(int), scores["lightgbm"])
    say("the validation date's top 5 %: current use and reasons")
    top = top_of_validation(model, validation, scores["lightgbm"], tables, t_valid,
                            explain_at_most=config.shap_sample, seed=config.seed)
    say(f"global importance: SHAP on {min(len(validation), config.shap_sample):,} validation clients")
    sample = validation.sample(min(len(validation), config.shap_sample), random_state=config.seed)
    contrib, _ = contributions(model.booster, model.frame(sample))
    importance = global_importance(contrib)
    digests = {"training_rows": frame_digest(training), "validation_rows": frame_digest(validation)}
    # the drift reference (sote monitor): binned summaries of the training rows and their scores, never rows
    reference = model_reference(model, training, {"target": config.target, "as_of": config.train_as_of,
                                                  "digest": digests["training_rows"]})
    result = TrainResult(config, metrics, groups, importance, model, digests=digests, tuning=tuning, gate=gate,
                         top_calibration=top_calibration, top=top, reference=reference, bias=bias, oracle=oracle,
                         rows=rows)
    if log:
        _log_run(result, training, validation, scores, target, experiment, register, tracking_uri, truth_path, say)
    if register and not gate.passed:
        raise QualityGateError(f"{config.target}: not registered; {gate.summary()}", result)
    return result


def _label_bias(check, validation: pd.DataFrame, scores: np.ndarray, say):
    """The label-bias check of the validation date, or None (said) when the frame cannot support it."""
    try:
        return check(validation, scores)
    except ValueError as err:
        say(f"label-bias check not run: {err}")
        return None


def top_of_validation(model: ServiceNeedModel, validation: pd.DataFrame, p: np.ndarray, tables, as_of,
                      share: float = 0.05, reasons: int = 3, explain_at_most: int | None = None,
                      seed: int = 0) -> dict:
    """Who the validation date's top ``share`` by the model are, and why the model ranks them there.

    Parameters
    ----------
    explain_at_most
        The reason-type mix is measured on at most this many of the top clients (a seeded
        sample when there are more; None: all of them): SHAP costs ~1 ms of CPU a client, and
        the top 5 % of a million-client validation date is 53,000 clients. The shares of
        current use are always over every top client.

    Returns
    -------
    dict
        ``clients``; ``prior_high_use`` and ``intensive_ongoing``: shares of
        them in last year's top decile of cost or in an intensive episode at the
        date (:func:`features.targets.labels.current_use_flags`; both 0 by
        construction for ``rising_high_use``); ``reason_types``: the mix of
        change, level and demographic features among their first ``reasons``
        SHAP reasons (:func:`models.explain.reason_type_mix`); ``explained``: the top
        clients the mix was measured on.
    """
    from features.targets.labels import current_use_flags
    from models.explain import contributions, reason_features, reason_type_mix, top_share_rows

    rows = top_share_rows(p, share, validation["client_id"].astype(str).to_numpy())
    ids = validation["client_id"].astype(str).to_numpy()[rows]
    flags = current_use_flags(tables, as_of).set_index("client_id")
    explained = rows
    if explain_at_most is not None and len(rows) > explain_at_most:
        explained = np.sort(np.random.default_rng(seed).choice(rows, size=explain_at_most, replace=False))
    contrib, _ = contributions(model.booster, model.frame(validation.iloc[explained]))
    return {"clients": len(rows),
            "prior_high_use": float(flags["prior_top"].reindex(ids).fillna(False).astype(bool).mean()),
            "intensive_ongoing": float(flags["intensive_ongoing"].reindex(ids).fillna(False).astype(bool).mean()),
            "reason_types": reason_type_mix(reason_features(contrib, reasons), model.dictionary, top=reasons),
            "explained": len(explained)}


def top_metrics(top_calibration: pd.DataFrame | None, top: dict) -> dict[str, float]:
    """MLflow metrics of the top of the validation list; nothing about a small cell (under 50 clients or 5 outcomes).

    ``valid_top2pct_predicted`` / ``_observed`` / ``_calibration_gap`` (and 5 %),
    ``valid_top5pct_prior_high_use_share``, ``valid_top5pct_intensive_share``,
    ``valid_top5pct_reason_change_share`` (and ``_level_``, ``_demographic_``),
    ``valid_top5pct_clients_with_change_reason``.
    """
    from features.disclosure import MIN_GROUP_CLIENTS

    out = {}
    if top_calibration is not None:
        for r in top_calibration.itertuples(index=False):
            if r.small_cell:
                continue
            tag = f"valid_top{round(r.share * 100):g}pct"
            out.update({f"{tag}_predicted": r.predicted, f"{tag}_observed": r.observed,
                        f"{tag}_calibration_gap": r.gap})
    if top and top.get("clients", 0) >= MIN_GROUP_CLIENTS:
        out.update(valid_top5pct_prior_high_use_share=top["prior_high_use"],
                   valid_top5pct_intensive_share=top["intensive_ongoing"])
        mix = top["reason_types"]
        out.update({f"valid_top5pct_reason_{kind}_share": mix[kind] for kind in ("change", "level", "demographic")},
                   valid_top5pct_clients_with_change_reason=mix["clients_with_change"])
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def _typical_row(model: ServiceNeedModel, training: pd.DataFrame) -> pd.DataFrame:
    """An input example that is no client: medians of numbers, the most common category levels.

    Columns keep the feature table's types, so the logged signature accepts
    feature tables exactly as ``build_features`` returns them.
    """
    row = {}
    for c in model.columns:
        col = training[c]
        if c in model.estimator.categories_:
            row[c] = pd.array([str(col.mode(dropna=True).iloc[0]) if col.notna().any() else None], dtype="string")
        elif pd.api.types.is_integer_dtype(col):
            row[c] = np.array([int(round(float(col.median())))], dtype=col.dtype)
        else:
            row[c] = np.array([float(col.median())])
    return pd.DataFrame(row)


def _log_run(result: TrainResult, training, validation, scores, target, experiment, register, tracking_uri,
             truth_path, say) -> None:
    """One MLflow run: parameters, disclosed figures, plots, card, the model; registration if the gate passed."""
    import mlflow
    from mlflow.models import infer_signature

    from features.provenance import file_digest, versions
    from models import plots
    from models.bias import log_label_bias
    from models.card import model_card
    from models.drift_reference import SUMMARY_ARTIFACT
    from models.metrics import disclosed_groups, disclosed_metrics
    from models.registry import champion_challenger
    from models.listinfo import cohort_text
    from segmentation.tracking import use_experiment

    config, gate = result.config, result.gate
    use_experiment(experiment or f"sote-{config.target}", tracking_uri)
    y_va = validation["label"].to_numpy(int)
    metrics, groups = disclosed_metrics(result.metrics), disclosed_groups(result.groups)
    params = {**asdict(config), "boosting_rounds": result.model.estimator.best_iteration_,
              "n_features": len(result.model.columns), "n_train": len(training), "n_valid": len(validation),
              **{f"train_rows_{k}": v for k, v in result.rows.items()}}
    say("logging to MLflow")
    with mlflow.start_run(run_name=f"{config.target} {config.train_as_of}→{config.valid_as_of}") as run:
        mlflow.log_params(params)
        mlflow.set_tags({"target": config.target, "train_as_of": config.train_as_of,
                         "valid_as_of": config.valid_as_of, "quality_gate": "passed" if gate.passed else "failed",
                         **{f"digest_{k}": v for k, v in result.digests.items()},
                         **{f"version_{k}": v for k, v in versions().items()}})
        for row in metrics.to_dict("records"):
            prefix = "valid" if row["model"] == "lightgbm" else f"valid_{row['model']}"
            mlflow.log_metrics({f"{prefix}_{k}": float(v) for k, v in row.items() if k != "model" and pd.notna(v)})
        mlflow.log_metrics(top_metrics(result.top_calibration, result.top))
        # the oracle's AUROC corrected for the noise of its Monte Carlo probabilities (the real limit)
        mlflow.log_metrics({f"valid_oracle_{k}": v for k, v in result.oracle.items()
                            if k != "auroc" and np.isfinite(v)})
        if result.bias is not None:
            log_label_bias(result.bias)
        if pd.notna(metrics.set_index("model").loc["lightgbm", "auroc"]) and np.isfinite(gate.auroc_lower):
            mlflow.log_metrics({"valid_auroc_lower95": gate.auroc_lower, "valid_auroc_upper95": gate.auroc_upper})
        if truth_path is not None and truth_path.exists():
            mlflow.set_tag("truth_digest", file_digest(truth_path))
        mlflow.log_text(metrics.to_csv(index=False), "evaluation/metrics.csv")
        mlflow.log_text(groups.to_csv(index=False), "evaluation/group_metrics.csv")
        mlflow.log_text(gate.summary(), "evaluation/quality_gate.txt")
        mlflow.log_text(result.importance.to_csv(index=False), "explanations/global_importance.csv")
        mlflow.log_text(result.model.spec_yaml, "model_spec/features.yaml")
        if result.reference:
            mlflow.log_text(json.dumps(result.reference, indent=1, ensure_ascii=False), SUMMARY_ARTIFACT)
        figures = {"roc_pr": plots.roc_pr(y_va, scores), "calibration": plots.calibration(y_va, scores),
                   "capacity_lift": plots.capacity(y_va, scores), "group_auroc": plots.group_auroc(groups),
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
                                   metrics=metrics, groups=groups, importance=result.importance,
                                   params=params, gate=gate.summary(),
                                   top=top_metrics(result.top_calibration, result.top),
                                   cohort_plain=cohort_text(target.cohort, "en"), bias=result.bias,
                                   oracle=result.oracle), "model_card.md")
        example = _typical_row(result.model, training)
        signature = infer_signature(example, result.model.predict(None, example))
        registered_name = config.target if register and gate.passed else None
        info = mlflow.pyfunc.log_model(name="model", python_model=result.model, signature=signature,
                                       input_example=example, pip_requirements=PIP_REQUIREMENTS,
                                       registered_model_name=registered_name)
        result.run_id, result.model_uri = run.info.run_id, info.model_uri
        if register and not gate.passed:
            result.promoted, result.decision = False, f"not registered: {gate.summary()}"
            mlflow.log_text(result.decision, "registry_decision.txt")
        elif register:
            result.version = str(info.registered_model_version)
            auroc = float(result.metrics.set_index("model").loc["lightgbm", "auroc"])
            result.promoted, result.decision = champion_challenger(config.target, result.version, validation, y_va,
                                                                   auroc)
            mlflow.set_tags({"registered_version": result.version, "promoted_to_champion": str(result.promoted)})
            mlflow.log_text(result.decision, "registry_decision.txt")
            mlflow.log_text(json.dumps({"version": result.version, "promoted": result.promoted}), "registry.json")
