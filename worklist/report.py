"""Rendering the case-manager report: one unit's ranked clients with reasons, in fi / sv / en.

Which rows a unit sees, their risk bands and the export table come from
:mod:`models.risklists`; this module only renders them: a self-contained HTML
page and CSV and Excel exports of the same rows.

Output names: ``out`` is a base name. A suffix ``.html``, ``.htm``, ``.csv``
or ``.xlsx`` is dropped, and the three files are ``<base>.html``,
``<base>.csv`` and ``<base>.xlsx`` — so ``--out rr.csv`` writes ``rr.html``,
``rr.csv`` and ``rr.xlsx``, never one over another. All three are written to
temporary files first and moved into place together: all outputs or none.

Exports are spreadsheet-safe: a text cell starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return gets a leading apostrophe
(:func:`models.risklists.neutralise_formula`), and every text cell of the
Excel file is stored as a string, never as a formula.
"""
from __future__ import annotations

from contextlib import ExitStack
from html import escape
from pathlib import Path

import pandas as pd

from features.contract.io import atomic_path
from models.risklists import (BAND_LABELS, LIST_TEXT, band, band_codes, export_frame, list_about, read_risklist,
                              shown_probabilities, unit_view)

REPORT_SUFFIXES = (".html", ".htm", ".csv", ".xlsx")

TEXT = {
    "fi": {"title": "Riskilista", "unit": "Yksikkö", "as_of": "Tilanne", "model": "Malli", "rank": "Sija",
           "client": "Asiakas", "prob": "Todennäköisyys", "band": "Riskiluokka", "segment": "Asiakassegmentti",
           "reasons": "Tärkeimmät syyt", "new": "Uusi listalla", "yes": "uusi", "already": "Jo nyt",
           "flagged": "{n} listan asiakkaista on jo tehostetuissa palveluissa ja {m} käytti viime vuonna "
                      "paljon palveluja (merkitty sarakkeeseen Jo nyt).",
           "bounded": "”Yli”-arvo tarkoittaa kalibroinnin ylintä luokkaa: todennäköisyys on ainakin tämän "
                      "verran, mutta tarkkaa arvoa ei voi mitata.",
           "note": "Listan laativat malli ja rekisteritiedot; asiakasohjaaja arvioi tarpeen. "
           "Todennäköisyys kertoo, kuinka suuri osa samankaltaisista asiakkaista päätyi tulokseen.",
           "count": "asiakasta", "unexplained": "ei selitetty (listan loppupää)"},
    "sv": {"title": "Risklista", "unit": "Enhet", "as_of": "Läge", "model": "Modell", "rank": "Plats",
           "client": "Klient", "prob": "Sannolikhet", "band": "Riskklass", "segment": "Klientsegment",
           "reasons": "Viktigaste orsaker", "new": "Ny på listan", "yes": "ny", "already": "Redan nu",
           "flagged": "{n} av listans klienter får redan intensiva tjänster och {m} var storanvändare "
                      "förra året (markerade i kolumnen Redan nu).",
           "bounded": "”Över” betyder kalibreringens översta klass: sannolikheten är minst så stor, men "
                      "det exakta värdet kan inte mätas.",
           "note": "Listan bygger på en modell och registeruppgifter; klienthandledaren bedömer "
           "behovet.", "count": "klienter",
           "unexplained": "inte förklarad (listans nedre del)"},
    "en": {"title": "Risk list", "unit": "Unit", "as_of": "As of", "model": "Model", "rank": "Rank",
           "client": "Client", "prob": "Probability", "band": "Risk band", "segment": "Segment",
           "reasons": "Main reasons", "new": "New on list", "yes": "new", "already": "Already",
           "flagged": "{n} of the clients on this list already receive intensive services and {m} were heavy "
                      "users last year (marked in the column Already).",
           "bounded": "\u201cOver\u201d marks the top calibration bin: the probability is at least that "
                      "high, but its exact value cannot be measured.",
           "note": "The list comes from a model and register data; the case manager judges the "
                   "need.", "count": "clients",
           "unexplained": "not explained (lower part of the list)"},
}


