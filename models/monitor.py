"""Drift between scoring runs: compare a current feature table or risk list with a reference, report and log it.

:func:`monitor` compares ``current`` with ``reference``, both feature tables
or both risk lists (Parquet, CSV or DataFrames), or with the binned summary a
model stores at training (``reference=None``, ``model_uri`` given;
:func:`reference_summary`, logged by :mod:`models.train` as
``reference/summary.json``). The reference is always reduced to a binned
summary first (:mod:`models.drift`), so the three cases are one comparison:

- per feature: PSI over the reference's quantile bins (numbers), Jensen–Shannon
  distance (categories), the change in the share missing, and the levels the
  reference never had;
- the score: PSI of the probability, and per unit the share of clients above
  the list's bands (raised ≥ 1.5 ×, high ≥ 3 × the reference's base rate);
- the segment shares (a list's ``segment`` column; for feature tables the
  need × resources grid with the reference's cut points).

Each row gets a level (``ok``, ``watch``, ``act``) from the thresholds in
``models/config/monitoring.yaml``; the verdict is the worst. The result is
written as ``<out>.html`` (with the most drifted features' distributions side
by side) and ``<out>.csv`` and logged as a run of the MLflow experiment
``sote-monitoring``. Only aggregates leave: every bin of a summary holds at
least 50 clients, a unit or segment under 50 clients is blanked, a current
bin under 50 is not drawn, and no level equal to a client id is ever named.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS
from models import drift
from models.drift import MonitoringConfig, load_monitoring_config  # noqa: F401 - part of this module's API
from models.drift_reference import (BAND_MULTIPLES, SUMMARY_ARTIFACT, Side, is_risklist, load_reference,  # noqa: F401
                                    read_input, reference_summary, side_of, unit_bands)
from models.drift_report import output_paths, report_html

#: The MLflow experiment of monitoring runs.
EXPERIMENT = "sote-monitoring"
#: Columns of :attr:`MonitorResult.table` (and of the CSV).
TABLE_COLUMNS = ("section", "name", "kind", "statistic", "value", "level", "reference", "current", "ref_n", "cur_n",
                 "ref_missing", "cur_missing", "missing_change", "unseen", "unseen_share", "suppressed", "note")


@dataclass
class MonitorResult:
    """What :func:`monitor` found.

    Attributes
    ----------
    verdict
        ``ok``, ``watch`` or ``act``: the worst level of any row.
    table
        One row per feature and statistic (sections ``feature``, ``score``,
        ``unit``, ``segment``); the columns of :data:`TABLE_COLUMNS`. Rows of a
        unit or segment under 50 clients are blanked (``suppressed``).
    score_psi
        PSI of the score distribution (None without scores).
    run_id
        The MLflow run (None when not logged).
    paths
        Written files: ``html`` and ``csv``.
    digests
        ``reference`` and ``current`` data digests (:func:`features.provenance.frame_digest`).
    model
        ``name``, ``version`` and ``run_id`` of the model, when one was given.
    """

    verdict: str
    table: pd.DataFrame
    score_psi: float | None = None
    run_id: str | None = None
    paths: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Features at each level."""
        features = self.table[self.table["section"] == "feature"]
        return {lv: int((features["level"] == lv).sum()) for lv in drift.LEVELS}


# ---------------------------------------------------------------- comparison

def _row(**values) -> dict:
    return {c: values.get(c) for c in TABLE_COLUMNS}


def _named(unseen: dict[str, int], withheld: set[str], n: int) -> tuple[str, float]:
    """The unseen levels as text (a count only for 50 clients or more; a client id never named) and their share.

    The share is that of every current client in an unseen level (NaN without clients); the caller blanks it
    in the output when those clients are a small cell.
    """
    shown, hidden = [], 0
    for name, count in sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0])):
        if name in withheld:
            hidden += 1
        elif len(shown) < 10:
            shown.append(f"{name} ({count:,})" if count >= MIN_GROUP_CLIENTS else f"{name} (<{MIN_GROUP_CLIENTS})")
    rest = len(unseen) - hidden - len(shown)
    text = "; ".join(shown) + (f"; … {rest} more" if rest > 0 else "")
    if hidden:
        text += ("; " if text else "") + f"{hidden} level(s) withheld (equal to a client id)"
    return text, (sum(unseen.values()) / n if n else np.nan)


