"""Need-based (rule) segments: declared segments in priority order, one per client.

In the spirit of Bridges to Health and Singapore's population segments: each
segment is a rule over the client-history feature table (recorded condition
groups, RAI levels, service lines and last year's use), read from a YAML file a
county can change (``segmentation/config/needs.yaml`` by default) through the
configuration loader. Segments are tried in the declared order and a client
lands in the first whose rule holds; the last segment has no conditions and
takes everyone left, so every client is in exactly one segment.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from features.config.loader import build, read_yaml

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.equal}
LANGS = ("fi", "sv", "en")


@dataclass(frozen=True)
class NeedCondition:
    """``column op value`` on the feature table (a missing value never holds)."""

    column: str
    op: str = field(metadata={"choices": tuple(_OPS)})
    value: float

    def holds(self, X: pd.DataFrame) -> np.ndarray:
        """Whether the condition holds for each row of ``X``."""
        values = X[self.column].astype(float).to_numpy()
        with np.errstate(invalid="ignore"):
            hit = _OPS[self.op](values, self.value)
        return np.where(np.isnan(values), False, hit)

    def describe(self) -> str:
        """The condition as text, e.g. ``age >= 75``."""
        return f"{self.column} {self.op} {self.value:g}"


@dataclass(frozen=True)
class NeedSegment:
    """One segment: its rule (``all`` and ``any`` conditions), why, whether it is a data proxy, its names."""

    name: str
    labels: Mapping[str, str]
    why: str = ""
    proxy: bool = False
    all: tuple[NeedCondition, ...] = ()
    any: tuple[NeedCondition, ...] = ()

    def __post_init__(self):
        missing = [lang for lang in LANGS if not str(self.labels.get(lang, "")).strip()]
        if missing:
            raise ValueError(f"segment {self.name!r} has no label in {missing}")

    @property
    def catch_all(self) -> bool:
        """True for the segment without conditions (everyone not placed before)."""
        return not self.all and not self.any

    def holds(self, X: pd.DataFrame) -> np.ndarray:
        """Whether the rule holds for each row of ``X`` (all of ``all`` and, if given, one of ``any``)."""
        hit = np.ones(len(X), dtype=bool)
        for cond in self.all:
            hit &= cond.holds(X)
        if self.any:
            hit &= np.logical_or.reduce([cond.holds(X) for cond in self.any])
        return hit


@dataclass(frozen=True)
class NeedsConfig:
    """Need-based segments in priority order; the last one is the catch-all."""

    segments: tuple[NeedSegment, ...] = field(metadata={"non_empty": True})

    def __post_init__(self):
        names = [s.name for s in self.segments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"segment names must be unique, repeated: {dup}")
        if not self.segments[-1].catch_all:
            raise ValueError(f"the last segment ({names[-1]!r}) must have no conditions, so every client is placed")
        early = [s.name for s in self.segments[:-1] if s.catch_all]
        if early:
            raise ValueError(f"only the last segment may have no conditions, also without: {early}")

    def columns(self) -> list[str]:
        """Feature columns the rules read."""
        return sorted({c.column for s in self.segments for c in (*s.all, *s.any)})


def load_needs_config(path: str | Path | None = None) -> NeedsConfig:
    """Read and check a need-based segments file (the packaged ``segmentation/config/needs.yaml`` when None).

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file, the key path and the bad value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = read_yaml(path, "needs.yaml", package="segmentation.config")
    return build(NeedsConfig, raw, f"needs config {source}")


class NeedSegments(ClusterMixin, BaseEstimator):
    """Declared need-based segments: the first rule that holds places the client.

    Parameters
    ----------
    config
        Path of a needs YAML, or None for the packaged one.

    Attributes
    ----------
    config_ : NeedsConfig
        The loaded configuration.
    segment_codes_ : dict
        Segment name -> code (its position in the priority order).
    k_ : int
        Number of declared segments.
    labels_ : ndarray
        Segment code of each training client.
    """

    def __init__(self, config: str | Path | None = None):
        self.config = config

    def fit(self, X: pd.DataFrame, y=None) -> "NeedSegments":
        """Load and check the rules against the columns of ``X``; nothing is learned from the data."""
        self.config_ = load_needs_config(self.config)
        self._check_columns(X)
        self.segment_codes_ = {s.name: i for i, s in enumerate(self.config_.segments)}
        self.k_ = len(self.config_.segments)
        self.labels_ = self.predict(X)
        return self

    def _check_columns(self, X: pd.DataFrame) -> None:
        missing = sorted(set(self.config_.columns()) - set(X.columns))
        if missing:
            raise ValueError(f"feature table lacks columns used by the need-based rules: {missing}")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment code of each client: the position of the first segment whose rule holds."""
        check_is_fitted(self, "config_")
        self._check_columns(X)
        codes = np.full(len(X), -1)
        for i, segment in enumerate(self.config_.segments):
            codes = np.where((codes < 0) & segment.holds(X), i, codes)
        return codes

    def rules(self, X: pd.DataFrame) -> pd.DataFrame:
        """Which rule placed each client: ``segment`` (name) and ``conditions`` (those of the rule that held).

        Indexed like ``X``; for the catch-all segment ``conditions`` is empty.
        """
        codes = self.predict(X)
        segments = self.config_.segments
        matched = np.full(len(X), "", dtype=object)
        for i, segment in enumerate(segments):
            rows = codes == i
            if not rows.any() or segment.catch_all:
                continue
            part = X.loc[rows]
            held = [(c, c.holds(part)) for c in (*segment.all, *segment.any)]
            matched[rows] = ["; ".join(c.describe() for c, h in held if h[j]) for j in range(len(part))]
        return pd.DataFrame({"segment": [segments[c].name for c in codes], "conditions": matched}, index=X.index)

    def segment_names(self, lang: str = "fi") -> dict[int, str]:
        """Code -> the segment's name in ``lang`` (fi, sv, en)."""
        check_is_fitted(self, "config_")
        if lang not in LANGS:
            raise ValueError(f"no need-segment labels for language '{lang}' (have {list(LANGS)})")
        return {i: s.labels[lang] for i, s in enumerate(self.config_.segments)}
