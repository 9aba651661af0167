"""How did a risk list do: realised figures once its horizon has passed, a label-free estimate before.

:func:`evaluate_list` takes a list written by ``sote score`` and the data:

- **after the horizon** (the data reach ``as_of + horizon``): the outcomes are
  built with the target's own rule (:func:`features.targets.labels.build_labels`)
  and the list's *realised* AUROC (DeLong interval), calibration (mean
  predicted against observed, calibration error over deciles), and precision
  (Wilson interval) and recall at the top 1, 2 and 5 % are measured -- for
  the whole list, for each unit (its own top 1/2/5 %: its case managers'
  capacity) and for each equity group (sex, language, age band,
  municipality);
- **always**: the same figures *estimated* without outcomes from the
  calibrated probabilities (:mod:`models.performance_estimate`), with the
  95 % range chance alone allows. Before the horizon this is all there is,
  and every output says it is an estimate (the ``basis`` column, the HTML
  banner, the MLflow tag and metric names). After it, the estimate stands
  beside the realised figures, showing how far the estimate would have been off;
- next to both: what the model **promised** at training -- the validation
  metrics of the training run named by the list's ``run_id`` (MLflow), overall
  and per equity group.

Outputs leave the machine through :func:`disclosed` (small cells of
:mod:`features.disclosure` blanked): a CSV and a small HTML page, each
written atomically, and an MLflow run of aggregates only (never a client id).
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.disclosure import small_cell, suppress_small_cells
from models.calibration import wilson_interval
from models.metrics import CAPACITIES, age_band, auroc_confidence_interval, expected_calibration_error
from models.performance_estimate import DRAWS, expected_auroc, expected_top, group_seed, simulated_ranges

#: Groupings of the tables, in order: the whole list, each unit, then the equity groups.
SCOPES = ("all", "unit", "sex", "language", "age_band", "municipality")
EQUITY_SCOPES = ("sex", "language", "age_band", "municipality")
#: Experiment of the evaluation runs (kept apart from `sote monitor`'s sote-monitoring runs).
EXPERIMENT = "sote-list-evaluation"
REALISED, ESTIMATE = "realised", "estimate"
BASIS_TEXT = {REALISED: "realised: outcomes recorded over the list's horizon",
              ESTIMATE: "ESTIMATE (label-free, from the calibrated probabilities; no outcome has been measured)"}


def tag(capacity: float) -> str:
    """``top5pct`` for 0.05."""
    return f"top{round(capacity * 100):g}pct"


#: Figure columns of the table, in order (``k_*`` is the size of each top).
FIGURES = ("n", "outcomes", "prevalence", "mean_predicted", "calibration_gap", "calibration_error",
           "auroc", "auroc_low", "auroc_high",
           *(f"{kind}_{tag(c)}" for c in CAPACITIES
             for kind in ("k", "precision", "precision_low", "precision_high", "recall", "predicted")))
#: Training-run figures shown as promised (metric ``valid_<name>``; per group from group_metrics.csv).
PROMISED = ("prevalence", "auroc", "calibration_error",
            *(f"{kind}_{tag(c)}" for c in CAPACITIES for kind in ("precision", "recall")))
_GROUP_PROMISED = {"observed_rate": "prevalence", "auroc": "auroc", "calibration_error": "calibration_error",
                   "precision_top5pct": "precision_top5pct", "recall_top5pct": "recall_top5pct"}


@dataclass
class ListEvaluation:
    """What :func:`evaluate_list` found.

    ``table`` is the analysts' full table (one row per basis × scope × group,
    columns :data:`FIGURES` and ``promised_*``); :func:`disclosed` of it is what
    the CSV, the HTML and MLflow receive. ``basis`` is ``"realised"`` once the
    horizon has passed, else ``"estimate"`` (the table then has estimate rows only).
    """

    basis: str
    target: str
    as_of: pd.Timestamp
    horizon_end: pd.Timestamp
    data_end: pd.Timestamp
    model_name: str
    model_version: str
    list_run_id: str
    table: pd.DataFrame
    promised_from: str = ""
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    def overall(self, basis: str | None = None, *, shared: bool = False) -> dict[str, float]:
        """The whole list's figures of ``basis`` (default: the evaluation's own basis).

        ``shared=True`` gives them as they may leave the machine (:func:`disclosed`).
        """
        table = disclosed(self.table) if shared else self.table
        rows = table[(table["basis"] == (basis or self.basis)) & (table["scope"] == "all")]
        return rows.iloc[0].to_dict() if len(rows) else {}


def _top(rank: np.ndarray, capacity: float) -> np.ndarray:
    """Positions of the best-ranked ``round(capacity × n)`` clients (at least one)."""
    k = max(1, int(round(capacity * len(rank))))
    return np.argsort(rank, kind="stable")[:k]


def realised_figures(y: np.ndarray, p: np.ndarray, rank: np.ndarray) -> dict[str, float]:
    """The figures a group's outcomes show: AUROC (DeLong 95 %), calibration, precision (Wilson 95 %) and recall.

    Parameters
    ----------
    y
        0/1 outcomes over the horizon.
    p
        The list's probabilities.
    rank
        The list's ranks (1 = highest risk); the top k % are the k % best ranks of the group.
    """
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    n, outcomes = len(y), int(y.sum())
    auroc, low, high = auroc_confidence_interval(y, p)
    out = {"n": n, "outcomes": outcomes, "prevalence": outcomes / n, "mean_predicted": float(p.mean()),
           "calibration_gap": float(p.mean() - outcomes / n),
           "calibration_error": expected_calibration_error(y, p) if 0 < outcomes < n else np.nan,
           "auroc": auroc, "auroc_low": low, "auroc_high": high}
    for c in CAPACITIES:
        top = _top(rank, c)
        hits = int(y[top].sum())
        lo, hi = wilson_interval(hits, len(top))
        out.update({f"k_{tag(c)}": len(top), f"precision_{tag(c)}": hits / len(top),
                    f"precision_low_{tag(c)}": lo, f"precision_high_{tag(c)}": hi,
                    f"recall_{tag(c)}": hits / outcomes if outcomes else np.nan,
                    f"predicted_{tag(c)}": float(p[top].mean())})
    return out


def estimated_figures(p: np.ndarray, rank: np.ndarray, *, draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """The same figures expected without outcomes, probabilities taken as calibrated (:mod:`models.performance_estimate`).

    ``outcomes`` and ``prevalence`` are the expected count and rate; the
    ``_low``/``_high`` columns are the 95 % range of seeded simulated outcomes;
    calibration cannot be estimated (it is the assumption) and stays NaN.
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    tops = {tag(c): _top(rank, c) for c in CAPACITIES}
    ranges = simulated_ranges(p, p, tops, draws=draws, seed=seed)
    out = {"n": n, "outcomes": float(p.sum()), "prevalence": float(p.mean()), "mean_predicted": float(p.mean()),
           "calibration_gap": np.nan, "calibration_error": np.nan, "auroc": expected_auroc(p),
           "auroc_low": ranges["auroc"][0], "auroc_high": ranges["auroc"][1]}
    for name, top in tops.items():
        precision, recall = expected_top(p, top)
        out.update({f"k_{name}": len(top), f"precision_{name}": precision,
                    f"precision_low_{name}": ranges[f"precision_{name}"][0],
                    f"precision_high_{name}": ranges[f"precision_{name}"][1],
                    f"recall_{name}": recall, f"predicted_{name}": precision})
    return out


