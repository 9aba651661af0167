"""The drift report: a self-contained HTML page with the most drifted features drawn side by side.

Figures use matplotlib's object API (no pyplot), as :mod:`models.plots` does;
they are embedded as PNG. A current bin under the small-cell limit is not drawn.
"""
from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING
from html import escape
from pathlib import Path

from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from features.disclosure import MIN_GROUP_CLIENTS
from models import drift

if TYPE_CHECKING:  # annotations only
    from models.drift import MonitoringConfig


_CSS = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        "th{background:#f0f0f0}h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}.note{color:#555;font-size:12px}"
        ".ok{color:#1a7f37}.watch{color:#9a6700}.act{color:#cf222e;font-weight:bold}")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)  # one draw: no tight bounding box (it draws twice)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _bin_labels(summary: dict) -> list[str]:
    if summary["kind"] == "categorical":
        return list(summary["counts"]) + ([drift.RARE] if summary.get("rare_count") is not None else [])
    edges = summary["edges"]
    if not edges:
        return ["all"]
    fmt = (lambda v: f"{v:.3g}")
    return [f"≤{fmt(edges[0])}"] + [f"{fmt(a)}–{fmt(b)}" for a, b in zip(edges[:-1], edges[1:])] + [f">{fmt(edges[-1])}"]


def _shares_drawn(counts: np.ndarray) -> np.ndarray:
    """Shares of a side's bins, a bin under the small-cell limit (but not empty) left out (NaN)."""
    counts = np.asarray(counts, dtype=float)
    out = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), np.nan)
    out[(counts > 0) & (counts < MIN_GROUP_CLIENTS)] = np.nan
    return out


