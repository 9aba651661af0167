"""``sote train``: a thin command over models.train."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from features.config.defaults import DEFAULT_TARGET, TRAIN_AS_OF, VALID_AS_OF
from sote.app import ExitCode, app, console, fail, quiet_libraries


@app.command()
def train(
    data: Path = typer.Option(..., help="Folder with the canonical tables (truth.parquet, if present, gives the oracle)."),
    target: str = typer.Option(DEFAULT_TARGET, help="Target declared in features/config/targets.yaml."),
    train_as_of: str = typer.Option(TRAIN_AS_OF, help="Index date the model learns from."),
    valid_as_of: str = typer.Option(VALID_AS_OF, help="Later index date it is judged on."),
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default sote-<target>)."),
    register: bool = typer.Option(False, help="Register the model; promote it to @champion only if it is better."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: local store in ./mlruns)."),
    seed: int = typer.Option(0, help="Seed of every random step."),
    calibration: str = typer.Option("isotonic", help="isotonic | platt"),
    tune: bool = typer.Option(False, help="Search hyper-parameters with Optuna first (trials logged as nested runs)."),
    tune_trials: int = typer.Option(30, help="With --tune: at most this many trials."),
    tune_seconds: float = typer.Option(600, help="With --tune: at most this many seconds of search."),
    spec: Optional[Path] = typer.Option(None, help="Feature spec YAML the features are built with (default: the "
                                                   "packaged features.yaml); the model carries it to scoring."),
    max_train_rows: int = typer.Option(300_000, min=0, help="At most this many training-date cohort members are "
                                       "fitted on (0 = all): a larger cohort is sampled, seeded, within each label, "
                                       "and features are built for the sampled clients only. The validation date "
                                       "is never sampled."),
) -> None:
    """Train a service-need model with temporal validation, baselines and equity metrics, tracked in MLflow.

    With --register the model is registered only if it passes the quality gate (AUROC's 95% lower
    bound above 0.5, not worse than its baselines); otherwise the command says why and exits with
    status 4 (quality gate failed).
    """
    from features.contract.validation import ContractError
    from models.gate import QualityGateError
    from models.train import TrainConfig
    from models.train import train as run_train

    from sote.options import check_period, cli_date, horizon_days

    t_train, t_valid = cli_date(train_as_of, "--train-as-of"), cli_date(valid_as_of, "--valid-as-of")
    if t_valid <= t_train:
        fail(f"--valid-as-of {t_valid:%Y-%m-%d} must be after --train-as-of {t_train:%Y-%m-%d}", ExitCode.USER_ERROR)
    horizon = horizon_days(target)
    check_period(data, [(t_train, "--train-as-of", horizon, f"for {target} training labels"),
                        (t_valid, "--valid-as-of", horizon, f"for {target} validation labels")])
    train_as_of, valid_as_of = f"{t_train:%Y-%m-%d}", f"{t_valid:%Y-%m-%d}"
    quiet_libraries()
    config = TrainConfig(target=target, train_as_of=train_as_of, valid_as_of=valid_as_of, seed=seed,
                         calibration=calibration, tune=tune, tune_trials=tune_trials, tune_seconds=tune_seconds,
                         spec=str(spec) if spec is not None else None, max_train_rows=max_train_rows or None)
    gate_failed = None
    try:
        with console.status("training") as status:
            result = run_train(data, config, experiment=experiment, register=register, tracking_uri=tracking_uri,
                               progress=lambda msg: status.update(msg))
    except QualityGateError as err:
        result, gate_failed = err.result, str(err)
    except ContractError as err:
        console.print(err.report.to_text(), markup=False)
        fail(f"{data} breaks the data contract; run `sote validate {data}`", ExitCode.DATA_INVALID)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    cols = ["model", "auroc", "auprc", "brier", "calibration_error", "precision_top5pct", "lift_top5pct"]
    console.print(result.metrics[cols].round(4).to_string(index=False), markup=False)
    flagged = result.groups[result.groups["gap_flag"]]
    if len(flagged):
        console.print("largest equity gaps (AUROC vs whole population):")
        console.print(flagged[["grouping", "group", "n", "auroc", "auroc_gap"]].round(3).to_string(index=False),
                      markup=False)
    if result.tuning is not None:
        best = result.tuning.sort_values("auroc", ascending=False).iloc[0]
        console.print(f"tuning: {len(result.tuning)} trials, best early-stopping-slice AUROC {best['auroc']:.4f} "
                      f"(trial {int(best['trial'])})")
    console.print(f"run {result.run_id}; model {result.model_uri}")
    if gate_failed is not None:
        fail(gate_failed, ExitCode.QUALITY_GATE)
    console.print(result.gate.summary(), markup=False, highlight=False)
    if register:
        console.print(f"registered {target} version {result.version}: {result.decision}", markup=False,
                      highlight=False)
