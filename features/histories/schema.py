"""A pandera schema of the feature table, built from the feature spec."""
from __future__ import annotations

import pandera.pandas as pa

from features.contract.tables import LANGUAGES, MEASUREMENTS, RAI_SCALES, SEXES
from features.histories.spec import FeatureColumn, FeatureSpec, load_spec

_NON_NEGATIVE_INT = {"count", "days", "units", "professionals", "total_count", "service_lines", "chronic_conditions",
                     "charlson_index"}
_FLAGS = {"dx", "social_and_health"}


def _column(c: FeatureColumn, spec: FeatureSpec) -> pa.Column:
    if c.kind == "age":
        return pa.Column(int, pa.Check.in_range(0, 130))
    if c.kind == "sex":
        return pa.Column(str, pa.Check.isin(list(SEXES)))
    if c.kind == "language":
        return pa.Column(str, pa.Check.isin(list(LANGUAGES)))
    if c.kind in ("municipality", "unit"):
        return pa.Column(str)
    if c.kind in _FLAGS:
        return pa.Column(int, pa.Check.isin([0, 1]))
    if c.kind in _NON_NEGATIVE_INT:
        # days may exceed the window: overlapping episodes are summed, not merged (docs/features.md)
        checks = [pa.Check.ge(0)]
        if c.kind == "service_lines":
            checks.append(pa.Check.le(13))
        return pa.Column(int, checks)
    if c.kind in ("cost", "total_cost"):
        return pa.Column(float, pa.Check.ge(0))
    if c.kind in ("days_since_last", "measurement_days_since"):
        return pa.Column(float, pa.Check.ge(1), nullable=True)  # the latest possible record is T - 1 day
    if c.kind == "measurement_last":
        _, lo, hi = MEASUREMENTS[c.subject]
        return pa.Column(float, pa.Check.in_range(lo, hi), nullable=True)
    if c.kind == "rai_last":
        lo, hi = RAI_SCALES[c.subject]
        return pa.Column(float, pa.Check.in_range(lo, hi), nullable=True)
    if c.kind == "continuity":
        return pa.Column(float, pa.Check.in_range(0, 1, include_min=False), nullable=True)
    # change features: NaN without the history they compare with (docs/features.md, "Change features")
    if c.kind in ("first_use", "new_dx"):
        return pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=True)
    if c.kind == "new_dx_count":
        return pa.Column(float, pa.Check.in_range(0, len(spec.new_diagnoses.groups)), nullable=True)
    if c.kind == "rai_step":
        lo, hi = RAI_SCALES[c.subject]
        return pa.Column(float, pa.Check.in_range(lo - hi, hi - lo), nullable=True)
    return pa.Column(float, nullable=True)  # changes: any sign


def feature_schema(spec: FeatureSpec | None = None) -> pa.DataFrameSchema:
    """The pandera schema of the feature table the spec produces.

    One row per ``client_id`` (unique), exactly the spec's columns in order,
    zero-filled counts and costs non-null and non-negative, missing values
    allowed only where the spec says "nothing to summarise" is NaN.
    """
    spec = spec or load_spec()
    columns = {"client_id": pa.Column(str, unique=True, nullable=False)}
    columns.update({c.name: _column(c, spec) for c in spec.columns()})
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="client_history_features")