def _compare_feature(name: str, ref: dict, values: pd.Series, config: MonitoringConfig, withheld: set[str]
                     ) -> tuple[dict, dict]:
    """One feature's row and the binned shares drawn in the report."""
    n = len(values)
    note = ""
    if ref["kind"] == "numeric" and ref["counts"] is None:  # under 50 reference values: no bins to compare
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        counts, value, statistic, limits = None, np.nan, "psi", config.psi
        unseen_text, unseen_share, unseen_clients = "", np.nan, 0
        cur_missing = float((n - np.isfinite(x).sum()) / n) if n else np.nan
        note = f"the reference has under {MIN_GROUP_CLIENTS} values: distribution not compared"
    elif ref["kind"] == "numeric":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = np.isfinite(x)
        counts = drift.bin_counts(x[present], ref["edges"])
        value, statistic, limits = drift.psi(drift.reference_counts(ref), counts, config.smoothing), "psi", config.psi
        unseen_text, unseen_share, unseen_clients = "", np.nan, 0
        cur_missing = float((n - present.sum()) / n) if n else np.nan  # as the reference's: missing / n
    else:
        counts, unseen = drift.category_counts(values, ref)
        value, statistic, limits = drift.js_distance(*drift.comparable(ref, counts)), "js", config.js
        cur_missing = float(values.isna().sum() / n) if n else np.nan
        unseen_text, unseen_share = _named(unseen, withheld, n)
        unseen_clients = sum(unseen.values())
    ref_missing = drift.missing_rate(ref)
    change = drift.missing_change(ref, cur_missing)
    levels = [drift.level(value, limits.watch, limits.act),
              drift.level(change, config.missing_rate.watch, config.missing_rate.act),
              drift.level(unseen_share, config.unseen_share.watch, config.unseen_share.act)]
    # levels use the exact figures; a figure about 1 to 49 clients (or all but 1 to 49) is blanked in the output
    if n and drift.missing_fields(n, round(cur_missing * n))["missing"] is None:
        cur_missing = change = np.nan
    if 0 < unseen_clients < MIN_GROUP_CLIENTS:
        unseen_share = np.nan
    row = _row(section="feature", name=name, kind=ref["kind"], statistic=statistic, value=value,
               level=drift.worst(levels), ref_n=ref["n"], cur_n=n, ref_missing=ref_missing, cur_missing=cur_missing,
               missing_change=change, unseen=unseen_text, unseen_share=unseen_share, suppressed=False, note=note)
    if counts is None:
        return row, None
    reference, counts = drift.comparable(ref, counts)
    return row, {"reference": reference, "current": counts}


WITHHELD = "(withheld: equal to a client id)"


def _compare_units(ref_units: dict, p: np.ndarray, units: pd.Series, base: float, config: MonitoringConfig,
                   withheld: set[str]) -> list[dict]:
    current = unit_bands(p, units, base)
    sizes = units.value_counts()
    rows = []
    for unit in sorted(set(ref_units) | set(sizes.index.astype(str))):
        r, c = ref_units.get(unit), current.get(unit)
        for band in BAND_MULTIPLES:
            if r is None or c is None or unit in withheld:
                rows.append(_row(section="unit", name=WITHHELD if unit in withheld else unit, kind="band", statistic=f"share_{band}", level="ok",
                                 suppressed=True, note=f"under {MIN_GROUP_CLIENTS} clients on one side"))
                continue
            change = abs(c[band] - r[band])
            rows.append(_row(section="unit", name=unit, kind="band", statistic=f"share_{band}", value=c[band] - r[band],
                             level=drift.level(change, config.band_share.watch, config.band_share.act),
                             reference=r[band], current=c[band], ref_n=r["n"], cur_n=c["n"], suppressed=False,
                             note=f"at or above {BAND_MULTIPLES[band]:g} x the reference base rate {base:.4f}"))
    return rows


