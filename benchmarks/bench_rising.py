"""The measures of issue 13 on a synthetic county: rising_high_use against high_use.

For each target: the validation-date figures of the model, last year's cost,
the age-sex-comorbidity baseline and the oracle (AUROC; precision and recall at
the top 1, 2 and 5 %), calibration within the top 2 % and 5 %, and, on the
risk list scored at 2025-01-01, who its top 5 % are (already in last year's
top decile of cost, in an intensive episode) and the reason-type mix of their
top-3 reasons. Writes ``benchmarks/results/rising_<clients>.json`` and a
Markdown table beside it.

    .venv/bin/python benchmarks/bench_rising.py --data out/county [--out-dir /tmp/rising]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

TARGETS = ("rising_high_use", "high_use")
FIGURES = ("auroc", "precision_top1pct", "precision_top2pct", "precision_top5pct", "recall_top1pct",
           "recall_top2pct", "recall_top5pct")


def main() -> None:
    from features.config.defaults import SCORE_AS_OF
    from features.contract.load import load_tables
    from features.histories.build import ClientHistories
    from models.gate import QualityGateError
    from models.scoring import score
    from models.train import TrainConfig, top_metrics, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="a synthetic county folder (with truth.parquet)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/sote_bench_rising"),
                        help="risk lists and the MLflow store of this run (not committed)")
    parser.add_argument("--explain-share", type=float, default=0.2)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{args.out_dir / 'mlflow.db'}"
    t0 = time.perf_counter()
    tables = load_tables(args.data)
    clients = int(len(tables.tables["clients"]))
    histories = ClientHistories(tables, cache=True)
    report: dict = {"data": str(args.data), "clients": clients, "score_as_of": SCORE_AS_OF, "targets": {}}
    for target in TARGETS:
        started = time.perf_counter()
        try:
            result = train(tables, TrainConfig(target=target), register=True, tracking_uri=uri,
                           truth=args.data / "truth.parquet", histories=histories,
                           progress=lambda m, t=target: print(f"{t}: {m}", flush=True))
            registered = True
        except QualityGateError as err:
            result, registered = err.result, False
        metrics = result.metrics.set_index("model")
        entry = {"n_valid": int(metrics.loc["lightgbm", "n"]), "prevalence": float(metrics.loc["lightgbm", "prevalence"]),
                 "models": {name: {f: float(metrics.loc[name, f]) for f in FIGURES} for name in metrics.index},
                 "top_calibration": result.top_calibration.to_dict("records"),
                 "validation_top": result.top, "top_metrics": top_metrics(result.top_calibration, result.top),
                 "gate": result.gate.summary(), "train_seconds": round(time.perf_counter() - started, 1)}
        m = entry["models"]
        entry["beats_both_baselines_precision_top2pct"] = bool(
            m["lightgbm"]["precision_top2pct"] > max(m["prior_cost"]["precision_top2pct"],
                                                     m["age_sex_comorbidity"]["precision_top2pct"]))
        if registered:
            sidecar = score(f"models:/{target}@champion", tables, SCORE_AS_OF, args.out_dir / f"{target}.parquet",
                            tracking_uri=uri, histories=histories, explain_share=args.explain_share)
            entry["list"] = {k: sidecar[k] for k in ("rows", "outside_cohort", "list_kind", "cohort", "top",
                                                     "probability_bounds", "intensive_ongoing", "prior_high_use",
                                                     "seconds")}
        report["targets"][target] = entry
        print(json.dumps({target: entry["models"]["lightgbm"]}, indent=1), flush=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    stem = results / f"rising_{clients}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=float))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    """The measures as Markdown tables (as in docs/models.md)."""
    lines = [f"County of {report['clients']:,} clients; validation 2024-01-01, lists {report['score_as_of']}.", ""]
    for target, entry in report["targets"].items():
        lines += [f"### {target} (validation cohort {entry['n_valid']:,}, base rate {entry['prevalence']:.3f})", "",
                  "| ranking | AUROC | precision top 1 / 2 / 5 % | recall top 1 / 2 / 5 % |", "|---|---|---|---|"]
        for name, f in entry["models"].items():
            lines.append(f"| {name} | {f['auroc']:.3f} | {f['precision_top1pct']:.3f} / {f['precision_top2pct']:.3f}"
                         f" / {f['precision_top5pct']:.3f} | {f['recall_top1pct']:.3f} / {f['recall_top2pct']:.3f}"
                         f" / {f['recall_top5pct']:.3f} |")
        cal = pd.DataFrame(entry["top_calibration"])
        lines += ["", "calibration at the top (validation): " + "; ".join(
            f"top {r.share:.0%}: predicted {r.predicted:.3f}, observed {r.observed:.3f}, gap {r.gap:+.3f}"
            for r in cal.itertuples()),
            f"model beats both baselines on precision at the top 2 %: "
            f"{'yes' if entry['beats_both_baselines_precision_top2pct'] else 'no'}"]
        v = entry["validation_top"]
        lines.append(f"validation top 5 %: {v['prior_high_use']:.1%} last year's top decile, "
                     f"{v['intensive_ongoing']:.1%} intensive episode; reasons: change "
                     f"{v['reason_types']['change']:.1%}, level {v['reason_types']['level']:.1%}, demographic "
                     f"{v['reason_types']['demographic']:.1%}")
        if "list" in entry:
            top = entry["list"]["top"]
            mix = top.get("reason_types", {})
            bounds = entry["list"]["probability_bounds"]
            lines.append(f"list {report['score_as_of']} ({entry['list']['rows']:,} clients): top 5 % "
                         f"({top['clients']:,}) {top['prior_high_use']:.1%} last year's top decile, "
                         f"{top['intensive_ongoing']:.1%} intensive episode, {top['either']:.1%} either; reasons: "
                         f"change {mix.get('change', float('nan')):.1%}, level {mix.get('level', float('nan')):.1%}, "
                         f"demographic {mix.get('demographic', float('nan')):.1%}; shown as over "
                         f"{bounds['over']}: {bounds['over_rows']:,} clients")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