def _groups(frame: pd.DataFrame, scope: str):
    if scope == "all":
        yield "all", np.arange(len(frame))
        return
    values = frame[scope].astype(str).to_numpy()
    for group in np.unique(values):
        yield str(group), np.flatnonzero(values == group)


def figure_table(frame: pd.DataFrame, labels: np.ndarray | None, *, draws: int = DRAWS, seed: int = 0
                 ) -> pd.DataFrame:
    """Realised (when ``labels`` is given) and estimated figures per scope and group.

    Parameters
    ----------
    frame
        One row per list client: ``probability``, ``rank`` and the grouping
        columns of :data:`SCOPES` (``unit``, ``sex``, ``language``, ``age_band``, ``municipality``).
    labels
        0/1 outcome per row, or None before the horizon. Rows with a missing
        label (NaN) are left out of the realised figures only.
    """
    rows = {REALISED: [], ESTIMATE: []}
    p_all, rank_all = frame["probability"].to_numpy(float), frame["rank"].to_numpy()
    for scope in SCOPES:
        if scope not in frame and scope != "all":
            continue
        for group, idx in _groups(frame, scope):
            key = {"scope": scope, "group": group}
            p, rank = p_all[idx], rank_all[idx]
            if labels is not None:
                y = labels[idx]
                known = ~np.isnan(y)
                if known.any():
                    rows[REALISED].append({"basis": REALISED, **key,
                                           **realised_figures(y[known], p[known], rank[known])})
            rows[ESTIMATE].append({"basis": ESTIMATE, **key,
                                   **estimated_figures(p, rank, draws=draws, seed=group_seed(seed, scope, group))})
    table = pd.DataFrame(rows[REALISED] + rows[ESTIMATE])
    return table.reindex(columns=["basis", "scope", "group", *FIGURES])


