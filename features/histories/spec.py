"""The feature spec: declared features of the client-history table, validated on load.

A spec is data (``features/config/features.yaml``), in the spirit of MEDS-Tab
and ACES: windows x service lines x aggregations, plus diagnosis groups, a
Charlson index, measurement and RAI summaries, multi-sector use, continuity of
care and demographics, and change features (use against a year earlier,
first uses, new diagnoses, RAI steps) built on event spans. :func:`load_spec` turns the YAML into frozen
dataclasses and rejects anything it does not understand with a message that
names the key. :meth:`FeatureSpec.columns` lists every output column, in a
stable order, with the metadata the SQL compiler, the pandas reference, the
feature schema and the feature dictionary share.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from features.config.loader import ConfigError, ConfigFileNotFound, build, read_yaml
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
#: Column kinds that describe a change over time (a trajectory) rather than a level; see :func:`reason_type`.
CHANGE_KINDS: frozenset[str] = frozenset({"use_change", "first_use", "new_dx", "new_dx_count", "rai_step",
                                          "rai_change", "measurement_change"})
#: What a feature says about a client: a change over time, a level (use, cost, conditions, scores), or who they are.
REASON_TYPES: tuple[str, ...] = ("change", "level", "demographic")
_SERVICE_SETS = {
    "all": SERVICE_LINES,
    "episodes": tuple(s for s in SERVICE_LINES if s in EPISODE_SERVICES),
    "social": tuple(s for s in SERVICE_LINES if s in SOCIAL_SERVICES),
    "health": tuple(s for s in SERVICE_LINES if s in HEALTH_SERVICES),
}


class SpecError(ConfigError):
    """A feature spec, diagnosis-group or Charlson file that cannot be used."""


# The shapes of the spec file's sections, checked by the config loader (types, unknown keys,
# ranges); the rules that relate keys to each other and to the contract are checked in parse_spec.
_DAYS = {"gt": 0}


@dataclass(frozen=True)
class _EventsEntry:
    agg: str
    services: str | tuple[str, ...] = "all"
    windows: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _TotalsSection:
    aggs: tuple[str, ...] | None = field(default=(), metadata={"choices": TOTAL_AGGS})
    windows: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _MultiSectorSection:
    windows: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _DiagnosesSection:
    groups: str | tuple[str, ...] | None = ()
    lookback_days: int | None = field(default=None, metadata=_DAYS)
    chronic_count: str | tuple[str, ...] | None = ()
    charlson: str | None = None
    groups_file: str | None = None


@dataclass(frozen=True)
class _MeasurementEntry:
    lookback_days: int = field(default=730, metadata=_DAYS)
    change: bool = False
    days_since: bool = False


@dataclass(frozen=True)
class _AssessmentsSection:
    scales: tuple[str, ...] | None = None
    lookback_days: int = field(default=730, metadata=_DAYS)
    change_days: int = field(default=365, metadata=_DAYS)
    step: bool = False


@dataclass(frozen=True)
class _UseChangeSection:
    groups: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict, metadata={"non_empty": True})
    aggs: tuple[str, ...] = field(default=("count", "cost"), metadata={"choices": TOTAL_AGGS, "non_empty": True})
    windows: tuple[int, ...] = (90, 180)
    lag_days: int = field(default=365, metadata=_DAYS)


@dataclass(frozen=True)
class _FirstUseEntry:
    service: str = field(metadata={"choices": SERVICE_LINES})
    days: int = field(metadata=_DAYS)
    none_before_days: int = field(metadata=_DAYS)


@dataclass(frozen=True)
class _NewDiagnosesSection:
    days: int = field(default=180, metadata=_DAYS)
    none_before_days: int = field(default=730, metadata=_DAYS)
    groups: str | tuple[str, ...] | None = "all"


@dataclass(frozen=True)
class _ChangesSection:
    use: _UseChangeSection | None = None
    first_use: tuple[_FirstUseEntry, ...] | None = ()
    new_diagnoses: _NewDiagnosesSection | None = None


@dataclass(frozen=True)
class _ContinuitySection:
    services: str | tuple[str, ...] = ("primary_care_visit",)
    window_days: int = field(default=730, metadata=_DAYS)
    min_contacts: int = field(default=2, metadata={"ge": 1})
    by: tuple[str, ...] | None = field(default=None, metadata={"choices": CONTINUITY_BY})


@dataclass(frozen=True)
class _SpecFile:
    version: Any = 1
    windows: tuple[int, ...] | None = (90, 180, 365, 730)
    events: tuple[_EventsEntry, ...] | None = ()
    days_since_last: Any = None
    totals: _TotalsSection | None = None
    multi_sector: _MultiSectorSection | None = None
    diagnoses: _DiagnosesSection | None = None
    measurements: Mapping[str, _MeasurementEntry | None] | None = None
    assessments: _AssessmentsSection | None = None
    continuity: _ContinuitySection | None = None
    demographics: tuple[str, ...] | None = DEMOGRAPHICS
    unit_costs: str | None = None
    changes: _ChangesSection | None = None


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
    step: bool = False  # rai_<scale>_step: latest minus the previous assessment day


@dataclass(frozen=True)
class UseChange:
    """Use of a group of service lines in the last ``w`` days minus the same span ``lag_days`` earlier."""

    name: str
    services: tuple[str, ...]
    aggs: tuple[str, ...]
    windows: tuple[int, ...]
    lag_days: int


@dataclass(frozen=True)
class FirstUse:
    """A service used in the last ``days`` days with none in the ``none_before_days`` before that."""

    service: str
    days: int
    none_before_days: int


@dataclass(frozen=True)
class NewDiagnoses:
    """Diagnosis groups recorded in the last ``days`` days with none in the ``none_before_days`` before that."""

    groups: tuple["DiagnosisGroup", ...]
    days: int
    none_before_days: int


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
    services: tuple[str, ...] = ()  # a change feature's service lines
    agg: str | None = None  # a use change's aggregation (count or cost)
    lag: int | None = None  # days between the recent span and the earlier span it is compared with
    history_days: int | None = None  # NaN unless born and resident since T - history_days (change features)

    def spans(self) -> tuple[tuple[int, int], ...]:
        """The (recent, earlier) event spans a change feature compares, each ``(from, to)`` in days before T.

        A span ``(a, b)`` covers [T - a days, T - b days); ``(w, 0)`` is the window of w days.
        """
        if self.kind == "use_change":
            return (self.window, 0), (self.lag + self.window, self.lag)
        if self.kind == "first_use":
            return (self.window, 0), (self.window + self.lag, self.window)
        return ()


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
    use_changes: tuple[UseChange, ...] = ()
    first_uses: tuple[FirstUse, ...] = ()
    new_diagnoses: NewDiagnoses | None = None

    def event_spans(self) -> tuple[tuple[int, int], ...]:
        """Every event span a change feature needs (see :meth:`FeatureColumn.spans`), sorted."""
        return tuple(sorted({sp for c in self.columns() for sp in c.spans()}))

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
        cols += self._change_columns()
        return cols

    def _change_columns(self) -> list[FeatureColumn]:
        """The change features, after every level feature (so adding them leaves the other columns in place)."""
        cols = []
        for u in self.use_changes:
            for agg in u.aggs:
                for w in u.windows:
                    cols.append(FeatureColumn(f"{u.name}_{agg}_change_{w}d", "use_change", "float", window=w,
                                              subject=u.name, services=u.services, agg=agg, lag=u.lag_days,
                                              history_days=u.lag_days + w))
        for f in self.first_uses:
            cols.append(FeatureColumn(f"first_{f.service}_{f.days}d", "first_use", "float", service=f.service,
                                      window=f.days, services=(f.service,), lag=f.none_before_days,
                                      history_days=f.days + f.none_before_days))
        if self.new_diagnoses is not None:
            n = self.new_diagnoses
            history = n.days + n.none_before_days
            for g in (g.name for g in n.groups):
                cols.append(FeatureColumn(f"new_dx_{g}_{n.days}d", "new_dx", "float", window=n.days, subject=g,
                                          lag=n.none_before_days, history_days=history))
            cols.append(FeatureColumn(f"new_dx_count_{n.days}d", "new_dx_count", "float", window=n.days,
                                      lag=n.none_before_days, history_days=history))
        if self.assessments is not None and self.assessments.step:
            for sc in self.assessments.scales:
                cols.append(FeatureColumn(f"rai_{sc}_step", "rai_step", "float", subject=sc))
        return cols

    def column_names(self) -> list[str]:
        """Names of :meth:`columns`, with ``client_id`` first."""
        return ["client_id", *(c.name for c in self.columns())]


def reason_type(kind: str) -> str:
    """``"change"``, ``"level"`` or ``"demographic"``: what a feature of this column kind tells about a client.

    Change features describe a trajectory a case manager can act on (use
    against a year earlier, a first emergency visit, a new home-care start, a
    new diagnosis, a change in an RAI scale or a measurement); demographic ones
    who the client is (age, sex, language, municipality, unit); every other
    feature a level (use, cost, conditions, latest scores).
    """
    if kind in DEMOGRAPHICS:
        return "demographic"
    return "change" if kind in CHANGE_KINDS else "level"


def _fail(source: str, where: str, problem: str) -> SpecError:
    return SpecError(f"feature spec {source}: {where}: {problem}", source=source, where=where)


def _read(path: str | Path | None, packaged: str, kind: str) -> tuple[Any, str]:
    """Parse a spec-related YAML through the config loader, its errors as :class:`SpecError`."""
    try:
        return read_yaml(path, packaged)
    except ConfigFileNotFound as err:
        raise ConfigFileNotFound(f"{kind} not found: {path}", source=err.source) from err
    except ConfigError as err:
        raise SpecError(f"{kind} {err}", source=err.source) from err


def _build(cls: type, raw: Any, source: str, where: str, kind: str = "feature spec"):
    """:func:`features.config.loader.build` with the message prefixed by ``kind`` and raised as SpecError."""
    try:
        return build(cls, raw, f"{kind} {source}", where)
    except SpecError:
        raise
    except ConfigError as err:
        raise SpecError(str(err), source=source, where=err.where) from err


def _positive_ints(value: Any, source: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(source, where, f"expected a non-empty list of days, got {value!r}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise _fail(source, where, f"window {v!r} is not a positive whole number of days")
    if len(set(value)) != len(value):
        raise _fail(source, where, f"duplicate windows in {list(value)}")
    return tuple(sorted(value))


def _services(value: Any, source: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        if value not in _SERVICE_SETS:
            raise _fail(source, where, f"unknown service set {value!r}; use one of {sorted(_SERVICE_SETS)} or a list")
        return _SERVICE_SETS[value]
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(source, where, f"expected a service set name or a non-empty list, got {value!r}")
    unknown = [s for s in value if s not in SERVICE_LINES]
    if unknown:
        raise _fail(source, where, f"unknown service line(s) {unknown}; known: {list(SERVICE_LINES)}")
    return tuple(s for s in SERVICE_LINES if s in value)  # contract order keeps column order stable


@dataclass(frozen=True)
class _GroupEntry:
    icd10: tuple[tuple[str, str], ...] | None = ()
    icpc2: tuple[tuple[str, str], ...] | None = ()


@dataclass(frozen=True)
class _GroupsFile:
    groups: Mapping[str, _GroupEntry | None] | None = None


def load_diagnosis_groups(path: str | Path | None = None) -> dict[str, DiagnosisGroup]:
    """Read diagnosis groups (``features/config/diagnosis_groups.yaml`` by default).

    Raises
    ------
    SpecError
        If the file is not valid YAML or a group is malformed (a range that is
        not two category bounds, an unknown key); the message names the file,
        the key path and the value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = _read(path, "diagnosis_groups.yaml", "diagnosis groups")
    parsed = _build(_GroupsFile, raw, source, "", kind="diagnosis groups")
    out = {}
    for name, entry in (parsed.groups or {}).items():
        entry = entry or _GroupEntry()
        out[name] = DiagnosisGroup(name, tuple(entry.icd10 or ()), tuple(entry.icpc2 or ()))
    return out