def drift_figure(items: list[tuple[str, dict, dict, str]], ncols: int = 3):
    """Reference and current shares per bin, side by side, one panel per feature.

    ``items``: (title, summary, binned counts, level). Bins under 50 clients
    on a side are not drawn.
    """
    nrows = max(1, int(np.ceil(len(items) / ncols)))
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    colour = {"ok": "tab:green", "watch": "tab:orange", "act": "tab:red"}
    for ax, (title, summary, binned, lv) in zip(axes, items):
        labels = _bin_labels(summary)
        ref, cur = _shares_drawn(binned["reference"]), _shares_drawn(binned["current"])
        keep = ~((np.asarray(binned["reference"]) == 0) & (np.asarray(binned["current"]) == 0))
        x = np.arange(int(keep.sum()))
        ax.bar(x - 0.2, ref[keep], width=0.4, color="grey", label="reference")
        ax.bar(x + 0.2, cur[keep], width=0.4, color=colour.get(lv, "tab:blue"), label="current")
        ax.set_xticks(x, [lab for lab, k in zip(labels, keep) if k], rotation=55, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("share of clients", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes[len(items):]:
        ax.set_visible(False)
    height = 3.4 * nrows
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.35 / height, bottom=1.1 / height, hspace=0.95, wspace=0.3)
    return fig


def _html_table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in frame[columns].itertuples(index=False):
        cells = []
        for col, v in zip(columns, row):
            if col == "level":
                cells.append(f"<td class='{escape(str(v))}'>{escape(str(v))}</td>")
            elif isinstance(v, (float, np.floating)):
                cells.append("<td></td>" if not np.isfinite(v) else f"<td>{v:.4f}</td>")
            else:
                cells.append("<td></td>" if v is None or v is pd.NA else f"<td>{escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    rank = table["level"].map({lv: i for i, lv in enumerate(drift.LEVELS)}).fillna(0)
    return table.assign(_r=rank, _v=table["value"].fillna(-1)).sort_values(["_r", "_v"], ascending=False).drop(
        columns=["_r", "_v"])


def report_html(result, summary: dict, binned: dict, config: MonitoringConfig,
                about: dict) -> str:
    """The self-contained HTML drift report of a :class:`models.monitor.MonitorResult` (figures embedded as PNG)."""
    t = result.table
    features = _ranked(t[t["section"] == "feature"])
    counts = result.counts()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title><style>{_CSS}</style>"
             f"</head><body><h1>Drift report: <span class='{result.verdict}'>{result.verdict.upper()}</span></h1>"]
    facts = [("reference", about["reference"]), ("current", about["current"]),
             ("reference digest", result.digests.get("reference", "")),
             ("current digest", result.digests.get("current", ""))]
    if result.model:
        facts.append(("model", f"{result.model.get('name', '')} version {result.model.get('version', '')} "
                               f"(run {result.model.get('run_id', '')})"))
    facts.append(("features compared", f"{len(features):,}: {counts['act']} act, {counts['watch']} watch, "
                                       f"{counts['ok']} ok"))
    if result.score_psi is not None:
        facts.append(("score PSI", f"{result.score_psi:.4f}"))
    parts.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
                 + "</table>")
    parts.append(f"<p class='note'>Thresholds (watch / act): PSI {config.psi.watch} / {config.psi.act}; "
                 f"Jensen–Shannon distance {config.js.watch} / {config.js.act}; change in the missing share "
                 f"{config.missing_rate.watch} / {config.missing_rate.act}; share in unseen levels "
                 f"{config.unseen_share.watch} / {config.unseen_share.act}; change in a unit's share above a band "
                 f"{config.band_share.watch} / {config.band_share.act}. PSI uses the reference's quantile bins "
                 f"(smoothing {config.smoothing} per bin). Every reference bin holds at least {MIN_GROUP_CLIENTS} "
                 f"clients; a current bin, unit or segment under {MIN_GROUP_CLIENTS} is not shown.</p>")
    drawn = [r for r in features.itertuples() if r.name in binned and r.value > 0][:config.plotted]
    if drawn:
        parts.append(f"<h2>Most drifted features (reference vs current)</h2>")
        items = [(f"{r.name}: {r.statistic} {r.value:.3f} ({r.level})", summary["features"][r.name], binned[r.name],
                  r.level) for r in drawn]
        parts.append(_png(drift_figure(items)))
    if "(score)" in binned:
        row = t[t["section"] == "score"].iloc[0]
        parts.append("<h2>Score distribution</h2>")
        parts.append(_png(drift_figure([(f"probability: psi {row['value']:.3f} ({row['level']})", summary["score"],
                                         binned["(score)"], row["level"])], ncols=1)))
    cols = ["name", "kind", "statistic", "value", "level", "ref_missing", "cur_missing", "missing_change", "unseen",
            "unseen_share", "note"]
    flagged = features[features["level"] != "ok"]
    parts.append(f"<h2>Features at watch or act ({len(flagged)})</h2>")
    parts.append(_html_table(flagged, cols) if len(flagged) else "<p>None.</p>")
    units = t[t["section"] == "unit"]
    if len(units):
        parts.append("<h2>Share above the list's bands per unit</h2><p class='note'>Bands as in the lists: raised "
                     "at 1.5 ×, high at 3 × the reference's base rate (mean probability); the same cut-offs on both "
                     "sides, so a rise means more clients above them.</p>")
        parts.append(_html_table(units, ["name", "statistic", "reference", "current", "value", "level", "ref_n",
                                         "cur_n", "suppressed"]))
    segments = t[t["section"] == "segment"]
    if len(segments):
        parts.append("<h2>Segment shares</h2>")
        parts.append(_html_table(segments, ["name", "statistic", "reference", "current", "value", "level", "ref_n",
                                            "cur_n", "suppressed"]))
    if summary.get("skipped"):
        parts.append("<p class='note'>Not compared (too many levels for a category): "
                     + escape(", ".join(summary["skipped"])) + "</p>")
    parts.append(f"<details><summary>All features ({len(features)})</summary>{_html_table(features, cols)}</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def output_paths(out: str | Path) -> dict[str, Path]:
    """``<base>.html`` and ``<base>.csv`` of an output base (a ``.html`` / ``.csv`` suffix is dropped)."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".html", ".htm", ".csv") else out
    return {"html": base.with_name(base.name + ".html"), "csv": base.with_name(base.name + ".csv")}