def promised_figures(run_id: str, tracking_uri: str | None = None) -> tuple[dict, pd.DataFrame | None, str]:
    """What the training run ``run_id`` logged for the validation date: overall and per equity group.

    Returns
    -------
    (dict, DataFrame or None, str)
        :data:`PROMISED` figures (missing ones absent), the run's
        ``evaluation/group_metrics.csv`` as ``scope, group, <figures>`` (already
        disclosed at training: small cells blank), and the validation date.

    Raises
    ------
    LookupError
        When the run cannot be read from the store.
    """
    import mlflow

    from segmentation.tracking import configure_tracking

    configure_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception as err:  # noqa: BLE001 - MLflow raises several types for "not there"
        raise LookupError(f"training run {run_id} not found in {mlflow.get_tracking_uri()} "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from err
    metrics = run.data.metrics
    overall = {name: float(metrics[f"valid_{name}"]) for name in PROMISED if f"valid_{name}" in metrics}
    groups = None
    quiet = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bar in a command's output
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="evaluation/group_metrics.csv",
                                                        dst_path=folder)
            raw = pd.read_csv(local, dtype={"group": str}).rename(columns={"grouping": "scope", **_GROUP_PROMISED})
        groups = raw[["scope", "group", *[c for c in _GROUP_PROMISED.values() if c in raw]]]
    except Exception:  # noqa: BLE001 - an older run without the artifact: overall figures only
        groups = None
    finally:
        if quiet is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = quiet
    return overall, groups, run.data.tags.get("valid_as_of", "")


def with_promised(table: pd.DataFrame, overall: dict, groups: pd.DataFrame | None) -> pd.DataFrame:
    """``table`` with ``promised_<figure>`` columns: overall on the whole-list rows, per group on equity rows."""
    out = table.copy()
    for name in PROMISED:
        out[f"promised_{name}"] = np.nan
        if name in overall:
            out.loc[out["scope"] == "all", f"promised_{name}"] = overall[name]
    if groups is not None and len(groups):
        keyed = groups.set_index(["scope", "group"])
        index = pd.MultiIndex.from_frame(out[["scope", "group"]].astype(str))
        for name in keyed.columns:
            values = keyed[name].reindex(index).to_numpy(dtype=float)
            equity = out["scope"].isin(EQUITY_SCOPES).to_numpy()
            out.loc[equity, f"promised_{name}"] = values[equity]
    return out


