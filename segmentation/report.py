"""Readable, self-contained HTML reports of segments and of segment migration."""
from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

# Figures are built with the object API (no pyplot): no global figure registry to leak into, and
# no backend switch that would disturb a notebook's inline plots.
from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from features.contract.tables import SERVICE_LINES
from features.disclosure import MIN_GROUP_CLIENTS, small_cell, suppress_small_cells
from features.contract.io import atomic_path
from segmentation.concentration import lorenz_curve
from segmentation.segments import SegmentationResult
from segmentation.transitions import sankey_svg

_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        "th{background:#f0f0f0}h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}.note{color:#555;font-size:12px}")


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def profile_heatmap(features: pd.DataFrame, segments: pd.Series, names: dict) -> str:
    """Segments × use features: how far each segment's mean is from everyone's, in standard deviations."""
    cols = [f"{s}_count_365d" for s in SERVICE_LINES if f"{s}_count_365d" in features]
    cols += [c for c in ("cost_total_365d", "age", "chronic_conditions", "rai_maple_last") if c in features]
    data = features[cols].astype(float)
    z = (data.groupby(segments.to_numpy()).mean() - data.mean()) / data.std().replace(0, np.nan)
    sizes = segments.value_counts()
    z = z[~small_cell(sizes.reindex(z.index).to_numpy())]  # a segment under the small-cell limit is not drawn
    if z.empty:
        return f"<p class='note'>Every segment has under {MIN_GROUP_CLIENTS} clients: nothing to draw.</p>"
    fig, ax = _subplots(figsize=(1.0 + 0.5 * len(cols), 0.8 + 0.45 * len(z)))
    im = ax.imshow(z.fillna(0).to_numpy(), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(cols)), [c.replace("_count_365d", "") for c in cols], rotation=60, ha="right")
    ax.set_yticks(range(len(z)), [names.get(i, str(i)) for i in z.index])
    fig.colorbar(im, ax=ax, label="segment mean − overall mean (sd)")
    return _png(fig)


def cost_share_chart(profiles: pd.DataFrame) -> str:
    """Share of clients against share of cost per segment."""
    cost_col = "next_year_cost_share" if "next_year_cost_share" in profiles else "cost_share"
    fig, ax = _subplots(figsize=(7, 0.6 + 0.4 * len(profiles)))
    y = np.arange(len(profiles))
    ax.barh(y - 0.2, profiles["client_share"], height=0.4, label="share of clients")
    ax.barh(y + 0.2, profiles[cost_col], height=0.4, label=cost_col.replace("_", " "))
    ax.set_yticks(y, profiles["segment_name"])
    ax.invert_yaxis()
    ax.legend()
    return _png(fig)


def lorenz_chart(cost: pd.Series) -> str:
    curve = lorenz_curve(cost)
    fig, ax = _subplots(figsize=(4.5, 4.5))
    ax.plot(curve["client_share"], curve["cost_share"], label="Lorenz curve")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="equal cost")
    ax.set_xlabel("share of clients (lightest users first)")
    ax.set_ylabel("share of cost")
    ax.legend()
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}",
                         border=0, escape=True)