def report_paths(out: str | Path) -> dict[str, Path]:
    """The three files of a report from its base name: ``{"html": …, "csv": …, "xlsx": …}``.

    A suffix ``.html``, ``.htm``, ``.csv`` or ``.xlsx`` of ``out`` is dropped
    first; any other suffix is part of the base name.
    """
    out = Path(out)
    base = out.with_suffix("") if out.suffix.lower() in REPORT_SUFFIXES else out
    if not base.name or base.name in (".", ".."):
        raise ValueError(f"--out {out}: give a file base name such as reports/tuusula")
    return {kind: base.with_name(f"{base.name}.{kind}") for kind in ("html", "csv", "xlsx")}


def _already(row, lang: str) -> str:
    """The current-use flags of a row as short tags ("in intensive services", "already a heavy user")."""
    words = LIST_TEXT[lang]
    tags = [words[key] for col, key in (("intensive_ongoing", "intensive"), ("prior_high_use", "prior"))
            if bool(getattr(row, col, False))]
    return "".join(f"<span class='flag'>{escape(tag)}</span> " for tag in tags)


def report_html(view: pd.DataFrame, risk: pd.DataFrame, unit: str | None, lang: str = "fi",
                about: dict | None = None) -> str:
    """Self-contained HTML page of a unit's view (:func:`models.risklists.unit_view`); every value escaped.

    ``about`` (:func:`models.risklists.list_about`) puts the list's cohort and
    purpose in plain words at the top. A calibration boundary value is shown as
    "over 90 %" (:func:`models.risklists.probability_text`), never as the capped
    number; clients already in intensive services or last year's heavy users
    are marked when the list carries those flags.
    """
    t = TEXT[lang]
    base = float(risk["probability"].mean())
    flagged = "intensive_ongoing" in view and "prior_high_use" in view
    shown = shown_probabilities(view, lang)
    rows = []
    for r, code, label, prob in zip(view.itertuples(index=False), band_codes(view["probability"], base),
                                    band(view["probability"], base, lang), shown):
        text = getattr(r, f"reasons_{lang}")
        reasons = (f"<li><i>{t['unexplained']}</i></li>" if pd.isna(text)
                   else "".join(f"<li>{escape(x)}</li>" for x in str(text).split(" | ") if x))
        new = f"<span class='new'>{t['yes']}</span>" if r.new_on_list else ""
        segment = "" if pd.isna(r.segment) else str(r.segment)
        already = f"<td>{_already(r, lang)}</td>" if flagged else ""
        rows.append(f"<tr><td>{r.rank}</td><td>{escape(str(r.client_id))}</td><td>{escape(prob)}</td>"
                    f"<td class='b-{code}'>{escape(label)}</td><td>{escape(segment)}</td>"
                    f"<td><ul>{reasons}</ul></td>{already}<td>{new}</td></tr>")
    first = risk.iloc[0]
    head = (f"<th>{t['rank']}</th><th>{t['client']}</th><th>{t['prob']}</th><th>{t['band']}</th>"
            f"<th>{t['segment']}</th><th>{t['reasons']}</th>"
            f"{('<th>' + t['already'] + '</th>') if flagged else ''}<th>{t['new']}</th>")
    intro = []
    if about:
        purpose = (about.get("purpose") or {}).get(lang, "")
        if purpose:
            intro.append(f"<p class='purpose'><b>{escape(purpose)}</b></p>")
        cohort = (about.get("cohort") or {}).get(lang, "")
        if cohort:
            intro.append(f"<p class='cohort'>{escape(cohort)}</p>")
    if flagged and (view["intensive_ongoing"].any() or view["prior_high_use"].any()):
        counts = t["flagged"].format(n=int(view["intensive_ongoing"].sum()), m=int(view["prior_high_use"].sum()))
        intro.append(f"<p>{escape(counts)}</p>")
    notes = [t["note"]]
    if "probability_bound" in view and (view["probability_bound"] == "over").any():
        notes.append(t["bounded"])
    css = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#eef}"
           "ul{margin:0;padding-left:1.1em}.new{background:#ffd54f;padding:1px 5px;border-radius:3px}"
           ".b-high{color:#b00020;font-weight:bold}.b-raised{color:#e65100}"
           ".flag{background:#e0e0e0;padding:1px 5px;border-radius:3px;white-space:nowrap}"
           ".purpose{font-size:15px}.cohort{color:#444}")
    return (f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>{t['title']}</title>"
            f"<style>{css}</style></head><body><h1>{t['title']}: {escape(unit or 'kaikki / all')}</h1>"
            f"<p>{t['as_of']} {pd.Timestamp(first['as_of']).date()} · {t['model']} {escape(str(first['model_name']))} "
            f"v{escape(str(first['model_version']))} · {len(view):,} {t['count']}</p>{''.join(intro)}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{''.join(f'<p><small>{escape(n)}</small></p>' for n in notes)}</body></html>")


