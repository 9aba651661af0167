"""The demo's scenario step: the shipped scenarios on the demo county, written to ``out/scenarios``.

>>> from scenarios.demo_step import demo_scenarios
>>> summary = demo_scenarios(tables, "out/county", "out/scenarios", base_year=2024, to_year=2030,
...                          histories=histories, tracking_uri=None)        # doctest: +SKIP

``tables`` may be the demo's lazily read :class:`features.contract.stream.ValidatedDataset`:
only the clients and the event rows that the base year can touch are read (see
:func:`base_year_frames`), so the step's memory does not grow with the years of data.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from features.contract.tables import EPISODE_SERVICES
from scenarios.base import VISIT_WINDOW_DAYS

#: Bootstrap rounds of the demo (the shipped config has 200; the demo's budget is 30 s on the default county:
#: 32.6 s of CPU with 20 rounds, about 0.4-0.6 s a round, so 10; docs/scenarios.md "Performance").
DEMO_BOOTSTRAP = 10
#: Event columns the base-year panel reads.
EVENT_COLUMNS = ["client_id", "service", "start", "end", "professional"]


def base_year_frames(tables, base_year: int) -> dict[str, pd.DataFrame]:
    """The clients and the event rows a base year's panel reads, from tables or a validated dataset.

    An event row is kept when it starts before 1 January after the base year and either
    starts within :data:`~scenarios.base.VISIT_WINDOW_DAYS` days (plus one) before the base
    year, or is an episode that ends on that day or later or has no end. Every other row
    neither falls inside the year nor marks a client as in a service on either date, so the
    panel equals the panel of the whole tables (a test).

    Parameters
    ----------
    tables
        A :class:`features.contract.stream.ValidatedDataset` (read with DuckDB), validated
        tables or a mapping of name -> DataFrame.
    base_year
        The base year.

    Returns
    -------
    dict
        ``{"clients": ..., "events": ...}``.
    """
    t0 = pd.Timestamp(f"{base_year}-01-01")
    t1 = pd.Timestamp(f"{base_year + 1}-01-01")
    edge = t0 - pd.Timedelta(days=VISIT_WINDOW_DAYS + 1)
    if hasattr(tables, "read"):
        episodes = ", ".join(f"'{s}'" for s in EPISODE_SERVICES)
        where = (f"start < TIMESTAMP '{t1:%Y-%m-%d}' AND (start >= TIMESTAMP '{edge:%Y-%m-%d}' OR "
                 f"\"end\" >= TIMESTAMP '{edge:%Y-%m-%d}' OR (\"end\" IS NULL AND service IN ({episodes})))")
        import pyarrow.parquet as pq

        names = pq.read_schema(tables.paths()["events"]).names
        return {"clients": tables.read("clients"),
                "events": tables.read("events", [c for c in EVENT_COLUMNS if c in names], where=where)}
    frames = tables.tables if hasattr(tables, "tables") else tables
    ev = frames["events"]
    start, end = pd.to_datetime(ev["start"]), pd.to_datetime(ev["end"])
    keep = (start < t1) & ((start >= edge) | (end >= edge) | (end.isna() & ev["service"].isin(EPISODE_SERVICES)))
    return {"clients": frames["clients"], "events": ev.loc[keep, [c for c in EVENT_COLUMNS if c in ev]]}


def demo_scenarios(tables, data: str | Path, out: str | Path, *, base_year: int, to_year: int,
                   bootstrap: int = DEMO_BOOTSTRAP, histories=None, tracking_uri: str | None = None,
                   track: bool = True, lang: str = "fi", experiment: str = "sote-scenarios") -> dict:
    """Run the shipped scenarios on the demo county and write ``out``; return a summary for the demo.

    Parameters
    ----------
    tables
        The county (a validated dataset or tables; see :func:`base_year_frames`).
    data
        The county's folder: its ``projection.csv`` is used when it has one (``sote synth``
        writes it); otherwise the projection is made from the records
        (:func:`scenarios.projection_synth.county_projection`) and written to ``out``.
    out
        Output folder (replaced whole, atomically): ``scenarios.parquet``, ``scenarios.csv``,
        ``scenarios.html`` (and ``projection.csv`` when it was made here).
    base_year, to_year
        Base year (a full year of records with 1 January after it) and last year.
    bootstrap
        Bootstrap rounds (few: the demo's budget).
    histories
        The demo's :class:`features.histories.build.ClientHistories` (its cached features of
        1 January of the base year and the next year are reused).
    tracking_uri, track, experiment
        The MLflow run (aggregates only, small cells left out; :mod:`scenarios.tracking`).
    lang
        Report language (``fi``, ``sv``, ``en``).

    Returns
    -------
    dict
        ``seconds``, ``bootstrap``, ``projection`` (where it came from), ``run_id`` and, per
        scenario, the total cost and 24-hour care places of ``to_year`` (first variant,
        whole county) and of the base year.
    """
    from features.contract.io import atomic_dir
    from scenarios.projection import load_projection
    from scenarios.projection_synth import PROJECTION_FILE, county_projection, full_years
    from scenarios.report import scenarios_html
    from scenarios.run import ALL, check_projection_years, project_scenarios

    clock = time.perf_counter()
    frames = base_year_frames(tables, base_year)
    given = Path(data) / PROJECTION_FILE
    if given.is_file():
        projection, made = load_projection(given), False
    else:
        period = getattr(tables, "period", None)
        years = (full_years(period.start, period.end) if period is not None
                 else list(range(base_year - 2, base_year + 2)))
        projection, made = county_projection(frames, years, to_year), True
    check_projection_years(projection, base_year, to_year)
    result = project_scenarios(frames, projection, base_year=base_year, to_year=to_year, bootstrap=bootstrap,
                               histories=histories)
    html = scenarios_html(result, lang)
    with atomic_dir(out, option="demo scenarios folder") as staging:
        result.table.to_parquet(staging / "scenarios.parquet", index=False)
        result.table.to_csv(staging / "scenarios.csv", index=False)
        (staging / "scenarios.html").write_text(html, encoding="utf-8")
        if made:
            projection.to_csv(staging / PROJECTION_FILE, index=False, float_format="%.4f")
    run_id = None
    if track:
        from scenarios.tracking import track_scenarios

        run_id = track_scenarios(result, html, experiment, tracking_uri)
    t = result.table
    head = t[(t["municipality"] == ALL) & (t["segment"] == ALL) & (t["variant"] == result.meta["variants"][0])
             & t["year"].isin([base_year, to_year])]
    figures = {}
    for name in head["scenario"].unique():
        part = head[head["scenario"] == name].set_index(["year", "service", "measure"])["value"]
        figures[str(name)] = {f"{what}_{y}": round(float(part[(y, service, measure)]), 1)
                              for y in (base_year, to_year)
                              for what, service, measure in (("cost_eur", ALL, "cost"),
                                                             ("places_24h", "housing_24h", "places_24h"))}
    return {"seconds": round(time.perf_counter() - clock, 1), "bootstrap": bootstrap,
            "projection": str(given) if not made else f"made from the records ({out}/{PROJECTION_FILE})",
            "run_id": run_id, "scenarios": figures}
