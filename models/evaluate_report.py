"""The list-evaluation page: one small self-contained HTML page of the disclosed figures.

Rendered from :func:`models.evaluate_list.disclosed` output only (small cells
already blank), so the page can be shared like the CSV. An estimate is marked
as such in the title, in a banner above everything and in every table heading.
"""
from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from models.metrics import CAPACITIES

_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f0f0f0}"
        "td:first-child,th:first-child{text-align:left}h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}"
        ".note{color:#555;font-size:12px}.estimate{background:#fff3cd;border:2px solid #d39e00;padding:.6em 1em;"
        "font-weight:bold}.realised{background:#e8f4ea;border:1px solid #5a9;padding:.6em 1em}")


def _tag(c: float) -> str:
    return f"top{round(c * 100):g}pct"


#: Rows of the whole-list table: column name and label.
WHOLE_ROWS = (("n", "clients"), ("outcomes", "outcomes (estimate: expected)"), ("prevalence", "outcome rate"),
              ("mean_predicted", "mean predicted probability"),
              ("calibration_gap", "calibration: predicted − observed"),
              ("calibration_error", "calibration error (deciles)"), ("auroc", "AUROC"),
              *((f"precision_{_tag(c)}", f"precision, top {c:.0%}") for c in CAPACITIES),
              *((f"recall_{_tag(c)}", f"recall, top {c:.0%}") for c in CAPACITIES),
              *((f"predicted_{_tag(c)}", f"mean predicted, top {c:.0%}") for c in CAPACITIES))
_COUNTS = ("n", "outcomes")


def _fmt(value, name: str = "") -> str:
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)) or pd.isna(value):
        return "–"
    if name in _COUNTS:
        return f"{float(value):,.0f}"
    return f"{float(value):.3f}"


def _interval(row, name: str) -> str:
    if name == "auroc":
        low, high = row.get("auroc_low"), row.get("auroc_high")
    elif name.startswith("precision_"):
        t = name[len("precision_"):]
        low, high = row.get(f"precision_low_{t}"), row.get(f"precision_high_{t}")
    else:
        return ""
    if pd.isna(low) or pd.isna(high):
        return "–"
    return f"{low:.3f} – {high:.3f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _whole(result, shared: pd.DataFrame) -> str:
    whole = shared[shared["scope"] == "all"].set_index("basis")
    bases = [b for b in ("realised", "estimate") if b in whole.index]
    first = whole.iloc[0]
    promised_head = f"promised at training ({result.promised_from or 'validation date'})"
    head = ["figure", promised_head]
    for b in bases:
        head += (["realised", "95 % interval"] if b == "realised"
                 else ["ESTIMATE (label-free)", "95 % range by chance, if calibrated"])
    rows = []
    for name, label in WHOLE_ROWS:
        row = [label, _fmt(first.get(f"promised_{name}", np.nan), name)]
        for b in bases:
            r = whole.loc[b]
            row += [_fmt(r[name], name), _interval(r, name)]
        rows.append(row)
    return _table(head, rows)


def _per_group(shared: pd.DataFrame, basis: str, scopes: tuple[str, ...], promised: bool) -> str:
    part = shared[(shared["basis"] == basis) & shared["scope"].isin(scopes)]
    if part.empty:
        return "<p class='note'>no groups</p>"
    mark = "" if basis == "realised" else " (estimate)"
    head = ["grouping", "group", "clients", "outcomes" + (" (expected)" if mark else ""), f"AUROC{mark}"]
    if promised:
        head.append("AUROC promised")
    if basis == "realised":
        head.append("predicted − observed")
    for c in CAPACITIES:
        head += [f"precision top {c:.0%}{mark}", f"recall top {c:.0%}{mark}"]
    if promised:
        head += ["precision top 5 % promised"]
    rows = []
    for r in part.to_dict("records"):
        row = [r["scope"], r["group"], _fmt(r["n"], "n"), _fmt(r["outcomes"], "outcomes"), _fmt(r["auroc"])]
        if promised:
            row.append(_fmt(r.get("promised_auroc")))
        if basis == "realised":
            row.append(_fmt(r["calibration_gap"]))
        for c in CAPACITIES:
            row += [_fmt(r[f"precision_{_tag(c)}"]), _fmt(r[f"recall_{_tag(c)}"])]
        if promised:
            row.append(_fmt(r.get("promised_precision_top5pct")))
        rows.append(row)
    return _table(head, rows)


def evaluation_html(result, shared: pd.DataFrame) -> str:
    """The page of a :class:`models.evaluate_list.ListEvaluation` from its disclosed table ``shared``."""
    estimate = result.basis == "estimate"
    last_day = (result.horizon_end - pd.Timedelta(days=1)).date()
    title = (f"{'ESTIMATE: ' if estimate else ''}How did the {result.target} list of {result.as_of.date()} do")
    if estimate:
        banner = (f"<p class='estimate'>ESTIMATE — the list's horizon ({result.as_of.date()} … {last_day}) has not "
                  f"passed: the data end on {result.data_end.date()}. Every figure below is a label-free estimate "
                  "from the list's calibrated probabilities (confidence-based performance estimation), not a "
                  "measured outcome. It assumes the probabilities are calibrated; it cannot show a change in how "
                  "likely the outcome is for clients like these (concept drift), and it is too optimistic when the "
                  "calibration is over-confident.</p>")
    else:
        banner = (f"<p class='realised'>Realised — outcomes recorded from {result.as_of.date()} to {last_day} "
                  f"(data to {result.data_end.date()}). The label-free estimate the list gave beforehand stands "
                  "beside them (marked ESTIMATE), showing how far it was off.</p>")
    main = "realised" if not estimate else "estimate"
    mark = " — ESTIMATE" if estimate else ""
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>", banner,
        f"<p>Model {escape(result.model_name)} version {escape(result.model_version)} (training run "
        f"{escape(result.list_run_id)}); target {escape(result.target)}; list date {result.as_of.date()}.</p>",
        f"<ul class='note'>{notes}</ul>" if notes else "",
        f"<h2>Whole list{mark}</h2>", _whole(result, shared),
        f"<h2>Per unit: each unit's own top 1, 2 and 5 %{mark}</h2>",
        _per_group(shared, main, ("unit",), promised=False),
        f"<h2>Per equity group (sex, language, age band, municipality){mark}</h2>",
        _per_group(shared, main, ("sex", "language", "age_band", "municipality"), promised=True),
        "<p class='note'>– : not shown: a small cell (under 50 clients, or under 5 with or without the outcome; "
        "for an estimate, expected outcomes) or not measurable (calibration has no label-free estimate). "
        "Intervals: DeLong (AUROC) and Wilson (precision) for realised figures; for an estimate, the range of "
        "figures simulated outcome draws give when the probabilities are calibrated.</p>",
        "</body></html>",
    ]
    return "".join(parts)
