"""The scenarios report: a self-contained HTML page (inline SVG fan charts), in Finnish, Swedish or English.

Small cells: a figure whose base year rests on fewer real clients than
:data:`features.disclosure.MIN_GROUP_CLIENTS` (``base_clients``) is left out
here and in MLflow (:func:`disclosed`); the tidy table keeps it for the
county's own analysts.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS
from scenarios.run import ALL, ScenarioResult

TEXT = {
    "fi": {"title": "Palvelutarpeen skenaariot", "cost": "Kustannukset (€, perusvuoden hinnoin)",
           "by_line": "Kustannukset palvelulinjoittain, koko alue", "by_muni": "Kustannukset kunnittain",
           "mix": "Asukkaat segmenteittäin", "table": "Skenaariot rinnakkain", "base": "Perusvuosi",
           "interval": "väli", "suppressed": "Pienet solut (alle {n} asiakasta perusvuonna) jätetty pois.",
           "variant": "Väestöennusteen vaihtoehto", "places": "Ympärivuorokautisen hoidon paikat",
           "clients": "Asiakkaat", "total": "Yhteensä", "scenario": "Skenaario", "year": "Vuosi",
           "band": "Kuvissa väli on vertailuskenaarion."},
    "sv": {"title": "Scenarier för servicebehov", "cost": "Kostnader (€, basårets priser)",
           "by_line": "Kostnader per tjänst, hela området", "by_muni": "Kostnader per kommun",
           "mix": "Invånare per segment", "table": "Scenarierna sida vid sida", "base": "Basår",
           "interval": "intervall", "suppressed": "Små celler (under {n} klienter basåret) utelämnade.",
           "variant": "Befolkningsprognosens alternativ", "places": "Platser i heldygnsomsorg",
           "clients": "Klienter", "total": "Totalt", "scenario": "Scenario", "year": "År",
           "band": "I figurerna visas referensscenariots intervall."},
    "en": {"title": "Service-need scenarios", "cost": "Costs (€, base-year prices)",
           "by_line": "Costs per service line, whole county", "by_muni": "Costs per municipality",
           "mix": "Residents per segment", "table": "Scenarios side by side", "base": "Base year",
           "interval": "interval", "suppressed": "Small cells (under {n} clients in the base year) left out.",
           "variant": "Projection variant", "places": "24-hour care places",
           "clients": "Clients", "total": "Total", "scenario": "Scenario", "year": "Year",
           "band": "The charts shade the reference scenario's interval."},
}
SERVICES = {
    "primary_care_visit": ("Terveysaseman käynnit", "Hälsocentralbesök", "Primary care visits"),
    "remote_contact": ("Etäasioinnit", "Distanskontakter", "Remote contacts"),
    "emergency": ("Päivystys", "Jour", "Emergency"),
    "specialist_outpatient": ("Erikoissairaanhoidon avohoito", "Specialiserad öppenvård", "Specialist outpatient"),
    "inpatient": ("Vuodeosastohoito", "Vårdavdelning", "Inpatient care"),
    "home_care": ("Kotihoito", "Hemvård", "Home care"),
    "housing_24h": ("Ympärivuorokautinen palveluasuminen", "Boende med heldygnsomsorg", "24-hour housing"),
    "mental_health_substance": ("Mielenterveys- ja päihdepalvelut", "Mentalvård och missbruksvård",
                                "Mental health and substance"),
    "social_work": ("Sosiaalityö", "Socialt arbete", "Social work"),
    "disability_services": ("Vammaispalvelut", "Funktionshinderservice", "Disability services"),
    "rehabilitation": ("Kuntoutus", "Rehabilitering", "Rehabilitation"),
    "oral_health": ("Suun terveydenhuolto", "Munhälsovård", "Oral health"),
    "child_family": ("Lapsi- ja perhepalvelut", "Barn- och familjetjänster", "Child and family services"),
}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def disclosed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose base year rests on at least ``MIN_GROUP_CLIENTS`` real clients (what may leave the county)."""
    return table[table["base_clients"] >= MIN_GROUP_CLIENTS]


def _fmt(x: float) -> str:
    return f"{x:,.0f}".replace(",", "\u202f")