def segmentation_html(result: SegmentationResult, features: pd.DataFrame, as_of: str,
                      next_year_cost: pd.Series | None = None, comparison: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML string (plots embedded).

    Parameters
    ----------
    result, features, as_of, next_year_cost
        The segmentation, its feature table, the index date and the cost over the following year.
    comparison
        Optional method-comparison table (:func:`segmentation.compare.compare_methods`).
    """
    model = result.model
    names = result.profiles.set_index("segment")["segment_name"].to_dict()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Segments {escape(as_of)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Client segments as of {escape(as_of)}</h1>",
             f"<p>Method: <b>{escape(result.method)}</b>, {len(result.profiles)} segments, "
             f"{len(result.assignments):,} clients."]
    if hasattr(model, "stability_"):
        parts.append(f" Bootstrap stability (adjusted Rand index): <b>{model.stability_:.3f}</b>.")
    parts.append("</p>")
    if result.selection is not None:
        parts += ["<h2>Choice of method and k</h2>",
                  "<p class='note'>Every candidate with the planner criteria: bootstrap stability, the smallest "
                  "segment's share of clients and the η² of next-year cost (out of time) against as many bands of "
                  "last year's cost; the largest k meeting all of them is kept.</p>", _table(result.selection)]
    elif getattr(model, "scores_", None) is not None and len(model.scores_):
        parts += ["<h2>Choice of k</h2>", _table(model.scores_)]
    if comparison is not None and len(comparison):
        parts += ["<h2>Methods compared</h2>",
                  "<p class='note'>η²: share of the variance of next year's cost between segments; cost bands: "
                  "as many bands of last year's cost (no cost, then quantiles). ARI against the synthetic "
                  "county's true groups, where known, is a measurement only.</p>", _table(comparison)]
    # figures about a segment under the small-cell limit do not leave the machine (features/disclosure.py)
    profiles = suppress_small_cells(result.profiles.drop(columns=["distinguishing"], errors="ignore"),
                                    n="clients", outcomes=None, keep=("segment", "segment_name"))
    hidden = int(profiles["suppressed"].sum())
    if hidden:
        parts.append(f"<p class='note'>{hidden} segment(s) with under {MIN_GROUP_CLIENTS} clients: their figures "
                     "are suppressed (small cells) and they are left out of the charts.</p>")
    cost_cols = [c for c in ("segment_name", "clients", "cost_per_client_eur", "next_year_cost_per_client_eur",
                             "next_year_cost_share", "suppressed") if c in profiles]
    parts += ["<h2>Cost per client (kustannukset per asiakas)</h2>", _table(profiles[cost_cols])]
    parts += ["<h2>Profiles</h2>", _table(profiles),
              "<h2>What sets each segment apart</h2>",
              profile_heatmap(features, result.assignments["segment"], names),
              "<h2>Share of clients and of cost</h2>",
              cost_share_chart(result.profiles[~profiles["suppressed"].to_numpy()])]
    if next_year_cost is not None and result.concentration:
        c = result.concentration
        parts += ["<h2>Cost concentration (next year)</h2>",
                  f"<p>Gini {c['gini']:.3f}; top 1 % use {c['top_1pct']:.1%}, top 5 % {c['top_5pct']:.1%}, "
                  f"top 10 % {c['top_10pct']:.1%} of the cost.</p>", lorenz_chart(next_year_cost),
                  _table(suppress_small_cells(c["by_segment"].reset_index(), n="clients", outcomes=None,
                                              keep=("segment",)))]
    parts.append("<p class='note'>No client identifiers appear in this report.</p></body></html>")
    return "".join(parts)


def transitions_html(flows: pd.DataFrame, matrix: pd.DataFrame, date_from: str, date_to: str) -> str:
    """Segment migration between two dates: Sankey diagram, transition matrix (row shares) and flows."""
    # a flow or a cell of under MIN_GROUP_CLIENTS clients is a small cell: blanked, and not drawn
    shares = matrix.div(matrix.sum(axis=1), axis=0).where(~small_cell(matrix.to_numpy())).reset_index()
    shown = flows[~small_cell(flows["clients"].to_numpy())]
    return "".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>Segment migration</title><style>{_CSS}</style>"
        f"</head><body><h1>Segment migration {escape(date_from)} → {escape(date_to)}</h1>",
        sankey_svg(shown, title=f"{date_from} → {date_to}") if len(shown) else "",
        "<h2>Transition matrix (share of each earlier segment, clients present at both dates)</h2>",
        _table(shares), "<h2>Flows</h2>",
        _table(suppress_small_cells(flows, n="clients", outcomes=None, keep=("from_segment", "to_segment"))),
        f"<p class='note'>(not present): born or moved in after the first date, or died or moved out "
        f"before the second. Flows and cells of under {MIN_GROUP_CLIENTS} clients are suppressed (small cells) "
        "and not drawn.</p></body></html>"])


def write_html(html: str, path: str | Path) -> Path:
    """Write an HTML report atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    return Path(path)
