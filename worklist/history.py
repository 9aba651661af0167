"""One client's service use by month, from the canonical events table, and its small SVG chart.

:class:`ServiceUse` answers "what did this client use in the 24 months
before the list date" in well under a millisecond after a one-off aggregate:
the first question about a list date runs one DuckDB query over every event
(per client, month and service line), sorted by client, and keeps the result
as arrays with each client's first row; later questions slice them.
:func:`usage_svg` draws the months as stacked bars by service-line group,
every text escaped.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract.tables import EPISODE_SERVICES

#: Service-line groups of the chart: key -> (service lines, colour, names fi/sv/en).
SERVICE_GROUPS = {
    "primary": (("primary_care_visit", "remote_contact", "oral_health", "rehabilitation"), "#4e79a7",
                {"fi": "Perusterveydenhuolto", "sv": "Primärvård", "en": "Primary care"}),
    "emergency": (("emergency",), "#e15759",
                  {"fi": "Päivystys", "sv": "Jourvård", "en": "Emergency care"}),
    "specialist": (("specialist_outpatient",), "#f28e2b",
                   {"fi": "Erikoissairaanhoito", "sv": "Specialiserad sjukvård", "en": "Specialist care"}),
    "inpatient": (("inpatient",), "#b07aa1",
                  {"fi": "Osastohoito", "sv": "Slutenvård", "en": "Inpatient care"}),
    "care": (("home_care", "housing_24h"), "#59a14f",
             {"fi": "Kotihoito ja asuminen", "sv": "Hemvård och boende", "en": "Home care and housing"}),
    "social": (("mental_health_substance", "social_work", "disability_services", "child_family"), "#76b7b2",
               {"fi": "Sosiaali- ja mielenterveyspalvelut", "sv": "Social- och mentalvård",
                "en": "Social and mental-health services"}),
}
_GROUP_OF = {s: key for key, (services, _, _) in SERVICE_GROUPS.items() for s in services}
_TEXT = {"fi": {"axis": "Käynnit ja kontaktit kuukaudessa", "none": "Ei palvelujen käyttöä tällä jaksolla"},
         "sv": {"axis": "Besök och kontakter per månad", "none": "Ingen användning av tjänster under perioden"},
         "en": {"axis": "Visits and contacts per month", "none": "No service use in this period"}}

_SQL = """
SELECT CAST(client_id AS VARCHAR) AS client_id, CAST(date_trunc('month', CAST("start" AS DATE)) AS DATE) AS month,
       CAST(service AS VARCHAR) AS service, count(*) AS contacts,
       sum(CASE WHEN list_contains($episodes, CAST(service AS VARCHAR))
                THEN greatest(date_diff('day', CAST("start" AS DATE),
                                        least(coalesce(CAST("end" AS DATE), $last), $last)) + 1, 1)
                ELSE 0 END) AS days,
       coalesce(sum(cost_eur), 0) AS cost_eur