_CODE = re.compile(r"^[A-Z]\d{2}[0-9A-Z]{0,2}$")


@dataclass(frozen=True)
class _CharlsonEntry:
    weight: int = field(metadata={"ge": 0})
    icd10: tuple[str, ...] | None = ()


@dataclass(frozen=True)
class _ImpliesRule:
    all_of: tuple[str, ...] = field(metadata={"non_empty": True})
    then: str


@dataclass(frozen=True)
class _CharlsonFile:
    categories: Mapping[str, _CharlsonEntry] = field(default_factory=dict, metadata={"non_empty": True})
    implies: tuple[_ImpliesRule, ...] | None = ()
    supersedes: Mapping[str, tuple[str, ...]] | None = None


def load_charlson(path: str | Path | None = None) -> Charlson:
    """Read a Charlson mapping (``features/config/charlson.yaml`` by default).

    Raises
    ------
    SpecError
        If an entry is not a code prefix or range, a weight is not a whole
        number, or a rule names an unknown category.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = _read(path, "charlson.yaml", "Charlson mapping")
    parsed = _build(_CharlsonFile, raw, source, "", kind="Charlson mapping")
    if not parsed.categories:
        raise SpecError(f"Charlson mapping {source}: no categories", source=source)
    cats = []
    for name, spec in parsed.categories.items():
        prefixes, ranges = [], []
        for entry in spec.icd10 or ():
            entry = entry.replace(".", "").upper()
            lo, _, hi = entry.partition("-")
            if not _CODE.match(lo) or (hi and (not _CODE.match(hi) or len(hi) != len(lo))):
                raise SpecError(f"Charlson mapping {source}: categories.{name}.icd10: bad ICD-10 entry {entry!r}",
                                source=source, where=f"categories.{name}.icd10")
            if hi:
                ranges.append((lo, hi))
            else:
                prefixes.append(lo)
        cats.append(CharlsonCategory(name, spec.weight, tuple(prefixes), tuple(ranges)))
    names = {c.name for c in cats}
    implies = []
    for i, rule in enumerate(parsed.implies or ()):
        unknown = sorted(set(rule.all_of) - names) + ([rule.then] if rule.then not in names else [])
        if unknown:
            raise SpecError(f"Charlson mapping {source}: implies[{i}]: unknown category {unknown}",
                            source=source, where=f"implies[{i}]")
        implies.append((rule.all_of, rule.then))
    supersedes = []
    for high, lows in (parsed.supersedes or {}).items():
        unknown = sorted(({high} | set(lows)) - names)
        if unknown:
            raise SpecError(f"Charlson mapping {source}: supersedes.{high}: unknown category {unknown}",
                            source=source, where=f"supersedes.{high}")
        supersedes.append((high, tuple(lows)))
    return Charlson(tuple(cats), tuple(implies), tuple(supersedes))


def _event_aggs(entries: tuple[_EventsEntry, ...], windows: tuple[int, ...],
                source: str) -> tuple[EventAggregation, ...]:
    out = []
    for i, item in enumerate(entries):
        where = f"events[{i}]"
        if item.agg not in EVENT_AGGS:
            raise _fail(source, where, f"unknown aggregation {item.agg!r}; known: {list(EVENT_AGGS)}")
        services = _services(item.services, source, f"{where}.services")
        if item.agg == "days":
            not_episodes = [s for s in services if s not in EPISODE_SERVICES]
            if not_episodes:
                raise _fail(source, where, f"days are counted for episode services only "
                                           f"({sorted(EPISODE_SERVICES)}), not {not_episodes}")
        ws = _positive_ints(item.windows, source, f"{where}.windows") if item.windows is not None else windows
        out.append(EventAggregation(item.agg, services, ws))
    return tuple(out)


def _names(value: str | tuple[str, ...] | None, everything: list[str]) -> list[str]:
    """``"all"`` -> every name; a list -> itself; None or empty -> none."""
    return list(everything) if value == "all" else list(value or ())


def parse_spec(raw: dict, source: str = "<dict>") -> FeatureSpec:
    """Validate a spec given as a mapping (the parsed YAML) and build a :class:`FeatureSpec`.

    The shape of each section (keys, types, positive day counts) is checked by
    :func:`features.config.loader.build`; the rules between keys and against
    the data contract (service lines, measurements, scales, groups) here.

    Raises
    ------
    SpecError
        Naming the file, the key and the problem, for anything unknown or malformed.
    """
    if not isinstance(raw, Mapping):
        raise _fail(source, "top level", "expected a mapping")
    # a falsy section (``assessments: false``, ``continuity: {}``) leaves those features out
    raw = {k: v for k, v in raw.items() if not (k in ("assessments", "continuity") and not v)}
    f = _build(_SpecFile, raw, source, "")
    if f.version != 1:
        raise _fail(source, "version", f"unsupported version {f.version!r} (this code reads version 1)")
    windows = _positive_ints(f.windows, source, "windows")
    events = _event_aggs(f.events or (), windows, source)
    names = [(a.agg, s, w) for a in events for s in a.services for w in a.windows]
    if len(set(names)) != len(names):
        raise _fail(source, "events", "the same aggregation, service and window is declared twice")
    dsl = f.days_since_last
    days_since = () if dsl in (None, [], False) else _services(dsl, source, "days_since_last")

    totals_raw = f.totals or _TotalsSection()
    totals = tuple(totals_raw.aggs or ())
    total_windows = (_positive_ints(totals_raw.windows, source, "totals.windows")
                     if totals_raw.windows is not None else (windows if totals else ()))
    ms_raw = f.multi_sector or _MultiSectorSection()
    ms_windows = (_positive_ints(ms_raw.windows, source, "multi_sector.windows")
                  if ms_raw.windows is not None else ())

    dx_raw = f.diagnoses or _DiagnosesSection()
    known_groups = load_diagnosis_groups(dx_raw.groups_file)
    group_names = _names(dx_raw.groups, list(known_groups))
    unknown = [n for n in group_names if n not in known_groups]
    if unknown:
        raise _fail(source, "diagnoses.groups", f"unknown group(s) {unknown}; known: {list(known_groups)}")
    chronic = _names(dx_raw.chronic_count, group_names)
    if set(chronic) - set(group_names):
        raise _fail(source, "diagnoses.chronic_count",
                    f"group(s) {sorted(set(chronic) - set(group_names))} are not among diagnoses.groups")
    charlson = None
    if dx_raw.charlson:
        charlson = load_charlson(None if dx_raw.charlson == "charlson.yaml" else dx_raw.charlson)

    meas = []
    for name, m in (f.measurements or {}).items():
        if name not in MEASUREMENTS:
            raise _fail(source, f"measurements.{name}", f"unknown measurement; known: {list(MEASUREMENTS)}")
        m = m or _MeasurementEntry()
        meas.append(MeasurementFeature(name, m.lookback_days, m.change, m.days_since))

    assessments = None
    if f.assessments is not None:
        a = f.assessments
        scales = a.scales or RAI_SCALES
        if set(scales) - set(RAI_SCALES):
            raise _fail(source, "assessments.scales",
                        f"unknown scale(s) {sorted(set(scales) - set(RAI_SCALES))}; known: {list(RAI_SCALES)}")
        if a.change_days > a.lookback_days:
            raise _fail(source, "assessments", "change_days cannot exceed lookback_days")
        assessments = AssessmentFeatures(tuple(scales), a.lookback_days, a.change_days, a.step)

    continuity = None
    if f.continuity is not None:
        c = f.continuity
        continuity = Continuity(_services(c.services, source, "continuity.services"), c.window_days,
                                c.min_contacts, tuple(c.by or CONTINUITY_BY))

    demo = tuple(f.demographics or ())
    if set(demo) - set(DEMOGRAPHICS):
        raise _fail(source, "demographics", f"unknown {sorted(set(demo) - set(DEMOGRAPHICS))}; known: {DEMOGRAPHICS}")

    use_changes, first_uses, new_dx = _changes(f.changes, source, known_groups)

    spec = FeatureSpec(
        use_changes=use_changes, first_uses=first_uses, new_diagnoses=new_dx,
        windows=windows, events=events, days_since_last=days_since, totals=totals, total_windows=total_windows,
        multi_sector_windows=ms_windows,
        diagnosis_groups=tuple(known_groups[n] for n in group_names), diagnosis_lookback_days=dx_raw.lookback_days,
        chronic_groups=tuple(chronic), charlson=charlson, measurements=tuple(meas), assessments=assessments,
        continuity=continuity, demographics=demo, unit_costs=f.unit_costs, source=source,
    )
    names = spec.column_names()
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(source, "columns", f"duplicate feature names {dupes}")
    return spec


def _changes(section: _ChangesSection | None, source: str, known_groups: Mapping[str, DiagnosisGroup]
             ) -> tuple[tuple[UseChange, ...], tuple[FirstUse, ...], NewDiagnoses | None]:
    """The ``changes`` section: use against a year earlier, first uses, new diagnoses."""
    if section is None:
        return (), (), None
    uses = []
    if section.use is not None:
        u = section.use
        windows = _positive_ints(u.windows, source, "changes.use.windows")
        if max(windows) > u.lag_days:
            raise _fail(source, "changes.use.windows", f"a window longer than lag_days ({u.lag_days}) would "
                                                       f"overlap the span it is compared with")
        for name, services in u.groups.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                raise _fail(source, f"changes.use.groups.{name}", "a group name is lower_snake_case")
            uses.append(UseChange(str(name), _services(services, source, f"changes.use.groups.{name}"),
                                  tuple(dict.fromkeys(u.aggs)), windows, u.lag_days))
    firsts = tuple(FirstUse(e.service, e.days, e.none_before_days) for e in section.first_use or ())
    new_dx = None
    if section.new_diagnoses is not None:
        n = section.new_diagnoses
        groups = _names(n.groups, list(known_groups))
        unknown = [g for g in groups if g not in known_groups]
        if unknown:
            raise _fail(source, "changes.new_diagnoses.groups",
                        f"unknown group(s) {unknown}; known: {list(known_groups)}")
        new_dx = NewDiagnoses(tuple(known_groups[g] for g in groups), n.days, n.none_before_days)
    return tuple(uses), firsts, new_dx


def load_spec(path: str | Path | None = None) -> FeatureSpec:
    """Load and validate a feature spec YAML (the packaged default when ``path`` is None).

    Raises
    ------
    SpecError
        If the file is not valid YAML (the message names the line) or breaks a rule of the spec.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = _read(path, "features.yaml", "feature spec")
    return parse_spec(raw, source)
