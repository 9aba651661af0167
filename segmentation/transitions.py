"""Segment migration between two index dates: transition matrix, flows and a Sankey diagram."""
from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

ENTERED, LEFT = "(not present)", "(not present)"


def transition_table(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Flows between segments for clients present at both dates, plus those entering and leaving.

    Parameters
    ----------
    before, after
        Segment name per client, indexed by ``client_id``, at the earlier and later date.

    Returns
    -------
    pandas.DataFrame
        One row per (from, to) flow: ``from_segment``, ``to_segment``, ``clients``,
        ``share_of_from`` (of the clients present at both dates in that segment).
        Clients only at the earlier date flow to ``(not present)`` (died, moved
        out), those only at the later date from it (born, moved in).
    """
    both = before.index.intersection(after.index)
    flows = pd.DataFrame({"from_segment": before.loc[both].to_numpy(), "to_segment": after.loc[both].to_numpy()})
    left = before.index.difference(after.index)
    entered = after.index.difference(before.index)
    extra = pd.concat([
        pd.DataFrame({"from_segment": before.loc[left].to_numpy(), "to_segment": LEFT}),
        pd.DataFrame({"from_segment": ENTERED, "to_segment": after.loc[entered].to_numpy()}),
    ])
    table = pd.concat([flows, extra]).groupby(["from_segment", "to_segment"], observed=True).size()
    table = table.rename("clients").reset_index()
    stayed = flows.groupby("from_segment").size()
    table["share_of_from"] = table["clients"] / table["from_segment"].map(stayed)
    table.loc[(table["from_segment"] == ENTERED) | (table["to_segment"] == LEFT), "share_of_from"] = np.nan
    return table.sort_values(["from_segment", "clients"], ascending=[True, False]).reset_index(drop=True)


def transition_matrix(before: pd.Series, after: pd.Series, normalize: bool = False) -> pd.DataFrame:
    """Counts (or row shares) of clients present at both dates, from-segment × to-segment."""
    both = before.index.intersection(after.index)
    matrix = pd.crosstab(before.loc[both].rename("from"), after.loc[both].rename("to"))
    return matrix.div(matrix.sum(axis=1), axis=0) if normalize else matrix


def sankey_svg(flows: pd.DataFrame, width: int = 760, height: int = 440, title: str = "") -> str:
    """A self-contained SVG Sankey diagram of a :func:`transition_table` (no JavaScript needed)."""
    left_names = sorted(flows["from_segment"].unique(), key=str)
    right_names = sorted(flows["to_segment"].unique(), key=str)
    total = flows["clients"].sum()
    pad, node_w, gap = 150, 14, 8
    usable = height - 40 - gap * max(len(left_names), len(right_names))
    scale = usable / max(total, 1)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    color = {name: palette[i % len(palette)] for i, name in enumerate(left_names)}

    def stack(names, col):
        pos, y = {}, 30.0
        for name in names:
            h = flows.loc[flows[col] == name, "clients"].sum() * scale
            pos[name] = [y, h]
            y += h + gap
        return pos

    left, right = stack(left_names, "from_segment"), stack(right_names, "to_segment")
    x0, x1 = pad, width - pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    l_off = {n: 0.0 for n in left_names}
    r_off = {n: 0.0 for n in right_names}
    for _, f in flows.sort_values(["from_segment", "to_segment"]).iterrows():
        h = f["clients"] * scale
        ya = left[f["from_segment"]][0] + l_off[f["from_segment"]] + h / 2
        yb = right[f["to_segment"]][0] + r_off[f["to_segment"]] + h / 2
        l_off[f["from_segment"]] += h
        r_off[f["to_segment"]] += h
        xm = (x0 + x1) / 2
        parts.append(f'<path d="M{x0 + node_w},{ya:.1f} C{xm},{ya:.1f} {xm},{yb:.1f} {x1},{yb:.1f}" fill="none" '
                     f'stroke="{color[f["from_segment"]]}" stroke-opacity="0.35" stroke-width="{max(h, 0.5):.1f}">'
                     f'<title>{escape(str(f["from_segment"]))} → {escape(str(f["to_segment"]))}: '
                     f'{int(f["clients"]):,}</title></path>')
    for names, pos, x, anchor, dx in ((left_names, left, x0, "end", -4), (right_names, right, x1, "start", node_w + 4)):
        for name in names:
            y, h = pos[name]
            fill = color.get(name, "#555")
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{node_w}" height="{max(h, 1):.1f}" fill="{fill}"/>')
            n = int(flows.loc[flows["from_segment" if x == x0 else "to_segment"] == name, "clients"].sum())
            parts.append(f'<text x="{x + dx}" y="{y + h / 2 + 4:.1f}" text-anchor="{anchor}">'
                         f'{escape(str(name))} ({n:,})</text>')
    parts.append("</svg>")
    return "".join(parts)