def _compare_segments(ref: dict, segments: pd.Series, config: MonitoringConfig, withheld: set[str]) -> list[dict]:
    counts, unseen = drift.category_counts(segments, ref)
    ref_counts = drift.reference_counts(ref)
    js = drift.js_distance(*drift.comparable(ref, counts))
    n_ref, n_cur = int(ref_counts.sum()), int(counts.sum())
    rows = [_row(section="segment", name="(all segments)", kind="categorical", statistic="js", value=js,
                 level=drift.level(js, config.js.watch, config.js.act), ref_n=ref["n"], cur_n=len(segments),
                 suppressed=False)]
    levels = list(ref["counts"]) + [drift.RARE]
    extra = {k: v for k, v in unseen.items()}
    for name, r, c in [*zip(levels, ref_counts, counts), *((k, 0, v) for k, v in extra.items())]:
        if name == drift.RARE and r == 0 and c == 0:
            continue
        small = (0 < r < MIN_GROUP_CLIENTS) or (0 < c < MIN_GROUP_CLIENTS) or (name == drift.RARE and r == 0)
        if small or name in withheld:
            rows.append(_row(section="segment", name=WITHHELD if name in withheld else name, kind="share", statistic="share", level="ok",
                             suppressed=True, note=f"under {MIN_GROUP_CLIENTS} clients on one side"))
            continue
        rs, cs = (r / n_ref if n_ref else np.nan), (c / n_cur if n_cur else np.nan)
        rows.append(_row(section="segment", name=name, kind="share", statistic="share", value=cs - rs, level="ok",
                         reference=rs, current=cs, ref_n=int(r), cur_n=int(c), suppressed=False))
    return rows


def compare(summary: dict, current: Side, config: MonitoringConfig, *, model_columns=None,
            withheld: set[str] = frozenset()) -> tuple[pd.DataFrame, dict]:
    """Compare a current side with a reference summary: the table and the binned shares of each feature."""
    rows, binned = [], {}
    available = set(current.columns(model_columns))
    for name, ref in summary["features"].items():
        if name in available:
            row, drawn = _compare_feature(name, ref, current.frame[name], config, withheld)
            rows.append(row)
            if drawn is not None:
                binned[name] = drawn
        elif current.kind == "features" and (model_columns is None or name in model_columns):
            rows.append(_row(section="feature", name=name, kind=ref["kind"], level="act", ref_n=ref["n"],
                             suppressed=False, note="missing from the current table"))
    score_psi = None
    if "score" in summary and current.scores is not None:
        ref = summary["score"]
        counts = drift.bin_counts(current.scores, ref["edges"])
        score_psi = drift.psi(drift.reference_counts(ref), counts, config.smoothing)
        binned["(score)"] = {"reference": drift.reference_counts(ref), "current": counts}
        rows.append(_row(section="score", name="probability", kind="numeric", statistic="psi", value=score_psi,
                         level=drift.level(score_psi, config.psi.watch, config.psi.act), reference=ref["base_rate"],
                         current=float(np.nanmean(current.scores)), ref_n=ref["n"], cur_n=len(current.scores),
                         suppressed=False, note="reference and current: mean probability"))
        if "units" in summary and current.units is not None:
            rows += _compare_units(summary["units"], current.scores, current.units, ref["base_rate"], config,
                                   withheld)
    if "segments" in summary and current.segments is not None:
        rows += _compare_segments(summary["segments"], current.segments, config, withheld)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for col in ("value", "reference", "current", "ref_missing", "cur_missing", "missing_change", "unseen_share"):
        table[col] = table[col].astype(float)
    for col in ("ref_n", "cur_n"):
        table[col] = table[col].astype("Int64")
    table["suppressed"] = table["suppressed"].fillna(False).astype(bool)
    for col in ("unseen", "note", "statistic", "kind"):
        table[col] = table[col].fillna("")
    return table, binned