def fan_svg(series: dict[str, pd.DataFrame], title: str, band: str | None = None, width: int = 540,
            height: int = 250) -> str:
    """An SVG line chart: one line per name (``year``, ``value``) and a legend; the series ``band`` (default:
    the first) also gets its interval (``low``, ``high``) as a shaded fan."""
    frames = [f for f in series.values() if len(f)]
    if not frames:
        return ""
    band = band if band in series else next(iter(series))
    allv = pd.concat(frames)
    x0, x1 = int(allv["year"].min()), int(allv["year"].max())
    y1 = float(max(allv["value"].max(), series[band]["high"].max() if len(series[band]) else 0)) * 1.05 or 1.0
    y0 = 0.0
    rows = (len(series) + 2) // 3
    pad_l, pad_b, pad_t, legend = 70, 22, 22, 14 * rows
    plot_h = height - pad_t - pad_b - legend

    def px(year, v):
        x = pad_l + (year - x0) / max(x1 - x0, 1) * (width - pad_l - 12)
        y = pad_t + (1 - (v - y0) / (y1 - y0)) * plot_h
        return x, y

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{pad_l}" y="14" font-size="12" font-weight="bold">{html.escape(title)}</text>']
    for tick in np.linspace(y0, y1, 4):
        _, y = px(x0, tick)
        parts.append(f'<line x1="{pad_l}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(tick)}</text>')
    for year in range(x0, x1 + 1):
        x, _ = px(year, y0)
        parts.append(f'<text x="{x:.1f}" y="{pad_t + plot_h + 14:.1f}" font-size="10" '
                     f'text-anchor="middle">{year}</text>')
    for i, (name, f) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        lx, ly = 8 + (i % 3) * (width // 3), height - legend + 10 + 14 * (i // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{ly - 3}" font-size="10">{html.escape(name)}</text>')
        if not len(f):
            continue
        f = f.sort_values("year")
        if name == band:
            upper = [px(r.year, r.high) for r in f.itertuples()]
            lower = [px(r.year, r.low) for r in f.itertuples()][::-1]
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower)
            parts.append(f'<polygon points="{pts}" fill="{colour}" opacity="0.18"/>')
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (px(r.year, r.value) for r in f.itertuples()))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def scenarios_html(result: ScenarioResult, lang: str = "fi") -> str:
    """The report page: fan charts per service line and municipality, the segment mix, the scenarios side by side."""
    if lang not in TEXT:
        raise ValueError(f"no report texts for language {lang!r} (have {sorted(TEXT)})")
    tx = TEXT[lang]
    cfg = result.config
    t = disclosed(result.table)
    variant = result.meta["variants"][0]
    t = t[t["variant"] == variant]
    names = {n: s.labels[lang] for n, s in cfg.scenarios.items()}
    seg_names = {s: result.panel.labels[s][lang] for s in result.panel.need_segments}
    seg_names[ALL] = tx["total"]
    base, last = result.years[0], result.years[-1]
    county = t[(t["municipality"] == ALL) & (t["segment"] == ALL)]
    out = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{tx['title']}</title>",
           "<style>body{font-family:sans-serif;margin:2em;max-width:1150px}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}"
           ".charts{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>",
           f"<h1>{tx['title']} {base}–{last}</h1>",
           f"<p>{tx['variant']}: {html.escape(variant)}. {tx['cost']}; {int(cfg.interval * 100)} % "
           f"{tx['interval']} (bootstrap, {result.meta['rounds']}). "
           f"{tx['suppressed'].format(n=MIN_GROUP_CLIENTS)} {tx['band']}</p>"]

    order = [n for n in cfg.scenarios if n in set(t["scenario"])]
    reference = cfg.reference if cfg.reference in order else (order[0] if order else None)

    def series(frame):
        return {names[n]: frame[frame["scenario"] == n][["year", "value", "low", "high"]] for n in order}

    def fan(frame, title):
        return fan_svg(series(frame), title, band=names.get(reference))

    out.append(f"<h2>{tx['table']}</h2>")
    total = county[(county["service"] == ALL) & (county["measure"] == "cost")]
    places = county[(county["measure"] == "places_24h")]
    rows = []
    for n in order:
        c = total[total["scenario"] == n].set_index("year")
        if base not in c.index or last not in c.index:
            continue
        p = places[places["scenario"] == n].set_index("year")
        rows.append(f"<tr><th style='text-align:left'>{html.escape(names[n])}</th><td>{_fmt(c.loc[base, 'value'])}</td>"
                    f"<td>{_fmt(c.loc[last, 'value'])} ({_fmt(c.loc[last, 'low'])}–{_fmt(c.loc[last, 'high'])})</td>"
                    f"<td>{(c.loc[last, 'value'] / c.loc[base, 'value'] - 1) * 100:+.1f} %</td>"
                    + (f"<td>{p.loc[last, 'value']:.1f}</td>" if len(p) else "<td></td>") + "</tr>")
    out.append(f"<table><tr><th>{tx['scenario']}</th><th>{tx['cost']} {base}</th><th>{last}</th><th>Δ</th>"
               f"<th>{tx['places']} {last}</th></tr>{''.join(rows)}</table>")
    out.append(f"<h2>{tx['by_line']}</h2><div class='charts'>")
    for v in county.loc[county["measure"] == "cost", "service"].unique():
        if v == ALL:
            continue
        title = SERVICES[v][("fi", "sv", "en").index(lang)] if v in SERVICES else v
        out.append(fan(county[(county["service"] == v) & (county["measure"] == "cost")], title))
    out.append(f"</div><h2>{tx['by_muni']}</h2><div class='charts'>")
    muni = t[(t["segment"] == ALL) & (t["service"] == ALL) & (t["measure"] == "cost")]
    for m in sorted(muni["municipality"].unique()):
        out.append(fan(muni[muni["municipality"] == m], m if m != ALL else tx["total"]))
    out.append(f"</div><h2>{tx['mix']}</h2>")
    mix = t[(t["municipality"] == ALL) & (t["measure"] == "residents") & (t["segment"] != ALL)]
    for n in mix["scenario"].unique():
        if cfg.scenarios[n].model != "dynamics" and n != (cfg.reference or n):
            continue
        wide = mix[mix["scenario"] == n].pivot(index="segment", columns="year", values="value")
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(seg_names.get(s, s))}</th>"
                       + "".join(f"<td>{_fmt(v)}</td>" for v in wide.loc[s]) + "</tr>" for s in wide.index)
        out.append(f"<h3>{html.escape(names[n])}</h3><table><tr><th></th>"
                   + "".join(f"<th>{y}</th>" for y in wide.columns) + f"</tr>{body}</table>")
    out.append("</body></html>")
    return "\n".join(out)
