"""Two scenarios side by side for one municipality: what a planner reads off the tidy table.

>>> from scenarios.compare import compare_two, compare_chart
>>> compare_two(result.table, "Hyvinkää", "dynamics", "early_support")          # doctest: +SKIP
>>> compare_chart(result.table, "Hyvinkää", "dynamics", "early_support",
...               service="housing_24h", measure="places_24h")                  # doctest: +SKIP

Both read the whole municipality (all segments) and one projection variant; they
work on the unsuppressed tidy table (the county's own analysts' view), so small
cells are not left out here — :func:`scenarios.report.disclosed` does that for what
leaves the county.
"""
from __future__ import annotations

import pandas as pd

from scenarios.report import SERVICES, TEXT, fan_svg
from scenarios.run import ALL

#: The measures compared per service line (the volume measure is contacts or care days, whichever the line has).
COMPARED = ("clients", "volume", "places_24h", "cost")


def _part(table: pd.DataFrame, municipality: str, scenarios, variant: str | None) -> pd.DataFrame:
    munis = set(table["municipality"].astype(str))
    if municipality not in munis:
        raise ValueError(f"no municipality {municipality!r} in the table; it has {sorted(munis)}")
    have = set(table["scenario"].astype(str))
    missing = [s for s in scenarios if s not in have]
    if missing:
        raise ValueError(f"no scenario(s) {missing} in the table; it has {sorted(have)}")
    variants = list(dict.fromkeys(table["variant"].astype(str)))
    variant = variants[0] if variant is None else variant
    if variant not in variants:
        raise ValueError(f"no projection variant {variant!r} in the table; it has {variants}")
    t = table[(table["municipality"].astype(str) == municipality) & (table["segment"].astype(str) == ALL)
              & (table["variant"].astype(str) == variant) & table["scenario"].astype(str).isin(scenarios)]
    return t.assign(scenario=t["scenario"].astype(str), service=t["service"].astype(str),
                    measure=t["measure"].astype(str))


def compare_two(table: pd.DataFrame, municipality: str, a: str, b: str, *, year: int | None = None,
                variant: str | None = None, lang: str = "en") -> pd.DataFrame:
    """Scenario ``b`` against ``a`` in one municipality and year, per service line.

    Parameters
    ----------
    table
        The tidy table of :func:`scenarios.run.project_scenarios` (``result.table``).
    municipality
        A municipality of the table (or ``(all)`` for the whole county).
    a, b
        The reference scenario and the one compared with it.
    year
        The year compared (default: the last); the base year is shown beside it.
    variant
        Projection variant (default: the table's first).
    lang
        Language of the service-line names (``fi``, ``sv``, ``en``).

    Returns
    -------
    pandas.DataFrame
        One row per service line and measure (``clients``, ``volume`` = contacts or care days,
        ``places_24h``, ``cost``; the total cost as service ``(all)``): ``line``, ``service``,
        ``measure``, ``base`` (the base year, equal in both), ``a``, ``a_low``, ``a_high``, ``b``,
        ``b_low``, ``b_high``, ``difference`` (b - a) and ``difference_pct`` (of a).

    Raises
    ------
    ValueError
        Naming the municipality, scenario or variant the table does not have.
    """
    t = _part(table, municipality, [a, b], variant)
    years = sorted(t["year"].unique())
    year = years[-1] if year is None else int(year)
    if year not in years:
        raise ValueError(f"no year {year} in the table; it has {years[0]}-{years[-1]}")
    t = t.assign(measure=t["measure"].replace({"contacts": "volume", "care_days": "volume"}))
    t = t[t["measure"].isin(COMPARED) & ((t["service"] != ALL) | (t["measure"] == "cost"))]
    key = ["service", "measure"]
    base = t[(t["year"] == years[0]) & (t["scenario"] == a)].set_index(key)["value"].rename("base")
    cols = {}
    for name, s in (("a", a), ("b", b)):
        part = t[(t["year"] == year) & (t["scenario"] == s)].set_index(key)
        cols[name], cols[f"{name}_low"], cols[f"{name}_high"] = part["value"], part["low"], part["high"]
    out = pd.concat([base, pd.DataFrame(cols)], axis=1).reset_index()
    out["difference"] = out["b"] - out["a"]
    out["difference_pct"] = (out["difference"] / out["a"].where(out["a"] != 0)) * 100
    i = ("fi", "sv", "en").index(lang)
    out.insert(0, "line", out["service"].map(lambda v: SERVICES[v][i] if v in SERVICES
                                             else TEXT[lang]["total"] if v == ALL else v))
    order = {s: k for k, s in enumerate([ALL, *SERVICES])}
    out = out.sort_values(["service", "measure"], key=lambda c: c.map(order) if c.name == "service"
                          else c.map({m: k for k, m in enumerate(COMPARED)}), kind="stable")
    return out.reset_index(drop=True).assign(year=year, base_year=years[0])


def compare_chart(table: pd.DataFrame, municipality: str, a: str, b: str, *, service: str = ALL,
                  measure: str = "cost", variant: str | None = None, labels: dict[str, str] | None = None,
                  title: str | None = None) -> str:
    """An SVG fan chart of one measure of one service line in one municipality: ``a`` with its interval, and ``b``.

    ``labels`` maps scenario names to the names shown (default: the names themselves).
    """
    t = _part(table, municipality, [a, b], variant)
    t = t[(t["service"] == service) & (t["measure"] == measure)]
    if t.empty:
        raise ValueError(f"no {measure!r} of service {service!r} in the table")
    labels = labels or {}
    series = {labels.get(s, s): t[t["scenario"] == s][["year", "value", "low", "high"]] for s in (a, b)}
    return fan_svg(series, title or f"{municipality}: {measure} ({service})", band=labels.get(a, a))