# ---------------------------------------------------------------- the run

def _log(result: MonitorResult, html: str, csv: str, config: MonitoringConfig, tracking_uri: str | None,
         as_of: str) -> str:
    import mlflow

    from features.provenance import versions
    from segmentation.tracking import use_experiment

    use_experiment(EXPERIMENT, tracking_uri)
    t = result.table
    features = t[t["section"] == "feature"]
    counts = result.counts()
    with mlflow.start_run(run_name=f"drift {as_of}".strip()) as run:
        params = {f"{name}_{lv}": getattr(getattr(config, name), lv)
                  for name in ("psi", "js", "missing_rate", "unseen_share", "band_share") for lv in ("watch", "act")}
        params.update(bins=config.bins, smoothing=config.smoothing, reference_kind=result.kinds["reference"],
                      current_kind=result.kinds["current"], features_compared=len(features))
        mlflow.log_params(params)
        mlflow.set_tags({"kind": "monitoring", "verdict": result.verdict,
                         "reference_digest": result.digests.get("reference", ""),
                         "current_digest": result.digests.get("current", ""),
                         **({"as_of": as_of} if as_of else {}),
                         **{f"model_{k}": v for k, v in result.model.items() if v},
                         **{f"version_{k}": v for k, v in versions().items()}})
        metrics = {f"features_{lv}": float(counts[lv]) for lv in drift.LEVELS}
        if result.score_psi is not None and np.isfinite(result.score_psi):
            metrics["score_psi"] = result.score_psi
        for stat in ("psi", "js"):
            values = features.loc[features["statistic"] == stat, "value"].dropna()
            if len(values):
                metrics[f"max_feature_{stat}"] = float(values.max())
        for r in features.itertuples():
            if pd.notna(r.value) and np.isfinite(r.value):
                metrics[f"{r.statistic}_{r.name}"] = float(r.value)
        seg = t[(t["section"] == "segment") & (t["statistic"] == "js")]
        if len(seg) and pd.notna(seg["value"].iloc[0]):
            metrics["segment_js"] = float(seg["value"].iloc[0])
        mlflow.log_metrics(metrics)
        mlflow.log_text(csv, "drift/drift.csv")
        mlflow.log_text(html, "drift/drift.html")
        return run.info.run_id