def disclosed(table: pd.DataFrame) -> pd.DataFrame:
    """The table as it may leave the machine: small cells blanked (:mod:`features.disclosure`).

    A group under 50 clients, or under 5 with (expected, for the estimate)
    outcomes or 5 without, loses every figure; a top (1, 2 or 5 %) of under 50
    clients or under 5 hits or misses loses its precision, recall and mean
    prediction. The promised figures were disclosed at training and are kept.
    Adds ``suppressed`` (the whole row).
    """
    keep = ("basis", "scope", "group", *[c for c in table.columns if c.startswith("promised_")])
    out = suppress_small_cells(table, n="n", outcomes="outcomes", keep=keep)
    for c in CAPACITIES:
        t = tag(c)
        k = table[f"k_{t}"].to_numpy(dtype=float)
        hits = np.round(table[f"precision_{t}"].to_numpy(dtype=float) * k)
        small = small_cell(k, hits)
        columns = [f"{kind}_{t}" for kind in ("precision", "precision_low", "precision_high", "recall", "predicted")]
        out.loc[small, columns] = np.nan
    return out


def _period(tables):
    from features.contract.dataset import infer_period
    from features.targets.labels import is_dataset

    if getattr(tables, "period", None) is not None or is_dataset(tables):
        return tables.period  # a dataset's period is declared or inferred from its records (None: no records)
    return infer_period(tables.tables)


def _clients(tables) -> pd.DataFrame:
    from features.targets.labels import is_dataset

    return tables.read("clients") if is_dataset(tables) else tables.tables["clients"]


def _list_frame(risk: pd.DataFrame, tables, as_of: pd.Timestamp) -> pd.DataFrame:
    """The list's probability, rank, unit and municipality with each client's sex, language and age band at ``as_of``."""
    from features.targets.labels import population

    people = population(_clients(tables), as_of)
    ids = risk["client_id"].astype(str).to_numpy()
    frame = pd.DataFrame({"probability": risk["probability"].to_numpy(float), "rank": risk["rank"].to_numpy(),
                          "unit": risk["unit"].astype(str).to_numpy(),
                          "municipality": risk["municipality"].astype(str).to_numpy()})
    frame["sex"] = people["sex"].reindex(ids).astype("string").fillna("unknown").to_numpy()
    frame["language"] = people["language"].reindex(ids).astype("string").fillna("unknown").to_numpy()
    bands = age_band(people["age"]).reindex(ids)
    frame["age_band"] = bands.fillna("unknown").to_numpy()
    return frame


def evaluate_list(risklist, data, *, tracking_uri: str | None = None, out: str | Path | None = None,
                  log: bool = True, experiment: str = EXPERIMENT, draws: int = DRAWS, seed: int = 0,
                  targets=None) -> ListEvaluation:
    """Evaluate a risk list: realised figures once its horizon has passed, a marked estimate before.

    Parameters
    ----------
    risklist
        A list written by ``sote score`` (``.parquet`` or ``.csv``), or such a list as a DataFrame.
    data
        The data folder (validated into a dataset, :func:`features.contract.stream.open_dataset`: only
        the clients and the rows the labels need are read), a validated dataset, or
        :class:`~features.contract.validation.ValidatedTables`, holding the list's date and, for
        realised figures, the whole horizon after it.
    tracking_uri
        MLflow store of the list's training run (promised figures) and of the evaluation run.
    out
        Base path: writes ``<out>.csv`` and ``<out>.html`` (disclosed), each atomically. None: no files.
    log
        Log an MLflow run (aggregates only) in ``experiment``.
    draws, seed
        Simulated outcome draws behind the estimate's 95 % ranges, and their seed.
    targets
        Targets file or mapping (default: the packaged one) defining the outcome.

    Returns
    -------
    ListEvaluation

    Raises
    ------
    ValueError
        A list with several dates or no rows, a target that is not declared, or data that do
        not cover the list's date.
    """
    from features.targets.spec import get_target
    from models.risklists import list_about, read_risklist

    path = None
    if isinstance(risklist, (str, Path)):
        path = Path(risklist)
        risk = read_risklist(path)
    else:
        risk = risklist
    if risk.empty:
        raise ValueError("the risk list has no rows: nothing to evaluate")
    dates = pd.to_datetime(risk["as_of"]).dt.normalize().unique()
    if len(dates) != 1:
        raise ValueError(f"a risk list has one index date; this one has {len(dates)}")
    as_of = pd.Timestamp(dates[0])
    about = list_about(risk, path) or {}
    target_name = str(about.get("target") or risk["model_name"].iloc[0])
    target = get_target(target_name, targets)
    if isinstance(data, (str, Path)):
        from features.contract.stream import open_dataset

        with open_dataset(data) as dataset:
            return _evaluate(risk, path, dataset, as_of, target, targets, tracking_uri=tracking_uri, out=out, log=log,
                             experiment=experiment, draws=draws, seed=seed)
    return _evaluate(risk, path, data, as_of, target, targets, tracking_uri=tracking_uri, out=out, log=log,
                     experiment=experiment, draws=draws, seed=seed)


