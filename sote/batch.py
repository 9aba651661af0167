"""A scheduled scoring job for one as-of date: validate → features → score → monitor → publish.

:func:`load_job` reads the job's YAML (``docs/job.yaml``) into a :class:`JobConfig`
with the one config loader (an unknown key or a bad value is named with the
file); :func:`run_batch` runs the steps and returns a :class:`BatchResult`
whose ``exit_code`` is one of :class:`sote.app.ExitCode`.

Outputs of a date go to ``<out>/<as_of>/``, built aside and moved into place
whole when every step has succeeded (the publish step), so a failed run
leaves the previous outputs of that date as they were:

- ``features.parquet``: the feature table at the date (the model's feature spec);
- ``risklist.parquet`` and its sidecar ``risklist.parquet.json``;
- ``drift.html`` and ``drift.csv``: :func:`models.monitor.monitor`'s report;
- ``quarantine/``: rejected rows and reasons (``lenient: true`` without a ``quarantine`` folder);
- ``summary.json``: steps, row counts, quarantined rows, drift verdict, digests of the outputs above.

Idempotent: the same date, inputs and settings give the same files byte for
byte. Times (the run's start, each step's seconds) are kept out of them and
go to the run log ``<out>/batch_log.jsonl`` (one line per run) and to the
summary the command prints. One MLflow run (experiment ``sote-batch``) is
logged per job digest (the date, the input data's digest, the model version
and the settings); a rerun finds it and reports it instead of logging a
second one, and then asks the monitor not to log again either.
"""
from __future__ import annotations

import hashlib
import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pandas as pd

from features.config.loader import build, load_config
from features.contract.io import atomic_path, find_table
from features.contract.tables import TABLES
from features.provenance import DIGEST_LENGTH, file_digest
from sote.app import ExitCode

#: MLflow experiment of the batch runs.
EXPERIMENT = "sote-batch"
#: The run log beside the dated folders: one JSON line per run, with its times.
RUN_LOG = "batch_log.jsonl"
#: The summary inside a dated folder (no times: byte-identical on a rerun).
SUMMARY = "summary.json"
#: Steps, in order.
STEPS = ("validate", "features", "score", "monitor", "publish")
#: Order of the monitor's verdicts.
LEVELS = {"ok": 0, "watch": 1, "act": 2}
#: Tag keys of a batch run.
TAG_JOB, TAG_DATE, TAG_DATA = "sote.job_digest", "sote.as_of", "sote.data_digest"


