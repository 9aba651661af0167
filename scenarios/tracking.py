"""A scenarios run in MLflow: the config, the headline figures and the aggregates (small cells left out).

Only aggregates are logged: per scenario, variant, year, municipality, segment
and service line, and only the rows whose base year rests on at least
:data:`features.disclosure.MIN_GROUP_CLIENTS` real clients
(:func:`scenarios.report.disclosed`); never a client id.
"""
from __future__ import annotations

import dataclasses
import json

from scenarios.report import disclosed
from scenarios.run import ALL, ScenarioResult
from segmentation.tracking import use_experiment


def _plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_plain(v) for v in obj]
    return obj


def track_scenarios(result: ScenarioResult, report_html: str | None = None, experiment: str = "sote-scenarios",
                    tracking_uri: str | None = None) -> str:
    """Log a scenarios run; return its run id.

    Parameters: ``base_year``, ``to_year``, bootstrap rounds, variants, scenarios;
    metrics: each scenario's total cost and 24-hour care places in the last year
    (first variant); artifacts: ``scenarios/config.json``, ``scenarios/aggregates.csv``
    (disclosed rows) and the HTML report.
    """
    import mlflow

    use_experiment(experiment, tracking_uri)
    t = result.table
    base, last = result.years[0], result.years[-1]
    variant = result.meta["variants"][0]
    head = t[(t["municipality"] == ALL) & (t["segment"] == ALL) & (t["variant"] == variant) & (t["year"] == last)]
    metrics = {}
    for name in head["scenario"].unique():
        part = head[head["scenario"] == name].set_index(["service", "measure"])["value"]
        metrics[f"{name}.cost_total_{last}"] = float(part[(ALL, "cost")])
        if ("housing_24h", "places_24h") in part.index:
            metrics[f"{name}.places_24h_{last}"] = float(part[("housing_24h", "places_24h")])
    with mlflow.start_run(run_name=f"scenarios {base}-{last}") as run:
        mlflow.log_params({"base_year": base, "to_year": last, "bootstrap": result.meta["rounds"],
                           "variants": ",".join(result.meta["variants"]),
                           "scenarios": ",".join(dict.fromkeys(t["scenario"])), "interval": result.config.interval,
                           "seed": result.config.seed})
        mlflow.set_tags({"kind": "scenarios"})
        mlflow.log_metrics(metrics)
        mlflow.log_text(json.dumps(_plain(result.config), indent=2, ensure_ascii=False), "scenarios/config.json")
        mlflow.log_text(disclosed(t).to_csv(index=False), "scenarios/aggregates.csv")
        if report_html is not None:
            mlflow.log_text(report_html, "scenarios/scenarios.html")
        return run.info.run_id