def _evaluate(risk: pd.DataFrame, path: Path | None, tables, as_of: pd.Timestamp, target, targets, *, tracking_uri,
              out, log, experiment, draws, seed) -> ListEvaluation:
    """:func:`evaluate_list` once the list is read and the data are open (a dataset or tables in pandas)."""
    from features.targets.labels import build_labels

    period = _period(tables)
    if period is None:
        raise ValueError("the data hold no service records: cannot evaluate a list on them")
    after_end = period.end + pd.Timedelta(days=1)
    if not period.start < as_of <= after_end:
        raise ValueError(f"the list's date {as_of.date()} is outside the data period {period.describe()}")
    horizon_end = as_of + pd.Timedelta(days=target.horizon_days)
    basis = REALISED if horizon_end <= after_end else ESTIMATE
    notes = []
    frame = _list_frame(risk, tables, as_of)
    labels = None
    if basis == REALISED:
        found = build_labels(tables, as_of, target, targets=targets, validate=False).set_index("client_id")["label"]
        labels = found.reindex(risk["client_id"].astype(str).to_numpy()).to_numpy(dtype=float)
        missing = int(np.isnan(labels).sum())
        if missing:
            notes.append(f"{missing:,} of {len(risk):,} list clients are not in the target's cohort in these data "
                         "(records changed since scoring?): left out of the realised figures")
    else:
        notes.append(f"the horizon runs to {(horizon_end - pd.Timedelta(days=1)).date()} but the data end on "
                     f"{period.end.date()}: every figure is an ESTIMATE from the calibrated probabilities, "
                     "not a measurement; it assumes the probabilities are calibrated and cannot see a change in "
                     "how likely the outcome is at given features (concept drift)")
    table = figure_table(frame, labels, draws=draws, seed=seed)
    run_id = str(risk["run_id"].iloc[0])
    overall, groups, promised_from = {}, None, ""
    try:
        overall, groups, promised_from = promised_figures(run_id, tracking_uri)
    except LookupError as err:
        notes.append(f"promised figures unavailable: {err}")
    result = ListEvaluation(basis=basis, target=target.name, as_of=as_of, horizon_end=horizon_end,
                            data_end=period.end, model_name=str(risk["model_name"].iloc[0]),
                            model_version=str(risk["model_version"].iloc[0]), list_run_id=run_id,
                            table=with_promised(table, overall, groups), promised_from=promised_from, notes=notes)
    shared = disclosed(result.table)
    if out is not None:
        result.paths = write_outputs(result, shared, out)
    if log:
        result.run_id = log_evaluation(result, shared, risk, path, tracking_uri=tracking_uri, experiment=experiment)
    return result