@dataclass(frozen=True)
class JobConfig:
    """One scheduled job (sample: ``docs/job.yaml``); relative paths are relative to the working directory.

    Parameters
    ----------
    data
        Folder with the canonical tables as they arrive.
    as_of
        The index date (ISO ``YYYY-MM-DD``); ``sote batch --as-of`` overrides it.
    out
        Output folder: each date's outputs go to ``<out>/<as_of>/``, the run log to ``<out>/batch_log.jsonl``.
    model
        Registered model URI to score with.
    lenient
        Quarantine invalid rows instead of failing with "data invalid".
    quarantine
        Folder for the rejected rows (``<quarantine>/<as_of>/``); default with
        ``lenient``: ``<out>/<as_of>/quarantine/``. Needs ``lenient``.
    reference
        What the monitor compares this date with: ``model`` (the model's
        training distribution, stored with it), ``previous`` (the newest earlier
        date under ``out``; the model's when there is none) or a path to a
        feature table or risk list.
    monitor
        Run the monitor step (``false`` skips it: no drift verdict).
    thresholds
        Drift thresholds YAML for the monitor (default: the packaged one).
    fail_on_drift
        End with exit status DRIFT (5) when the verdict reaches ``drift_level``
        (the outputs, with the drift report, are still written).
    drift_level
        The verdict that counts as drift for ``fail_on_drift``: ``act`` or ``watch``.
    tracking_uri
        MLflow tracking URI (default: ``$SOTE_TRACKING_URI`` or ``./mlruns``).
    explain_share, reasons, chunk_size
        As ``sote score``'s options of the same names.
    unit_costs
        Unit-cost YAML overriding the defaults (for events without a cost).
    engine
        ``duckdb`` (in-process) or ``spark``: the features and the risk list are then
        computed and written by Spark (:mod:`models.scoring_spark`) as Parquet folders
        (``features.parquet/`` by municipality, ``risklist.parquet/`` by unit), and the
        monitor reads the feature folder back (docs/spark.md).
    spark_master
        Spark master URL for ``engine: spark`` (None: a local Spark).
    """

    data: str
    as_of: str
    out: str
    model: str = "models:/high_use@champion"
    lenient: bool = False
    quarantine: str | None = None
    reference: str = "model"
    monitor: bool = True
    thresholds: str | None = None
    fail_on_drift: bool = False
    drift_level: Literal["watch", "act"] = "act"
    tracking_uri: str | None = None
    explain_share: float = field(default=0.2, metadata={"gt": 0, "le": 1})
    reasons: int = field(default=5, metadata={"ge": 0})
    chunk_size: int = field(default=50_000, metadata={"ge": 1})
    unit_costs: str | None = None
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str | None = None

    def __post_init__(self):
        from features.contract.dates import DateError, parse_cli_date

        try:
            parse_cli_date(self.as_of, "as_of")
        except DateError as err:
            raise ValueError(str(err)) from None
        if self.spark_master is not None and self.engine != "spark":
            raise ValueError("spark_master goes with engine: spark")
        if self.quarantine is not None and not self.lenient:
            raise ValueError("quarantine needs lenient: true (a strict run keeps nothing and rejects nothing)")
        for name in ("data", "out"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{name} is empty; give a folder")

    @property
    def date(self) -> pd.Timestamp:
        """``as_of`` as a Timestamp."""
        return pd.Timestamp(self.as_of).normalize()

    @property
    def folder(self) -> Path:
        """This date's output folder."""
        return Path(self.out) / f"{self.date:%Y-%m-%d}"


def load_job(path: str | Path, **overrides) -> JobConfig:
    """Read a job YAML into a :class:`JobConfig`; non-None ``overrides`` (command-line options) win.

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file, the key and the bad value.
    """
    job = load_config(JobConfig, path)
    given = {k: v for k, v in overrides.items() if v is not None}
    return build(JobConfig, {**asdict(job), **given}, f"{path} with command-line options") if given else job


@dataclass
class BatchResult:
    """What a run did: ``summary`` (as printed), its ``exit_code`` and the error that ended it (or None)."""

    summary: dict
    exit_code: ExitCode
    error: BaseException | None = None


def data_digest(data: str | Path) -> str:
    """Digest of the input tables' bytes (each table file, or each file of a Parquet folder) and ``dataset.yaml``."""
    data = Path(data)
    parts = {}
    for table in TABLES:
        path = find_table(data, table)
        if path is None:
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            parts[str(f.relative_to(data))] = file_digest(f)
    if (data / "dataset.yaml").is_file():
        parts["dataset.yaml"] = file_digest(data / "dataset.yaml")
    return _digest(parts)


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()[:DIGEST_LENGTH]


def previous_folder(job: JobConfig) -> Path | None:
    """The newest earlier date's folder under ``out`` that holds a feature table and a risk list."""
    out = Path(job.out)
    if not out.is_dir():
        return None
    found = []
    for entry in out.iterdir():
        try:
            day = pd.Timestamp(pd.to_datetime(entry.name, format="%Y-%m-%d"))
        except (ValueError, TypeError):
            continue
        if entry.is_dir() and day < job.date and (entry / "features.parquet").exists() \
                and (entry / "risklist.parquet").exists():
            found.append((day, entry))
    return max(found)[1] if found else None


class _Clock:
    """Seconds per step, and the step running now (named when a step fails)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.step: str | None = None
        self._t = time.perf_counter()

    def start(self, step: str) -> None:
        self.step, self._t = step, time.perf_counter()

    def stop(self) -> None:
        self.seconds[self.step] = round(time.perf_counter() - self._t, 2)


def _find_run(tracking_uri: str | None, job_digest: str) -> str | None:
    """The finished batch run of ``job_digest``, or None."""
    import mlflow

    from segmentation.tracking import configure_tracking

    configure_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.`{TAG_JOB}` = '{job_digest}' AND attributes.status = 'FINISHED'",
                              max_results=1, order_by=["attributes.start_time ASC"])
    return runs[0].info.run_id if runs else None


def _log_run(job: JobConfig, summary: dict) -> str:
    """Log the batch run (aggregates only: counts, verdict, digests; never a client id); return its id."""
    import mlflow

    from segmentation.tracking import use_experiment

    use_experiment(EXPERIMENT, job.tracking_uri)
    model = summary["model"]
    with mlflow.start_run(run_name=f"batch {job.as_of}") as run:
        mlflow.set_tags({TAG_JOB: summary["job_digest"], TAG_DATE: job.as_of, TAG_DATA: summary["data_digest"],
                         "sote.model": model["uri"], "sote.model_version": model["version"],
                         "sote.drift_verdict": summary["drift"]["verdict"] or "not monitored",
                         "sote.monitor_run_id": summary["drift"]["run_id"] or ""})
        mlflow.log_params({"as_of": job.as_of, "model": job.model, "lenient": job.lenient,
                           "reference": job.reference, "explain_share": job.explain_share,
                           "reasons": job.reasons, "fail_on_drift": job.fail_on_drift})
        steps = {s["step"]: s for s in summary["steps"]}
        metrics = {"rows_in": steps["validate"]["rows_in"], "rows_kept": steps["validate"]["rows_out"],
                   "rows_quarantined": summary["quarantined"]["total"], "list_rows": steps["score"]["rows_out"]}
        if summary["drift"].get("score_psi") is not None:
            metrics["score_psi"] = summary["drift"]["score_psi"]
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_dict(summary, SUMMARY)
        return run.info.run_id


def _validate(job: JobConfig, staging: Path) -> tuple[object, dict, dict]:
    """Check the date against the data period (a PeriodError: the date is wrong, USER_ERROR), then validate and
    cost-fill into a dataset (a ContractError: data invalid) that the caller closes.

    The dataset is Parquet the engines scan (a validated copy is used as is), not tables in memory: the
    job's memory does not grow with the county, and Spark's executors read the files themselves."""
    from features.contract.io import data_period
    from features.contract.stream import open_dataset

    period = data_period(job.data)  # cheap: a date the data do not cover fails before the tables are read
    if period is not None:
        period.check(job.date, "as_of")
    quarantine = None
    if job.lenient:
        quarantine = Path(job.quarantine) / job.as_of if job.quarantine else staging / "quarantine"
    tables = open_dataset(job.data, lenient=job.lenient, quarantine_dir=quarantine, unit_costs=job.unit_costs)
    report = tables.report
    per_table = {t: {"rows_in": int(n), "rows_kept": int(report.rows_kept[t]),
                     "rows_quarantined": int(n - report.rows_kept[t])} for t, n in report.rows_in.items()}
    step = {"step": "validate", "status": "ok", "rows_in": sum(v["rows_in"] for v in per_table.values()),
            "rows_out": sum(v["rows_kept"] for v in per_table.values()),
            "period": tables.period.describe() if tables.period is not None else None}
    total = step["rows_in"] - step["rows_out"]
    published = job.folder / "quarantine" if quarantine is not None and quarantine.parent == staging else quarantine
    quarantined = {"total": total,
                   "tables": {t: v["rows_quarantined"] for t, v in per_table.items() if v["rows_quarantined"]},
                   "folder": str(published) if published is not None else None}
    return tables, step, quarantined


def _reference(job: JobConfig) -> tuple[Path | None, str]:
    """The monitor's reference (None: the model's stored training summary; else a file) and how to name it."""
    if job.reference == "model":
        return None, "model"
    if job.reference == "previous":
        found = previous_folder(job)
        if found is None:
            return None, "model (no earlier date under out)"
        return found / "features.parquet", f"previous ({found.name})"
    path = Path(job.reference)
    if not path.is_file():
        raise FileNotFoundError(f"reference {job.reference}: file not found (give model, previous or a feature "
                                "table or risk list)")
    return path, str(path)


def _is_risklist(path: Path) -> bool:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names if path.suffix == ".parquet" else list(pd.read_csv(path, nrows=0).columns)
    return {"probability", "rank", "model_name"} <= set(names)


def _monitor(job: JobConfig, staging: Path, features: pd.DataFrame, log: bool) -> dict:
    """Compare this date's features (or risk list, when the reference is one) with the reference."""
    from models.monitor import monitor

    reference, named = _reference(job)
    current = (staging / "risklist.parquet" if reference is not None and _is_risklist(reference)
               else features)
    result = monitor(reference, current, model_uri=job.model, tracking_uri=job.tracking_uri,
                     thresholds=job.thresholds, out=staging / "drift", log=log)
    psi = result.score_psi
    counts = result.counts()
    return {"verdict": result.verdict, "reference": named,
            "score_psi": round(float(psi), 6) if psi is not None and pd.notna(psi) else None,
            "features_watch": counts.get("watch", 0), "features_act": counts.get("act", 0),
            "run_id": result.run_id}


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 digest (16 hex digits) of every output in ``folder`` (sote's manifest left out).

    A Parquet folder written by an engine (``_SUCCESS`` inside) counts as one output, digested
    by :func:`features.histories.engine.output_digest` (Spark's part-file names change every run).
    """
    from features.contract.outputs import MANIFEST, is_temp
    from features.histories.engine import SUCCESS, output_digest

    parquet_dirs = [p for p in folder.iterdir() if p.is_dir() and (p / SUCCESS).is_file()]
    out = {p.name: output_digest(p)[:DIGEST_LENGTH] for p in parquet_dirs}
    out.update({str(p.relative_to(folder)): file_digest(p) for p in sorted(folder.rglob("*"))
                if p.is_file() and p.name != MANIFEST and not is_temp(p.name)
                and not any(d in p.parents for d in parquet_dirs)})
    return dict(sorted(out.items(), key=lambda item: Path(item[0])))  # the order of sorted(rglob)


_SPARK: dict = {}


def _spark(job: JobConfig):
    """The job's Spark engine (one per process and master URL)."""
    from features.histories.engine_spark import SparkEngine

    if job.spark_master not in _SPARK:
        _SPARK[job.spark_master] = SparkEngine(master=job.spark_master)
    return _SPARK[job.spark_master]


def _spark_features(job: JobConfig, tables, ref, staging: Path) -> pd.DataFrame:
    """``engine: spark``: Spark writes ``features.parquet/`` (by municipality); the monitor gets it back in pandas."""
    from features.histories.build import ClientHistories
    from features.histories.output import read_features, write_features

    spec = ref.model.spec()
    with ClientHistories(tables, spec, engine=_spark(job)) as histories:
        write_features(histories, job.date, staging / "features.parquet")
    return read_features(staging / "features.parquet", spec)


def _append_log(job: JobConfig, line: dict) -> None:
    """Append one line to ``<out>/batch_log.jsonl`` (the whole file rewritten atomically)."""
    log = Path(job.out) / RUN_LOG
    before = log.read_text(encoding="utf-8") if log.is_file() else ""
    with atomic_path(log) as tmp:
        tmp.write_text(before + json.dumps(line, default=str) + "\n", encoding="utf-8")


def _check_outputs(job: JobConfig) -> None:
    """Before any work: outputs outside the data, no foreign files replaced, the MLflow store outside ``out``."""
    from features.contract.outputs import check_not_input, check_output_dir, check_output_file, check_store_outside

    check_not_input(job.out, [job.data], "out")
    check_output_dir(job.folder, "out", inputs=[job.data])
    check_output_file(Path(job.out) / RUN_LOG, "out (its run log)")
    if job.quarantine:
        check_output_dir(Path(job.quarantine) / job.as_of, "quarantine", inputs=[job.data])
    check_store_outside(job.tracking_uri, job.out, "out", "tracking_uri")
    if not Path(job.data).is_dir():
        raise FileNotFoundError(f"data {job.data}: folder not found")


def run_batch(job: JobConfig, say=lambda message: None) -> BatchResult:
    """Run the job's steps for its date; never raises for a failing step (the result carries the error).

    Parameters
    ----------
    job
        The job (:func:`load_job`).
    say
        Called with a one-line message as each step starts.

    Returns
    -------
    BatchResult
        ``summary``: ``as_of``, ``status`` (ok, drift, data invalid, failed),
        ``steps`` (each with ``status``, ``rows_in``, ``rows_out``), ``quarantined``
        (total and per table), ``drift`` (verdict, reference, score PSI, the
        monitor's run), ``outputs`` (file → digest), ``data_digest``,
        ``job_digest``, ``mlflow_run`` (id, and ``reused`` when an earlier run of
        the same job digest was found), ``seconds`` per step, ``started``,
        ``exit_status``. The ``exit_code``: OK; DATA_INVALID for a contract
        breach (records dated outside the declared period included); DRIFT when
        ``fail_on_drift`` and the verdict reaches ``drift_level``; USER_ERROR for a
        problem with the job's files or model, or a date the data's period does not
        cover (as for every sote command's date options: the data are not at fault);
        FAILED for anything else.
    """
    from features.contract.dataset import PeriodError
    from features.contract.io import atomic_dir, write_table
    from features.histories.build import ClientHistories
    from models.scoring import load_model, score
    from sote.app import describe_error

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock = _Clock()
    steps: list[dict] = []
    summary: dict = {"as_of": job.as_of, "status": None, "data": str(job.data), "folder": str(job.folder),
                     "model": {"uri": job.model}, "steps": steps}
    timed: dict = {}
    code, error = ExitCode.OK, None
    try:
        _check_outputs(job)
        summary["data_digest"] = data_digest(job.data)
        with ExitStack() as stack, atomic_dir(job.folder, option="out") as staging:
            clock.start("validate")
            say(f"1/5 validate {job.data}")
            tables, step, quarantined = _validate(job, staging)
            stack.callback(tables.close)  # its temporary copy goes when the job ends, whatever happens
            steps.append(step)
            summary["quarantined"] = quarantined
            clock.stop()

            clock.start("features")
            say(f"2/5 features as of {job.as_of}")
            ref = load_model(job.model, job.tracking_uri)
            summary["model"] = {"uri": job.model, "name": ref.name, "version": ref.version, "run_id": ref.run_id}
            if job.engine == "spark":
                features, histories = _spark_features(job, tables, ref, staging), None
            else:
                histories = stack.enter_context(ClientHistories(tables, ref.model.spec(), cache=True))
                features = histories.features(job.date)
                write_table(features, staging / "features.parquet")
            steps.append({"step": "features", "status": "ok", "rows_in": step["rows_out"],
                          "rows_out": len(features), "columns": features.shape[1] - 1})
            clock.stop()

            clock.start("score")
            say(f"3/5 score with {job.model}")
            if job.engine == "spark":
                from models.scoring_spark import score_spark

                sidecar = score_spark(job.model, tables, job.date, staging / "risklist.parquet",
                                      engine=_spark(job), reasons=job.reasons, explain_share=job.explain_share,
                                      tracking_uri=job.tracking_uri)
            else:
                sidecar = score(job.model, tables, job.date, staging / "risklist.parquet", chunk_size=job.chunk_size,
                                reasons=job.reasons, explain_share=job.explain_share, tracking_uri=job.tracking_uri,
                                histories=histories)
            timed["score_seconds"] = sidecar.pop("seconds", None)  # a time: kept out of the outputs
            with atomic_path(staging / "risklist.parquet.json") as tmp:
                tmp.write_text(json.dumps(sidecar, indent=2, ensure_ascii=False), encoding="utf-8")
            steps.append({"step": "score", "status": "ok", "rows_in": len(features), "rows_out": sidecar["rows"],
                          "outside_cohort": sidecar["outside_cohort"]})
            clock.stop()

            settings = {k: v for k, v in asdict(job).items() if k not in ("data", "tracking_uri")}  # data: by digest
            summary["job_digest"] = _digest({"data": summary["data_digest"], "model_version": ref.version,
                                             "model_run": ref.run_id, "settings": settings,
                                             "reference": _reference_digest(job)})
            existing = _find_run(job.tracking_uri, summary["job_digest"])

            clock.start("monitor")
            if job.monitor:
                say(f"4/5 monitor against {job.reference}")
                drift = _monitor(job, staging, features, log=existing is None)
                if existing is not None:  # the monitor's run of the first run, recorded on the batch run
                    drift["run_id"] = _tag(job.tracking_uri, existing, "sote.monitor_run_id") or None
                steps.append({"step": "monitor", "status": "ok", "rows_in": len(features), "rows_out": None,
                              "verdict": drift["verdict"]})
            else:
                say("4/5 monitor skipped (monitor: false)")
                drift = {"verdict": None, "reference": None, "score_psi": None, "run_id": None}
                steps.append({"step": "monitor", "status": "skipped", "rows_in": None, "rows_out": None})
            summary["drift"] = drift
            clock.stop()

            clock.start("publish")
            say(f"5/5 publish {job.folder}")
            drifted = breaches(drift["verdict"], job)
            summary["status"] = "drift" if drifted else "ok"
            summary["outputs"] = _digests(staging)
            steps.append({"step": "publish", "status": "ok", "rows_in": sidecar["rows"], "rows_out": sidecar["rows"],
                          "files": len(summary["outputs"]) + 1})
            kept = {k: summary[k] for k in ("as_of", "status", "model", "data_digest", "job_digest", "steps",
                                            "quarantined", "drift", "outputs")}
            run_id = existing or _log_run(job, kept)
            summary["mlflow_run"] = {"run_id": run_id, "reused": existing is not None}
            kept["mlflow_run_id"] = run_id
            with atomic_path(staging / SUMMARY) as tmp:
                tmp.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            code = ExitCode.DRIFT if drifted else ExitCode.OK
        clock.stop()
        summary["outputs"][SUMMARY] = file_digest(job.folder / SUMMARY)
    except Exception as err:  # noqa: BLE001 - every failure becomes the run's status and exit code
        error = err
        if isinstance(err, PeriodError):  # a date option outside the data: USER_ERROR, as in every command
            code, message = ExitCode.USER_ERROR, f"{job.data}: {err}"
        else:
            code, message = describe_error(err, job.data)
        summary["status"] = {ExitCode.DATA_INVALID: "data invalid"}.get(code, "failed")
        summary["error"] = {"step": clock.step or "setup", "message": message}
        if clock.step is not None and clock.step not in {s["step"] for s in steps}:
            steps.append({"step": clock.step, "status": "failed", "rows_in": None, "rows_out": None})
    summary["seconds"] = {**clock.seconds, **({"scoring_only": timed["score_seconds"]} if timed else {})}
    summary["started"] = started
    summary["exit_status"] = int(code)
    try:
        _append_log(job, summary)
    except (OSError, ValueError):  # the log is a record; it never changes the run's outcome
        pass
    return BatchResult(summary, code, error)


def breaches(verdict: str | None, job: JobConfig) -> bool:
    """Whether a verdict ends the job with status DRIFT: only with ``fail_on_drift``, at ``drift_level`` or worse."""
    return verdict is not None and job.fail_on_drift and LEVELS[verdict] >= LEVELS[job.drift_level]


def _reference_digest(job: JobConfig) -> str | None:
    """What the monitor compares with, as a digest (it belongs to the job's identity)."""
    if not job.monitor:
        return None
    if job.reference == "model":
        return "model"
    if job.reference == "previous":
        found = previous_folder(job)
        return (f"previous:{found.name}:{file_digest(found / 'features.parquet')}" if found is not None
                else "model")
    path = Path(job.reference)
    return file_digest(path) if path.is_file() else job.reference


def _tag(tracking_uri: str | None, run_id: str, key: str) -> str | None:
    import mlflow

    from segmentation.tracking import configure_tracking

    configure_tracking(tracking_uri)
    return mlflow.MlflowClient().get_run(run_id).data.tags.get(key)