FROM {source}
WHERE CAST("start" AS DATE) >= $first AND CAST("start" AS DATE) < $stop AND client_id IS NOT NULL
GROUP BY ALL ORDER BY 1, 2, 3
"""


def _month_floor(day) -> pd.Timestamp:
    return pd.Timestamp(day).to_period("M").to_timestamp()


class ServiceUse:
    """Monthly service use per client from the events table of a canonical data folder.

    Parameters
    ----------
    data_dir
        The folder holding ``events`` (Parquet file or folder, or CSV).
    keep
        How many list dates' aggregates are kept in memory (least recently used dropped).

    Notes
    -----
    Thread-safe: the aggregate of a list date is built once under a lock; the
    arrays are read-only afterwards.
    """

    def __init__(self, data_dir: str | Path, keep: int = 2):
        from features.contract.io import find_table

        self.data_dir = Path(data_dir)
        self.path = find_table(self.data_dir, "events")
        if self.path is None:
            raise FileNotFoundError(f"table 'events' not found in {self.data_dir}")
        self.keep = keep
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _aggregate(self, first: pd.Timestamp, stop: pd.Timestamp) -> dict:
        import duckdb

        con = duckdb.connect(":memory:")
        params = {"first": first.date(), "stop": stop.date(), "last": (stop - pd.Timedelta(days=1)).date(),
                  "episodes": sorted(EPISODE_SERVICES)}
        try:
            if self.path.is_dir() or self.path.suffix == ".parquet":
                params["path"] = str(self.path / "**" / "*.parquet") if self.path.is_dir() else str(self.path)
                source = "read_parquet($path)"
            else:  # CSV: read and typed as sote reads it (declared date formats, encodings)
                from features.contract.io import read_tables

                frame = read_tables(self.data_dir, ("events",))[0]["events"]
                con.register("events", frame[["client_id", "start", "end", "service", "cost_eur"]])
                source = "events"
            agg = con.execute(_SQL.format(source=source), params).df()
        finally:
            con.close()
        ids = agg["client_id"].to_numpy(dtype=object)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], dtype=int)
        ends = np.r_[starts[1:], len(ids)].astype(int)
        frame = pd.DataFrame({"month": pd.to_datetime(agg["month"]), "service": agg["service"].astype("category"),
                              "contacts": agg["contacts"].astype("int64"), "days": agg["days"].astype("int64"),
                              "cost_eur": agg["cost_eur"].astype(float)})
        return {"frame": frame, "index": dict(zip(ids[starts], zip(starts, ends)))}

    def _table(self, first: pd.Timestamp, stop: pd.Timestamp) -> dict:
        key = (first, stop)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            table = self._aggregate(first, stop)
            self._cache[key] = table
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
            return table

    @staticmethod
    def _window(as_of: date | str, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        stop = _month_floor(as_of)
        return stop - pd.DateOffset(months=months), stop

    def warm(self, as_of: date | str, months: int = 24) -> None:
        """Build the aggregate that :meth:`monthly` of ``as_of`` and ``months`` reads, if not built yet
        (e.g. for the current lists' dates in a background thread at server start)."""
        self._table(*self._window(as_of, months))

    def monthly(self, client_id: str, as_of: date | str, months: int = 24) -> pd.DataFrame:
        """A client's use in the ``months`` whole calendar months before the month of ``as_of``.

        Returns
        -------
        pandas.DataFrame
            One row per month and service line used (month as the month's first
            day, service, contacts: events starting that month, days: days of
            care of episode services counted to the window's end, cost_eur: the
            recorded costs, missing ones as 0), oldest first. ``attrs["months"]``
            lists every month of the window (for a chart's axis).
        """
        first, stop = self._window(as_of, months)
        table = self._table(first, stop)
        lo, hi = table["index"].get(str(client_id), (0, 0))
        out = table["frame"].iloc[lo:hi].reset_index(drop=True)
        out["service"] = out["service"].astype(str)
        out.attrs["months"] = list(pd.date_range(first, stop, freq="MS", inclusive="left"))
        return out


def _group_totals(frame: pd.DataFrame, months: list) -> tuple[list[str], np.ndarray]:
    """Groups present (chart order, unknown service lines last under their own name) and contacts[group, month]."""
    group = frame["service"].map(lambda s: _GROUP_OF.get(s, s))
    order = [g for g in SERVICE_GROUPS if (group == g).any()] + sorted(set(group) - set(SERVICE_GROUPS))
    position = {m: i for i, m in enumerate(months)}
    values = np.zeros((len(order), len(months)))
    for g, m, n in zip(group, frame["month"], frame["contacts"]):
        if m in position:
            values[order.index(g), position[m]] += n
    return order, values


def usage_svg(frame: pd.DataFrame, lang: str = "fi", width: int = 640, height: int = 220) -> str:
    """A small SVG of monthly contacts as bars stacked by service-line group (:data:`SERVICE_GROUPS`).

    Parameters
    ----------
    frame
        :meth:`ServiceUse.monthly` output; its ``attrs["months"]`` sets the
        axis (else the months in the frame).
    lang
        fi, sv or en for the legend, axis title and tooltips.

    Returns
    -------
    str
        An ``<svg>`` element with a labelled y axis, month labels, a legend
        and a ``<title>`` tooltip per bar segment; every text is escaped.
    """
    if lang not in _TEXT:
        raise ValueError(f"language must be one of {', '.join(_TEXT)}, got {lang!r}")
    months = list(frame.attrs.get("months") or sorted(frame["month"].unique()))
    order, values = _group_totals(frame, months)
    left, right, top, bottom, legend = 40, 10, 24, 40, 150
    plot_w, plot_h = width - left - right - legend, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(_TEXT[lang]["axis"])}">',
             f'<text x="{left}" y="14" font-size="11">{escape(_TEXT[lang]["axis"])}</text>']
    peak = float(values.sum(axis=0).max()) if values.size else 0.0
    if peak <= 0:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2:.0f}" font-size="12">{escape(_TEXT[lang]["none"])}</text>')
    scale = plot_h / peak if peak > 0 else 0.0
    for tick in ((0, peak / 2, peak) if peak > 0 else (0,)):
        y = top + plot_h - tick * scale
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick:.0f}</text>')
    step = plot_w / max(len(months), 1)
    for j, month in enumerate(months):
        x, base = left + j * step, top + plot_h
        label = pd.Timestamp(month).strftime("%Y-%m")
        for i, g in enumerate(order):
            n = values[i, j]
            if n <= 0:
                continue
            h = n * scale
            base -= h
            colour = SERVICE_GROUPS[g][1] if g in SERVICE_GROUPS else "#9c9c9c"
            tip = f"{label}: {_group_name(g, lang)} {n:.0f}"
            parts.append(f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(tip)}</title></rect>')
        if j % 3 == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{top + plot_h + 14}" font-size="9" '
                         f'text-anchor="middle">{escape(label)}</text>')
    for i, g in enumerate(order):
        y = top + 14 * i
        colour = SERVICE_GROUPS[g][1] if g in SERVICE_GROUPS else "#9c9c9c"
        parts.append(f'<rect x="{width - legend + 4}" y="{y}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{width - legend + 18}" y="{y + 9}" font-size="10">{escape(_group_name(g, lang))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _group_name(group: str, lang: str) -> str:
    return SERVICE_GROUPS[group][2][lang] if group in SERVICE_GROUPS else str(group)


__all__ = ["SERVICE_GROUPS", "ServiceUse", "usage_svg"]
