"""The feature spec: declared features of the client-history table, validated on load.

A spec is data (``features/config/features.yaml``), in the spirit of MEDS-Tab
and ACES: windows x service lines x aggregations, plus diagnosis groups, a
Charlson index, measurement and RAI summaries, multi-sector use, continuity of
care and demographics. :func:`load_spec` turns the YAML into frozen
dataclasses and rejects anything it does not understand with a message that
names the key. :meth:`FeatureSpec.columns` lists every output column, in a
stable order, with the metadata the SQL compiler, the pandas reference, the
feature schema and the feature dictionary share.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from features.contract.tables import (
    EPISODE_SERVICES,
    HEALTH_SERVICES,
    MEASUREMENTS,
    RAI_SCALES,
    SERVICE_LINES,
    SOCIAL_SERVICES,
)

EVENT_AGGS: tuple[str, ...] = ("count", "cost", "days", "units", "professionals")
TOTAL_AGGS: tuple[str, ...] = ("count", "cost")
DEMOGRAPHICS: tuple[str, ...] = ("age", "sex", "language", "municipality", "unit")
CONTINUITY_BY: tuple[str, ...] = ("unit", "professional")
_SERVICE_SETS = {
    "all": SERVICE_LINES,
    "episodes": tuple(s for s in SERVICE_LINES if s in EPISODE_SERVICES),
    "social": tuple(s for s in SERVICE_LINES if s in SOCIAL_SERVICES),
    "health": tuple(s for s in SERVICE_LINES if s in HEALTH_SERVICES),
}


class SpecError(ValueError):
    """A feature spec, diagnosis-group or Charlson file that cannot be used."""


@dataclass(frozen=True)
class EventAggregation:
    """One aggregation over events of some service lines in some windows."""

    agg: str
    services: tuple[str, ...]
    windows: tuple[int, ...]


@dataclass(frozen=True)
class MeasurementFeature:
    """Summaries of one measurement (``hba1c``, ``bmi``, ...)."""

    name: str
    lookback_days: int
    change: bool = False
    days_since: bool = False


@dataclass(frozen=True)
class AssessmentFeatures:
    """Latest value and change of RAI scales."""

    scales: tuple[str, ...]
    lookback_days: int
    change_days: int


@dataclass(frozen=True)
class Continuity:
    """Usual-provider-of-care index over contacts of ``services``."""

    services: tuple[str, ...]
    window_days: int
    min_contacts: int
    by: tuple[str, ...]


@dataclass(frozen=True)
class DiagnosisGroup:
    """Inclusive ranges of 3-character categories per code system."""

    name: str
    icd10: tuple[tuple[str, str], ...]
    icpc2: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CharlsonCategory:
    """One Charlson category: weight and ICD-10 prefixes or ranges (codes without dots)."""

    name: str
    weight: int
    prefixes: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Charlson:
    """Charlson mapping: categories, implication rules and severity hierarchy."""

    categories: tuple[CharlsonCategory, ...]
    implies: tuple[tuple[tuple[str, ...], str], ...]
    supersedes: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class FeatureColumn:
    """One output column and what it means (shared by SQL, reference, schema, dictionary)."""

    name: str
    kind: str
    dtype: str  # "int", "float" or "str"
    service: str | None = None
    window: int | None = None
    subject: str | None = None  # group, measurement, scale, or continuity key


@dataclass(frozen=True)
class FeatureSpec:
    """A validated feature spec; see ``features/config/features.yaml``."""

    windows: tuple[int, ...]
    events: tuple[EventAggregation, ...]
    days_since_last: tuple[str, ...]
    totals: tuple[str, ...]
    total_windows: tuple[int, ...]
    multi_sector_windows: tuple[int, ...]
    diagnosis_groups: tuple[DiagnosisGroup, ...]
    diagnosis_lookback_days: int | None
    chronic_groups: tuple[str, ...]
    charlson: Charlson | None
    measurements: tuple[MeasurementFeature, ...]
    assessments: AssessmentFeatures | None
    continuity: Continuity | None
    demographics: tuple[str, ...]
    unit_costs: str | None = None
    source: str = field(default="default", compare=False)

    def event_windows(self) -> tuple[int, ...]:
        """Every window an event feature needs, ascending."""
        ws = {w for a in self.events for w in a.windows} | set(self.total_windows) | set(self.multi_sector_windows)
        return tuple(sorted(ws))

    def columns(self) -> list[FeatureColumn]:
        """Every feature column in output order (``client_id`` excluded)."""
        cols: list[FeatureColumn] = []
        for d in self.demographics:
            cols.append(FeatureColumn(d, d, "int" if d == "age" else "str"))
        for a in self.events:
            for s in a.services:
                for w in a.windows:
                    dtype = "float" if a.agg == "cost" else "int"
                    cols.append(FeatureColumn(f"{s}_{a.agg}_{w}d", a.agg, dtype, service=s, window=w))
        for s in self.days_since_last:
            cols.append(FeatureColumn(f"days_since_last_{s}", "days_since_last", "float", service=s))
        for agg in self.totals:
            for w in self.total_windows:
                cols.append(FeatureColumn(f"{agg}_total_{w}d", f"total_{agg}", "float" if agg == "cost" else "int",
                                          window=w))
        for w in self.multi_sector_windows:
            cols.append(FeatureColumn(f"service_lines_{w}d", "service_lines", "int", window=w))
            cols.append(FeatureColumn(f"social_and_health_{w}d", "social_and_health", "int", window=w))
        for g in self.diagnosis_groups:
            cols.append(FeatureColumn(f"dx_{g.name}", "dx", "int", subject=g.name))
        if self.chronic_groups:
            cols.append(FeatureColumn("chronic_conditions", "chronic_conditions", "int"))
        if self.charlson is not None:
            cols.append(FeatureColumn("charlson_index", "charlson_index", "int"))
        for m in self.measurements:
            cols.append(FeatureColumn(f"{m.name}_last", "measurement_last", "float", subject=m.name))
            if m.change:
                cols.append(FeatureColumn(f"{m.name}_change", "measurement_change", "float", subject=m.name))
            if m.days_since:
                cols.append(FeatureColumn(f"days_since_last_{m.name}", "measurement_days_since", "float",
                                          subject=m.name))
        if self.assessments is not None:
            a = self.assessments
            for sc in a.scales:
                cols.append(FeatureColumn(f"rai_{sc}_last", "rai_last", "float", subject=sc))
                cols.append(FeatureColumn(f"rai_{sc}_change_{a.change_days}d", "rai_change", "float", subject=sc,
                                          window=a.change_days))
        if self.continuity is not None:
            c = self.continuity
            for by in c.by:
                cols.append(FeatureColumn(f"continuity_{by}_{c.window_days}d", "continuity", "float", subject=by,
                                          window=c.window_days))
        return cols

    def column_names(self) -> list[str]:
        """Names of :meth:`columns`, with ``client_id`` first."""
        return ["client_id", *(c.name for c in self.columns())]


def _config_text(name: str) -> str:
    return resources.files("features.config").joinpath(name).read_text()


def _fail(source: str, where: str, problem: str) -> SpecError:
    return SpecError(f"feature spec {source}: {where}: {problem}")


def _check_keys(raw: dict, allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(source, where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _positive_ints(value: Any, source: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(source, where, f"expected a non-empty list of days, got {value!r}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise _fail(source, where, f"window {v!r} is not a positive whole number of days")
    if len(set(value)) != len(value):
        raise _fail(source, where, f"duplicate windows in {value}")
    return tuple(sorted(value))


def _days(value: Any, source: str, where: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _fail(source, where, f"expected a positive whole number of days, got {value!r}")
    return value


def _services(value: Any, source: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        if value not in _SERVICE_SETS:
            raise _fail(source, where, f"unknown service set {value!r}; use one of {sorted(_SERVICE_SETS)} or a list")
        return _SERVICE_SETS[value]
    if not isinstance(value, list) or not value:
        raise _fail(source, where, f"expected a service set name or a non-empty list, got {value!r}")
    unknown = [s for s in value if s not in SERVICE_LINES]
    if unknown:
        raise _fail(source, where, f"unknown service line(s) {unknown}; known: {list(SERVICE_LINES)}")
    return tuple(s for s in SERVICE_LINES if s in value)  # contract order keeps column order stable


def load_diagnosis_groups(path: str | Path | None = None) -> dict[str, DiagnosisGroup]:
    """Read diagnosis groups (``features/config/diagnosis_groups.yaml`` by default).

    Raises
    ------
    SpecError
        If a group is malformed (a range that is not two category bounds).
    """
    text = _config_text("diagnosis_groups.yaml") if path is None else Path(path).read_text()
    raw = (yaml.safe_load(text) or {}).get("groups") or {}
    out = {}
    for name, systems in raw.items():
        ranges = {}
        for system in ("icd10", "icpc2"):
            pairs = (systems or {}).get(system) or []
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(b, str) for b in pair)):
                    raise SpecError(f"diagnosis groups {path or 'default'}: group {name}, {system}: bad range {pair!r}")
            ranges[system] = tuple((lo, hi) for lo, hi in pairs)
        out[name] = DiagnosisGroup(name, ranges["icd10"], ranges["icpc2"])
    return out


_CODE = re.compile(r"^[A-Z]\d{2}[0-9A-Z]{0,2}$")


def load_charlson(path: str | Path | None = None) -> Charlson:
    """Read a Charlson mapping (``features/config/charlson.yaml`` by default).

    Raises
    ------
    SpecError
        If an entry is not a code prefix or range, a weight is not a whole
        number, or a rule names an unknown category.
    """
    source = str(path or "charlson.yaml")
    text = _config_text("charlson.yaml") if path is None else Path(path).read_text()
    raw = yaml.safe_load(text) or {}
    cats = []
    for name, spec in (raw.get("categories") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("weight"), int):
            raise SpecError(f"Charlson mapping {source}: category {name}: needs an integer weight")
        prefixes, ranges = [], []
        for entry in spec.get("icd10") or []:
            entry = str(entry).replace(".", "").upper()
            lo, _, hi = entry.partition("-")
            if not _CODE.match(lo) or (hi and (not _CODE.match(hi) or len(hi) != len(lo))):
                raise SpecError(f"Charlson mapping {source}: category {name}: bad ICD-10 entry {entry!r}")
            if hi:
                ranges.append((lo, hi))
            else:
                prefixes.append(lo)
        cats.append(CharlsonCategory(name, spec["weight"], tuple(prefixes), tuple(ranges)))
    names = {c.name for c in cats}
    if not names:
        raise SpecError(f"Charlson mapping {source}: no categories")
    implies = []
    for rule in raw.get("implies") or []:
        needed, then = tuple(rule.get("all_of") or ()), rule.get("then")
        if not needed or then not in names or not set(needed) <= names:
            raise SpecError(f"Charlson mapping {source}: bad implies rule {rule!r}")
        implies.append((needed, then))
    supersedes = []
    for high, lows in (raw.get("supersedes") or {}).items():
        if high not in names or not set(lows) <= names:
            raise SpecError(f"Charlson mapping {source}: supersedes {high}: unknown category")
        supersedes.append((high, tuple(lows)))
    return Charlson(tuple(cats), tuple(implies), tuple(supersedes))


def _event_aggs(raw: Any, windows: tuple[int, ...], source: str) -> tuple[EventAggregation, ...]:
    if not isinstance(raw, list):
        raise _fail(source, "events", "expected a list of aggregations")
    out = []
    for i, item in enumerate(raw):
        where = f"events[{i}]"
        if not isinstance(item, dict):
            raise _fail(source, where, f"expected a mapping, got {item!r}")
        _check_keys(item, {"agg", "services", "windows"}, source, where)
        agg = item.get("agg")
        if agg not in EVENT_AGGS:
            raise _fail(source, where, f"unknown aggregation {agg!r}; known: {list(EVENT_AGGS)}")
        services = _services(item.get("services", "all"), source, where)
        if agg == "days":
            not_episodes = [s for s in services if s not in EPISODE_SERVICES]
            if not_episodes:
                raise _fail(source, where, f"days are counted for episode services only "
                                           f"({sorted(EPISODE_SERVICES)}), not {not_episodes}")
        ws = _positive_ints(item["windows"], source, f"{where}.windows") if "windows" in item else windows
        out.append(EventAggregation(agg, services, ws))
    return tuple(out)


def parse_spec(raw: dict, source: str = "<dict>") -> FeatureSpec:
    """Validate a spec given as a mapping (the parsed YAML) and build a :class:`FeatureSpec`.

    Raises
    ------
    SpecError
        Naming the key and the problem, for anything unknown or malformed.
    """
    if not isinstance(raw, dict):
        raise _fail(source, "top level", "expected a mapping")
    _check_keys(raw, {"version", "windows", "events", "days_since_last", "totals", "multi_sector", "diagnoses",
                      "measurements", "assessments", "continuity", "demographics", "unit_costs"}, source, "top level")
    if raw.get("version", 1) != 1:
        raise _fail(source, "version", f"unsupported version {raw.get('version')!r} (this code reads version 1)")
    windows = _positive_ints(raw.get("windows", [90, 180, 365, 730]), source, "windows")
    events = _event_aggs(raw.get("events", []), windows, source)
    names = [(a.agg, s, w) for a in events for s in a.services for w in a.windows]
    if len(set(names)) != len(names):
        raise _fail(source, "events", "the same aggregation, service and window is declared twice")
    dsl = raw.get("days_since_last")
    days_since = () if dsl in (None, [], False) else _services(dsl, source, "days_since_last")

    totals_raw = raw.get("totals") or {}
    _check_keys(totals_raw, {"aggs", "windows"}, source, "totals")
    totals = tuple(totals_raw.get("aggs") or ())
    if set(totals) - set(TOTAL_AGGS):
        raise _fail(source, "totals.aggs", f"unknown {sorted(set(totals) - set(TOTAL_AGGS))}; known: {TOTAL_AGGS}")
    total_windows = (_positive_ints(totals_raw["windows"], source, "totals.windows")
                     if "windows" in totals_raw else (windows if totals else ()))

    ms_raw = raw.get("multi_sector") or {}
    _check_keys(ms_raw, {"windows"}, source, "multi_sector")
    ms_windows = _positive_ints(ms_raw["windows"], source, "multi_sector.windows") if "windows" in ms_raw else ()

    dx_raw = raw.get("diagnoses") or {}
    _check_keys(dx_raw, {"groups", "lookback_days", "chronic_count", "charlson", "groups_file"}, source, "diagnoses")
    known_groups = load_diagnosis_groups(dx_raw.get("groups_file"))
    g = dx_raw.get("groups", [])
    group_names = list(known_groups) if g == "all" else list(g or [])
    unknown = [n for n in group_names if n not in known_groups]
    if unknown:
        raise _fail(source, "diagnoses.groups", f"unknown group(s) {unknown}; known: {list(known_groups)}")
    cc = dx_raw.get("chronic_count", [])
    chronic = list(group_names) if cc == "all" else list(cc or [])
    if set(chronic) - set(group_names):
        raise _fail(source, "diagnoses.chronic_count",
                    f"group(s) {sorted(set(chronic) - set(group_names))} are not among diagnoses.groups")
    charlson_file = dx_raw.get("charlson")
    charlson = None
    if charlson_file:
        path = None if charlson_file == "charlson.yaml" else charlson_file
        charlson = load_charlson(path)
    dx_lookback = _days(dx_raw.get("lookback_days"), source, "diagnoses.lookback_days", allow_none=True)

    meas = []
    for name, m in (raw.get("measurements") or {}).items():
        where = f"measurements.{name}"
        if name not in MEASUREMENTS:
            raise _fail(source, where, f"unknown measurement; known: {list(MEASUREMENTS)}")
        m = m or {}
        _check_keys(m, {"lookback_days", "change", "days_since"}, source, where)
        meas.append(MeasurementFeature(name, _days(m.get("lookback_days", 730), source, f"{where}.lookback_days"),
                                       bool(m.get("change", False)), bool(m.get("days_since", False))))

    assessments = None
    if raw.get("assessments"):
        a = raw["assessments"]
        _check_keys(a, {"scales", "lookback_days", "change_days"}, source, "assessments")
        scales = a.get("scales") or list(RAI_SCALES)
        if set(scales) - set(RAI_SCALES):
            raise _fail(source, "assessments.scales",
                        f"unknown scale(s) {sorted(set(scales) - set(RAI_SCALES))}; known: {list(RAI_SCALES)}")
        lookback = _days(a.get("lookback_days", 730), source, "assessments.lookback_days")
        change = _days(a.get("change_days", 365), source, "assessments.change_days")
        if change > lookback:
            raise _fail(source, "assessments", "change_days cannot exceed lookback_days")
        assessments = AssessmentFeatures(tuple(scales), lookback, change)

    continuity = None
    if raw.get("continuity"):
        c = raw["continuity"]
        _check_keys(c, {"services", "window_days", "min_contacts", "by"}, source, "continuity")
        by = tuple(c.get("by") or CONTINUITY_BY)
        if set(by) - set(CONTINUITY_BY):
            raise _fail(source, "continuity.by", f"expected some of {CONTINUITY_BY}, got {list(by)}")
        min_contacts = c.get("min_contacts", 2)
        if not isinstance(min_contacts, int) or min_contacts < 1:
            raise _fail(source, "continuity.min_contacts", f"expected a whole number >= 1, got {min_contacts!r}")
        continuity = Continuity(_services(c.get("services", ["primary_care_visit"]), source, "continuity.services"),
                                _days(c.get("window_days", 730), source, "continuity.window_days"), min_contacts, by)

    demo = tuple(raw.get("demographics", DEMOGRAPHICS) or ())
    if set(demo) - set(DEMOGRAPHICS):
        raise _fail(source, "demographics", f"unknown {sorted(set(demo) - set(DEMOGRAPHICS))}; known: {DEMOGRAPHICS}")

    spec = FeatureSpec(
        windows=windows, events=events, days_since_last=days_since, totals=totals, total_windows=total_windows,
        multi_sector_windows=ms_windows,
        diagnosis_groups=tuple(known_groups[n] for n in group_names), diagnosis_lookback_days=dx_lookback,
        chronic_groups=tuple(chronic), charlson=charlson, measurements=tuple(meas), assessments=assessments,
        continuity=continuity, demographics=demo, unit_costs=raw.get("unit_costs"), source=source,
    )
    names = spec.column_names()
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(source, "columns", f"duplicate feature names {dupes}")
    return spec


def load_spec(path: str | Path | None = None) -> FeatureSpec:
    """Load and validate a feature spec YAML (the packaged default when ``path`` is None).

    Raises
    ------
    SpecError
        If the file is not valid YAML or breaks a rule of the spec.
    FileNotFoundError
        If ``path`` does not exist.
    """
    if path is None:
        text, source = _config_text("features.yaml"), "features.yaml (default)"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"feature spec not found: {path}")
        text, source = path.read_text(), str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"feature spec {source}: not valid YAML: {err}") from err
    return parse_spec(raw or {}, source)
