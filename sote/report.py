"""Risk-list reports for case managers: one unit's ranked clients with reasons, in fi / sv / en.

A report shows only the requested unit's clients (access follows the
``unit`` that owns each client) and marks who is new on the list since the
previous one. HTML is self-contained; CSV and Excel carry the same rows.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

from features.contract.io import atomic_path

TEXT = {
    "fi": {"title": "Riskilista", "unit": "Yksikkö", "as_of": "Tilanne", "model": "Malli", "rank": "Sija",
           "client": "Asiakas", "prob": "Todennäköisyys", "band": "Riskiluokka", "segment": "Asiakassegmentti",
           "reasons": "Tärkeimmät syyt", "new": "Uusi listalla", "yes": "uusi", "high": "korkea", "mid": "kohonnut",
           "low": "tavanomainen", "note": "Listan laativat malli ja rekisteritiedot; asiakasohjaaja arvioi tarpeen. "
           "Todennäköisyys kertoo, kuinka suuri osa samankaltaisista asiakkaista päätyi tulokseen.",
           "count": "asiakasta", "unexplained": "ei selitetty (listan loppupää)"},
    "sv": {"title": "Risklista", "unit": "Enhet", "as_of": "Läge", "model": "Modell", "rank": "Plats",
           "client": "Klient", "prob": "Sannolikhet", "band": "Riskklass", "segment": "Klientsegment",
           "reasons": "Viktigaste orsaker", "new": "Ny på listan", "yes": "ny", "high": "hög", "mid": "förhöjd",
           "low": "normal", "note": "Listan bygger på en modell och registeruppgifter; klienthandledaren bedömer "
           "behovet.", "count": "klienter",
           "unexplained": "inte förklarad (listans nedre del)"},
    "en": {"title": "Risk list", "unit": "Unit", "as_of": "As of", "model": "Model", "rank": "Rank",
           "client": "Client", "prob": "Probability", "band": "Risk band", "segment": "Segment",
           "reasons": "Main reasons", "new": "New on list", "yes": "new", "high": "high", "mid": "raised",
           "low": "usual", "note": "The list comes from a model and register data; the case manager judges the "
                                   "need.", "count": "clients",
           "unexplained": "not explained (lower part of the list)"},
}


def _select(risk: pd.DataFrame, unit: str | None, top: int | None) -> pd.DataFrame:
    view = risk if unit is None else risk[risk["unit"] == unit]
    view = view.sort_values("rank", kind="stable")
    return view.head(top) if top is not None else view


def unit_view(risk: pd.DataFrame, unit: str | None, top: int | None, previous: pd.DataFrame | None = None
              ) -> pd.DataFrame:
    """The rows a unit may see (all units when ``unit`` is None), best rank first, with ``new_on_list``.

    ``new_on_list`` is True for clients in this view who were not in the
    previous list's same view (same unit, same top N).
    """
    view = _select(risk, unit, top).copy()
    if unit is not None and view.empty:
        raise ValueError(f"unit {unit!r} has no clients on this list (units: {sorted(risk['unit'].unique())[:10]} …)")
    before = _select(previous, unit, top)["client_id"] if previous is not None else view["client_id"]
    view["new_on_list"] = ~view["client_id"].isin(before)
    return view


def band(probability: pd.Series, base_rate: float, lang: str) -> pd.Series:
    """Risk band relative to the list's base rate: high ≥ 3×, raised ≥ 1.5×, usual below."""
    t = TEXT[lang]
    return pd.Series(pd.cut(probability / base_rate, [-1, 1.5, 3, float("inf")], right=False,
                            labels=[t["low"], t["mid"], t["high"]]).astype(str), index=probability.index)


def report_html(view: pd.DataFrame, risk: pd.DataFrame, unit: str | None, lang: str = "fi") -> str:
    """Self-contained HTML page of a unit's list."""
    t = TEXT[lang]
    base = float(risk["probability"].mean())
    rows = []
    for r, b in zip(view.itertuples(index=False), band(view["probability"], base, lang)):
        text = getattr(r, f"reasons_{lang}")
        reasons = (f"<li><i>{t['unexplained']}</i></li>" if pd.isna(text)
                   else "".join(f"<li>{escape(x)}</li>" for x in str(text).split(" | ") if x))
        new = f"<span class='new'>{t['yes']}</span>" if r.new_on_list else ""
        rows.append(f"<tr><td>{r.rank}</td><td>{escape(r.client_id)}</td><td>{r.probability:.1%}</td>"
                    f"<td class='b-{escape(b)}'>{escape(b)}</td><td>{escape(str(r.segment or ''))}</td>"
                    f"<td><ul>{reasons}</ul></td><td>{new}</td></tr>")
    first = risk.iloc[0]
    head = (f"<th>{t['rank']}</th><th>{t['client']}</th><th>{t['prob']}</th><th>{t['band']}</th>"
            f"<th>{t['segment']}</th><th>{t['reasons']}</th><th>{t['new']}</th>")
    css = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#eef}"
           "ul{margin:0;padding-left:1.1em}.new{background:#ffd54f;padding:1px 5px;border-radius:3px}"
           f".b-{t['high']}{{color:#b00020;font-weight:bold}}.b-{t['mid']}{{color:#e65100}}")
    return (f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{t['title']}</title>"
            f"<style>{css}</style></head><body><h1>{t['title']}: {escape(unit or 'kaikki / all')}</h1>"
            f"<p>{t['as_of']} {pd.Timestamp(first['as_of']).date()} · {t['model']} {escape(str(first['model_name']))} "
            f"v{escape(str(first['model_version']))} · {len(view):,} {t['count']}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><small>{escape(t['note'])}</small></p></body></html>")


def write_report(risk_path: str | Path, out: str | Path, *, previous: str | Path | None = None,
                 unit: str | None = None, top: int | None = 100, lang: str = "fi") -> dict[str, Path]:
    """Write the HTML report and its CSV and Excel exports (same stem), each atomically."""
    if lang not in TEXT:
        raise ValueError(f"--lang must be one of {sorted(TEXT)}")
    risk = pd.read_parquet(risk_path) if str(risk_path).endswith(".parquet") else pd.read_csv(risk_path)
    prev = None
    if previous is not None:
        prev = pd.read_parquet(previous) if str(previous).endswith(".parquet") else pd.read_csv(previous)
    view = unit_view(risk, unit, top, prev)
    out = Path(out)
    paths = {"html": out, "csv": out.with_suffix(".csv"), "xlsx": out.with_suffix(".xlsx")}
    export = view[["rank", "client_id", "unit", "probability", "segment", f"reasons_{lang}", "new_on_list",
                   "model_name", "model_version", "as_of"]]
    with atomic_path(paths["html"]) as tmp:
        Path(tmp).write_text(report_html(view, risk, unit, lang), encoding="utf-8")
    with atomic_path(paths["csv"]) as tmp:
        export.to_csv(tmp, index=False)
    with atomic_path(paths["xlsx"]) as tmp:
        export.assign(as_of=export["as_of"].dt.date).to_excel(tmp, index=False, sheet_name=TEXT[lang]["title"][:31],
                                                              engine="openpyxl")
    return paths