def output_paths(out: str | Path) -> dict[str, Path]:
    """``{"csv": <base>.csv, "html": <base>.html}`` of a base path (a ``.csv`` / ``.html`` suffix is dropped)."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix.lower() in (".csv", ".html", ".htm") else out
    if not base.name or base.name in (".", ".."):
        raise ValueError(f"--out {out}: give a file base name such as out/monitoring/evaluation_2024-01-01")
    return {"csv": base.with_name(base.name + ".csv"), "html": base.with_name(base.name + ".html")}


def csv_text(shared: pd.DataFrame) -> str:
    """The disclosed table as CSV text (figures to 6 significant digits)."""
    buffer = io.StringIO()
    shared.to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue()


def write_outputs(result: ListEvaluation, shared: pd.DataFrame, out: str | Path) -> dict[str, Path]:
    """Write ``<out>.csv`` and ``<out>.html``, each atomically (both texts are built before either is written)."""
    from features.contract.io import atomic_path
    from models.evaluate_report import evaluation_html

    paths = output_paths(out)
    texts = {"csv": csv_text(shared), "html": evaluation_html(result, shared)}
    for kind, target in paths.items():
        with atomic_path(target) as tmp:
            Path(tmp).write_text(texts[kind], encoding="utf-8")
    return paths


def mlflow_metrics(shared: pd.DataFrame) -> dict[str, float]:
    """The whole list's disclosed figures as metrics: ``realised_*``, ``estimate_*``, ``promised_*`` and the gaps.

    ``estimate_minus_realised_<figure>`` says how far the label-free estimate is
    off (after the horizon); ``realised_minus_promised_<figure>`` how far the
    list fell short of (or beat) what training promised.
    """
    whole = shared[shared["scope"] == "all"].set_index("basis")
    out = {}
    for basis in whole.index:
        for name in FIGURES:
            value = whole.loc[basis, name]
            if pd.notna(value):
                out[f"{basis}_{name}"] = float(value)
    first = whole.iloc[0]
    for name in PROMISED:
        if pd.notna(first[f"promised_{name}"]):
            out[f"promised_{name}"] = float(first[f"promised_{name}"])
            if f"{REALISED}_{name}" in out:
                out[f"realised_minus_promised_{name}"] = out[f"{REALISED}_{name}"] - out[f"promised_{name}"]
    for name in ("auroc", *(f"{kind}_{tag(c)}" for c in CAPACITIES for kind in ("precision", "recall"))):
        if f"{REALISED}_{name}" in out and f"{ESTIMATE}_{name}" in out:
            out[f"estimate_minus_realised_{name}"] = out[f"{ESTIMATE}_{name}"] - out[f"{REALISED}_{name}"]
    return out


def log_evaluation(result: ListEvaluation, shared: pd.DataFrame, risk: pd.DataFrame, path: Path | None, *,
                   tracking_uri: str | None = None, experiment: str = EXPERIMENT) -> str:
    """One MLflow run of aggregates: tags, the whole list's figures, the disclosed CSV and the HTML; its id."""
    import mlflow

    from features.provenance import file_digest
    from models.evaluate_report import evaluation_html
    from segmentation.tracking import use_experiment

    use_experiment(experiment, tracking_uri)
    tags = {"kind": "list_evaluation", "basis": result.basis, "target": result.target,
            "as_of": str(result.as_of.date()), "horizon_end": str(result.horizon_end.date()),
            "data_end": str(result.data_end.date()), "model_name": result.model_name,
            "model_version": result.model_version, "list_run_id": result.list_run_id,
            "list_data_digest": str(risk["data_digest"].iloc[0]), "promised_from": result.promised_from}
    if path is not None:
        if Path(path).is_dir():  # a Parquet folder (sote score --engine spark)
            from features.histories.engine import output_digest

            tags["list_digest"] = output_digest(path)[:16]
        else:
            tags["list_digest"] = file_digest(path)
    with mlflow.start_run(run_name=f"evaluate-list {result.target} {result.as_of.date()} ({result.basis})") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({"list_rows": len(risk), "basis": result.basis})
        mlflow.log_metrics(mlflow_metrics(shared))
        mlflow.log_text(csv_text(shared), "evaluation/list_evaluation.csv")
        mlflow.log_text(evaluation_html(result, shared), "evaluation/list_evaluation.html")
        if result.notes:
            mlflow.log_text("\n".join(result.notes) + "\n", "evaluation/notes.txt")
        return run.info.run_id