def monitor(reference, current, *, model_uri: str | None = None, tracking_uri: str | None = None,
            thresholds: MonitoringConfig | str | Path | None = None, segments=None, out: str | Path | None = None,
            log: bool = True) -> MonitorResult:
    """Compare current data with a reference; write the report and CSV, and log the run.

    Parameters
    ----------
    reference
        Feature table or risk list (path or DataFrame), or None to use the
        summary stored with ``model_uri`` at training (its training date's features and scores).
    current
        Feature table or risk list (path or DataFrame); of the same kind as ``reference``.
    model_uri
        A model (``models:/high_use@champion``): scores feature tables on both
        sides (score PSI, bands per unit), restricts the features to its own,
        and tags the run with its name and version.
    tracking_uri
        MLflow store (default ``./mlruns`` or the environment's).
    thresholds
        A :class:`MonitoringConfig`, a YAML file of one, or None for the packaged one.
    segments
        ``(reference_segments, current_segments)``: each a Series of segment
        labels by client id (or one per row), or None. By default a risk list's
        ``segment`` column, and for feature tables the need × resources grid
        cut at the reference.
    out
        Base path: writes ``<out>.html`` and ``<out>.csv`` atomically.
    log
        Log a run to the experiment ``sote-monitoring``.

    Returns
    -------
    MonitorResult

    Raises
    ------
    ValueError
        Neither a reference nor a model; inputs of different kinds; a model
        without a stored summary.
    """
    from features.contract.io import atomic_path

    config = thresholds if isinstance(thresholds, MonitoringConfig) else load_monitoring_config(thresholds)
    if reference is None and model_uri is None:
        raise ValueError("no reference: give a reference feature table or risk list, or a model whose training "
                         "distribution is the reference")
    ref_segments, cur_segments = segments if segments is not None else (None, None)
    model_ref, summary, model_columns, reference_ids = None, None, None, set()
    if model_uri is not None:
        if reference is None:
            model_ref, summary = load_reference(model_uri, tracking_uri)
        else:
            from models.scoring import load_model

            model_ref = load_model(model_uri, tracking_uri)
        model_columns = model_ref.model.columns
    about = {"reference": _describe(reference, model_uri), "current": _describe(current, None)}
    current_frame = read_input(current, "current")
    if summary is None:
        reference_frame = read_input(reference, "reference")
        if is_risklist(reference_frame) != is_risklist(current_frame):
            raise ValueError("reference and current must both be feature tables or both risk lists, got "
                             f"{'a risk list' if is_risklist(reference_frame) else 'a feature table'} and "
                             f"{'a risk list' if is_risklist(current_frame) else 'a feature table'}")
        ref_side = side_of(reference_frame, model_ref.model if model_ref else None, ref_segments)
        summary = reference_summary(reference_frame, ref_side.columns(model_columns), scores=ref_side.scores,
                                    units=ref_side.units, segments=ref_side.segments, grid_thresholds=ref_side.grid,
                                    config=config)
        ref_kind, ref_digest = ref_side.kind, ref_side.digest
        if "client_id" in reference_frame:
            reference_ids = set(reference_frame["client_id"].astype(str))
    else:
        ref_kind, ref_digest = "summary", summary.get("digest", "")
    grid = (summary.get("segments") or {}).get("grid_thresholds")
    cur_model = model_ref.model if model_ref is not None and not is_risklist(current_frame) else None
    cur_side = side_of(current_frame, cur_model, cur_segments, grid)
    if cur_segments is None and grid is None and cur_side.kind == "features":
        cur_side.segments = None  # the reference's segments were not grid cells: nothing comparable
    withheld = set(current_frame["client_id"].astype(str)) if "client_id" in current_frame else set()
    withheld |= reference_ids
    table, binned = compare(summary, cur_side, config, model_columns=model_columns, withheld=withheld)
    score_psi = float(table.loc[table["section"] == "score", "value"].iloc[0]) if (table["section"] == "score").any() \
        else None
    model_info = ({"name": model_ref.name, "version": model_ref.version, "run_id": model_ref.run_id}
                  if model_ref is not None else {})
    result = MonitorResult(drift.worst(table["level"]), table, score_psi, digests={"reference": ref_digest,
                           "current": cur_side.digest}, model=model_info,
                           kinds={"reference": ref_kind, "current": cur_side.kind})
    html = report_html(result, summary, binned, config, about)
    csv = table.to_csv(index=False)
    if out is not None:
        paths = output_paths(out)
        with atomic_path(paths["html"]) as tmp_html, atomic_path(paths["csv"]) as tmp_csv:
            Path(tmp_html).write_text(html, encoding="utf-8")
            Path(tmp_csv).write_text(csv, encoding="utf-8")
        result.paths = {k: Path(v) for k, v in paths.items()}
    if log:
        as_of = ""
        if "as_of" in current_frame and len(current_frame):
            as_of = str(pd.Timestamp(current_frame["as_of"].iloc[0]).date())
        result.run_id = _log(result, html, csv, config, tracking_uri, as_of)
    return result


def _describe(source, model_uri: str | None) -> str:
    if source is None:
        return f"training distribution stored with {model_uri}"
    if isinstance(source, pd.DataFrame):
        return f"a table of {len(source):,} rows"
    return Path(source).name
