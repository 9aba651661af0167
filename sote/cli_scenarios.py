"""``sote scenarios``: service-need scenarios to a target year, a thin command over :mod:`scenarios.run`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sote.app import app, check_writable, console, quiet_libraries


@app.command()
def scenarios(
    data: Path = typer.Option(..., help="Folder with the canonical tables (the base year and 1 January after it)."),
    projection: Path = typer.Option(..., help="Population projection (.csv/.parquet) in the layout of "
                                              "docs/scenarios.md (municipality, sex, age, year, variant, "
                                              "population, deaths)."),
    config: Optional[Path] = typer.Option(None, help="Scenarios YAML (default: the shipped "
                                                     "scenarios/config/scenarios.yaml)."),
    base_year: int = typer.Option(..., "--base-year", help="Base year: a full year of records."),
    to: int = typer.Option(..., "--to", help="Last projected year."),
    out: Path = typer.Option(..., help="Output folder: scenarios.parquet, scenarios.csv, scenarios.html."),
    needs_config: Optional[Path] = typer.Option(None, "--needs-config", help="Need-based segments YAML."),
    unit_costs: Optional[Path] = typer.Option(None, "--unit-costs", help="Unit-cost YAML (default: the contract's)."),
    bootstrap: Optional[int] = typer.Option(None, help="Bootstrap rounds (default: the config's)."),
    lang: str = typer.Option("fi", help="Report language: fi | sv | en."),
    track: bool = typer.Option(True, help="Log the run (config and aggregates, small cells left out) to MLflow."),
    experiment: str = typer.Option("sote-scenarios", help="MLflow experiment."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: local store in ./mlruns)."),
    overwrite: bool = typer.Option(False, help="Write into an --out folder that holds other files "
                                               "(only sote's own files are ever replaced)."),
) -> None:
    """Clients, contacts or care days, 24-hour care places and costs per year, municipality, segment and
    service line under each declared scenario, with intervals."""
    from features.contract.costs import load_unit_costs
    from features.contract.io import atomic_dir
    from features.contract.load import load_tables
    from scenarios.projection import load_projection
    from scenarios.report import TEXT, scenarios_html
    from scenarios.run import check_projection_years, project_scenarios
    from scenarios.spec import load_scenarios
    from sote.app import UserError
    from sote.options import guard_dir

    if lang not in TEXT:
        raise UserError(f"--lang must be one of {', '.join(TEXT)}, got {lang!r}")
    if to <= base_year:
        raise UserError(f"--to ({to}) must be after --base-year ({base_year})")
    if bootstrap is not None and bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {bootstrap}")
    guard_dir(out, "--out", overwrite=overwrite, inputs=[data, projection])
    check_writable(folders=(out,))
    cfg = load_scenarios(config)                      # a wrong key is named before any work
    costs = load_unit_costs(unit_costs)
    proj = load_projection(projection)
    check_projection_years(proj, base_year, to)
    tables = load_tables(data)
    with console.status(f"projecting {len(cfg.scenarios)} scenario(s), {base_year}-{to}"):
        result = project_scenarios(tables, proj, base_year=base_year, to_year=to, config=cfg,
                                   needs_config=needs_config, unit_costs=costs, bootstrap=bootstrap)
    html = scenarios_html(result, lang)
    with atomic_dir(out, overwrite=overwrite, option="--out") as staging:
        result.table.to_parquet(staging / "scenarios.parquet", index=False)
        result.table.to_csv(staging / "scenarios.csv", index=False)
        (staging / "scenarios.html").write_text(html, encoding="utf-8")
    if track:
        quiet_libraries()
        from scenarios.tracking import track_scenarios

        run_id = track_scenarios(result, html, experiment, tracking_uri)
        console.print(f"logged to MLflow run {run_id} (experiment {experiment})")
    t = result.table
    head = t[(t["municipality"] == "(all)") & (t["segment"] == "(all)") & (t["service"] == "(all)")
             & (t["measure"] == "cost") & (t["variant"] == result.meta["variants"][0]) & (t["year"] == to)]
    console.print(head[["scenario", "value", "low", "high"]].to_string(index=False), markup=False)
    console.print(f"scenarios written to {out}/ (scenarios.parquet, scenarios.csv, scenarios.html)")
