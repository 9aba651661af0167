"""Segments of the clients resident at an index date, and how clients move between two dates.

What ``sote segment``, ``sote segment-transitions`` and the demo do, as library
calls: :func:`segment_at` builds the client histories at a date (unless given),
adds each client's cost over the following year when the data cover that whole
year, and segments; :func:`transitions_between` applies the segments fitted at
one date to the clients of another date, earlier or later, and returns the
flows and the transition matrix in calendar order.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.histories.spec import FeatureSpec
from segmentation.segments import NEXT_YEAR_DAYS, SegmentationResult, horizon_cost, segment_clients
from segmentation.transitions import transition_matrix, transition_table


def _events(tables) -> pd.DataFrame:
    frames = tables.tables if hasattr(tables, "tables") else tables
    if not isinstance(frames, Mapping) or "events" not in frames:
        raise TypeError("tables must be validated tables, a validated dataset or a mapping of table name to "
                        "DataFrame with 'events'")
    return frames["events"]


def _next_year(tables, t: pd.Timestamp, data_end) -> tuple[pd.DataFrame, object]:
    """The events :func:`horizon_cost` reads at ``t`` and the data end :func:`next_year_covered` compares with.

    From a validated dataset only the events starting in the year after ``t``
    come into pandas (three columns), and the last event start is read in SQL.
    """
    from features.targets.labels import event_span, is_dataset

    if not is_dataset(tables):
        return _events(tables), data_end
    hi = t + pd.Timedelta(days=NEXT_YEAR_DAYS)
    events = tables.read("events", ["client_id", "start", "cost_eur"],
                         where=f"start >= TIMESTAMP '{t:%Y-%m-%d}' AND start < TIMESTAMP '{hi:%Y-%m-%d}'")
    if data_end is None:
        last = event_span(tables)[1]
        data_end = None if pd.isna(last) else last
        if data_end is None:  # no events at all: not covered, as next_year_covered says for an empty table
            return events.iloc[:0], None
    return events, data_end


def next_year_covered(events: pd.DataFrame, as_of, *, data_end=None, days: int = NEXT_YEAR_DAYS) -> bool:
    """Whether the data cover the whole year after ``as_of`` ([as_of, as_of + days)).

    Parameters
    ----------
    events
        The events table (``start`` column).
    as_of
        Index date.
    data_end
        Last day of the data when the dataset declares it; otherwise the last event start is taken.
    days
        Length of the horizon.
    """
    t = pd.Timestamp(as_of).normalize()
    if data_end is not None:
        last = pd.Timestamp(data_end)
    elif len(events):
        last = events["start"].max()
    else:
        return False
    return bool(last >= t + pd.Timedelta(days=days - 1))


def cohort_clients(tables, as_of, cohort: str, *, targets: str | Path | None = None) -> pd.Index:
    """Client ids (as text) of the cohort of target ``cohort`` at ``as_of`` (``features.targets``).

    Parameters
    ----------
    tables
        Validated tables, a validated dataset or a mapping of table name to DataFrame.
    as_of
        Index date; the cohort uses only records before it.
    cohort
        Name of a target in ``targets.yaml`` (e.g. ``young_adult_mhsu``) whose cohort is wanted.
    targets
        Another targets file (the packaged one when None).

    Raises
    ------
    features.targets.spec.TargetError
        (a ``ValueError``) if no target has that name; the message lists the declared ones.
    """
    from features.targets.labels import cohort_members
    from features.targets.spec import get_target

    from features.targets.labels import is_dataset

    frames = tables if is_dataset(tables) else tables.tables if hasattr(tables, "tables") else tables
    target = get_target(cohort, targets)
    return pd.Index(cohort_members(frames, pd.Timestamp(as_of).normalize(), target.cohort).index.astype(str))


def features_at(tables, as_of, *, histories=None, spec: FeatureSpec | str | Path | None = None) -> pd.DataFrame:
    """Client-history features of the residents at ``as_of`` (from ``histories`` when given, to reuse its cache).

    Raises
    ------
    ValueError
        If no client is resident at ``as_of`` (a date outside the data).
    """
    t = pd.Timestamp(as_of).normalize()
    if histories is not None:
        features = histories.features(t)
    else:
        from features.histories.build import build_features

        features = build_features(tables, t, spec)
    if features.empty:
        raise ValueError(f"no client is resident at {t.date()}; is the date inside the data?")
    return features


@dataclass
class SegmentsAt:
    """Segments of one index date.

    Attributes
    ----------
    as_of
        The index date.
    features
        The feature table the segments were fitted on (one row per resident).
    result
        Assignments, profiles and the fitted model (:class:`SegmentationResult`).
    next_year_cost
        Each client's cost in the year after ``as_of`` (aligned with ``features``),
        or None when the data do not cover that whole year.
    cohort
        Name of the target whose cohort was segmented, or None for all residents.
    """

    as_of: pd.Timestamp
    features: pd.DataFrame
    result: SegmentationResult
    next_year_cost: pd.Series | None
    cohort: str | None = None

    def names(self) -> pd.Series:
        """Segment name of each client of :attr:`features`, indexed by ``client_id``."""
        a = self.result.assignments
        return pd.Series(a["segment_name"].to_numpy(), index=a["client_id"].astype(str).to_numpy(),
                         name="segment_name")


def segment_at(tables, as_of, method: str = "kmeans", k: int | str = "auto", *, features: pd.DataFrame | None = None,
               histories=None, spec: FeatureSpec | str | Path | None = None, data_end=None, random_state: int = 0,
               lang: str = "fi", grid_config: str | Path | None = None, cohort: str | None = None,
               targets: str | Path | None = None, **segmenter_kw) -> SegmentsAt:
    """Segment the clients resident at ``as_of``.

    Parameters
    ----------
    tables
        Validated tables (:func:`features.contract.load.load_tables`), a validated dataset
        (:func:`features.contract.stream.open_dataset`: only the year after ``as_of`` is read
        into pandas) or a mapping of table name to DataFrame with costs filled.
    as_of
        Index date.
    method, k, random_state, lang, grid_config, **segmenter_kw
        As in :func:`segmentation.segments.segment_clients`.
    features
        The feature table at ``as_of`` if already built; otherwise built from
        ``histories`` (a :class:`~features.histories.build.ClientHistories`) or ``tables`` with ``spec``.
    data_end
        Declared last day of the data; the next-year cost is used only when the
        data reach ``as_of + 364 days`` (see :func:`next_year_covered`).
    cohort, targets
        Segment only the cohort of this target (:func:`cohort_clients`), e.g.
        ``young_adult_mhsu``: the profiles then describe the group's own use.

    Raises
    ------
    ValueError
        If no client is resident at ``as_of`` (or in the cohort), the method or k is not valid,
        or ``cohort`` names no target.
    """
    t = pd.Timestamp(as_of).normalize()
    if features is None:
        features = features_at(tables, t, histories=histories, spec=spec)
    elif features.empty:
        raise ValueError(f"no client is resident at {t.date()}; is the date inside the data?")
    if cohort is not None:
        members = cohort_clients(tables, t, cohort, targets=targets)
        features = features[features["client_id"].astype(str).isin(members)].reset_index(drop=True)
        if features.empty:
            raise ValueError(f"the cohort of {cohort} is empty at {t.date()}")
    events, data_end = _next_year(tables, t, data_end)
    next_cost = (horizon_cost(events, features["client_id"], t, NEXT_YEAR_DAYS)
                 if next_year_covered(events, t, data_end=data_end) else None)
    result = segment_clients(features, method, k, next_year_cost=next_cost, random_state=random_state,
                             grid_config=grid_config, lang=lang, **segmenter_kw)
    return SegmentsAt(t, features, result, next_cost, cohort)


@dataclass
class Transitions:
    """Segment migration between two dates, in calendar order.

    Attributes
    ----------
    date_from, date_to
        The earlier and the later date.
    fitted_at
        The date whose segments were fitted (the other date's clients are assigned to them).
    before, after
        Segment name per client at each date, indexed by ``client_id``.
    flows
        :func:`~segmentation.transitions.transition_table` of ``before`` and ``after``.
    matrix
        :func:`~segmentation.transitions.transition_matrix` (clients present at both dates).
    """

    date_from: pd.Timestamp
    date_to: pd.Timestamp
    fitted_at: pd.Timestamp
    before: pd.Series
    after: pd.Series
    flows: pd.DataFrame
    matrix: pd.DataFrame

    def html(self) -> str:
        """The readable report: Sankey diagram, transition matrix and flows."""
        from segmentation.report import transitions_html

        return transitions_html(self.flows, self.matrix, str(self.date_from.date()), str(self.date_to.date()))


def transitions_between(fitted: SegmentsAt, other_as_of, *, features: pd.DataFrame | None = None, tables=None,
                        histories=None, spec: FeatureSpec | str | Path | None = None) -> Transitions:
    """How clients move between the segments of ``fitted`` from one date to the other.

    The segments fitted at ``fitted.as_of`` are applied unchanged to the clients
    resident at ``other_as_of``, which may be earlier (the demo: segments of the
    validation date, clients of the training date) or later (``sote
    segment-transitions``: segments of ``--from``, clients of ``--to``); the
    result is always ordered from the earlier to the later date. When
    ``fitted`` segmented a cohort, the same clients are followed: at the other
    date only they are assigned, and those no longer resident show as
    ``(not present)``.

    Parameters
    ----------
    fitted
        Segments of one date (:func:`segment_at`).
    other_as_of
        The other index date.
    features
        The feature table at ``other_as_of`` if already built; otherwise built
        from ``histories`` or ``tables`` (with ``spec``).

    Raises
    ------
    ValueError
        If the two dates are the same, or no client is resident at ``other_as_of``.
    """
    other = pd.Timestamp(other_as_of).normalize()
    if other == fitted.as_of:
        raise ValueError(f"transitions need two different dates, got {other.date()} twice")
    if features is None:
        if tables is None and histories is None:
            raise ValueError("transitions_between needs the features at the other date, or tables or histories")
        features = features_at(tables, other, histories=histories, spec=spec)
    elif features.empty:
        raise ValueError(f"no client is resident at {other.date()}; is the date inside the data?")
    if fitted.cohort is not None:
        followed = fitted.features["client_id"].astype(str)
        features = features[features["client_id"].astype(str).isin(followed)].reset_index(drop=True)
    at_fitted, at_other = fitted.names(), fitted.result.assign(features)
    if other > fitted.as_of:
        date_from, date_to, before, after = fitted.as_of, other, at_fitted, at_other
    else:
        date_from, date_to, before, after = other, fitted.as_of, at_other, at_fitted
    return Transitions(date_from, date_to, fitted.as_of, before, after, transition_table(before, after),
                       transition_matrix(before, after))