def write_xlsx(frame: pd.DataFrame, path: str | Path, sheet: str) -> None:
    """Write a table to an Excel file with every text cell stored as a string (never a formula).

    Numbers and booleans stay numbers and booleans, dates are dates, missing
    values are empty cells.
    """
    import datetime as dt

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append([str(c) for c in frame.columns])
    for cell in ws[1]:
        cell.data_type = "s"
    for values in frame.itertuples(index=False, name=None):
        row = []
        for v in values:
            if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                row.append(None)
            elif isinstance(v, (bool, int, float, dt.date)) or hasattr(v, "dtype"):
                row.append(v.item() if hasattr(v, "item") else v)
            else:
                row.append(str(v))
        ws.append(row)
        for cell, v in zip(ws[ws.max_row], row):
            if isinstance(v, str):
                cell.data_type = "s"  # openpyxl types a text starting with "=" as a formula
    wb.save(path)


def write_report(risk_path: str | Path, out: str | Path, *, previous: str | Path | None = None,
                 unit: str | None = None, top: int | None = 100, lang: str = "fi") -> dict[str, Path]:
    """Write a unit's report: ``<base>.html``, ``<base>.csv`` and ``<base>.xlsx``, all or none.

    Parameters
    ----------
    risk_path, previous
        Risk lists (Parquet or CSV) read and checked with
        :func:`models.risklists.read_risklist`; ``previous`` marks who is new.
    out
        Base name of the outputs (see :func:`report_paths`).
    unit, top
        See :func:`models.risklists.unit_view`.
    lang
        fi, sv or en.

    Returns
    -------
    dict
        ``{"html": path, "csv": path, "xlsx": path}``.
    """
    if lang not in TEXT:
        raise ValueError(f"language must be one of {', '.join(TEXT)}, got {lang!r}")
    paths = report_paths(out)
    risk = read_risklist(risk_path)
    prev = read_risklist(previous) if previous is not None else None
    view = unit_view(risk, unit, top, prev)
    export = export_frame(view, lang)
    html = report_html(view, risk, unit, lang, about=list_about(risk, risk_path))
    with ExitStack() as stack:  # every file is moved into place only when all three are written
        tmp = {kind: stack.enter_context(atomic_path(path)) for kind, path in paths.items()}
        tmp["html"].write_text(html, encoding="utf-8")
        export.to_csv(tmp["csv"], index=False)
        write_xlsx(export, tmp["xlsx"], TEXT[lang]["title"])
    return paths


__all__ = ["BAND_LABELS", "TEXT", "report_html", "report_paths", "write_report", "write_xlsx"]
