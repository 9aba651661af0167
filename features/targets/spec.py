"""Prediction targets declared in config: cohorts, outcomes and horizons, validated on load.

``features/config/targets.yaml`` declares each target as a cohort (known
before T) and an outcome over the horizon [T, T + horizon); the rules shared by
every target are in its header and in :mod:`features.targets.labels`, which
builds the labels. A county adds a target by editing the YAML;
:func:`load_targets` validates it through :mod:`features.config.loader` and
names the file, the target and the key of any problem.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.config.loader import ConfigError, build, read_yaml
from features.contract.tables import EPISODE_SERVICES, RAI_SCALES, SERVICE_LINES
from features.histories.spec import load_diagnosis_groups

OUTCOME_KINDS = ("cost_quantile", "count", "service_start", "assessment_level", "assessment_rise", "any_of")
#: Populations a ``cost_quantile`` threshold can be taken over: the target's cohort, or everyone in the population at T.
QUANTILE_POPULATIONS = ("cohort", "all")
#: Keyword of ``cohort.exclude_ongoing`` that stands for the file's ``intensive_services`` list.
INTENSIVE_KEYWORD = "intensive_services"
_EPISODES = tuple(sorted(EPISODE_SERVICES))
_OPTIONAL_OUTCOME_KEYS = {"cost_quantile": {"population"}}
_OUTCOME_KEYS = {
    "cost_quantile": {"quantile"}, "count": {"services", "min"}, "service_start": {"service"},
    "assessment_level": {"scale", "min"}, "assessment_rise": {"scale", "min_rise"}, "any_of": {"of"},
}
#: Horizon of a target that declares none, and of a file that declares no default.
DEFAULT_HORIZON_DAYS = 365
#: Look-back window of ``max_prior_cost_quantile`` when ``prior_cost_days`` is not declared (last year).
DEFAULT_PRIOR_COST_DAYS = 365


class TargetError(ConfigError):
    """A targets file that cannot be used, or an unknown target name."""


@dataclass(frozen=True)
class Cohort:
    """Who is eligible at T; every key is optional (an empty cohort is the whole population).

    Attributes
    ----------
    min_age, max_age
        Completed years at T.
    diagnosis_groups
        Any diagnosis of these groups recorded before T.
    services_any, lookback_days
        Any event of these lines in [T - lookback_days, T) (all history without a lookback).
    exclude_ongoing
        Episode services (one name or several; ``intensive_services`` in a
        targets file stands for its list): no such episode running at T
        (started before T, ended on T - 1 or later, or not ended).
    max_prior_cost_quantile, prior_cost_days
        The client's cost in [T - prior_cost_days, T) (the ``cost_total`` feature
        rule; 365 days unless given) is at or below this quantile of the same cost
        over the whole population at T.
    """

    min_age: int | None = field(default=None, metadata={"ge": 0})
    max_age: int | None = field(default=None, metadata={"ge": 0})
    diagnosis_groups: tuple[str, ...] = ()
    services_any: tuple[str, ...] = field(default=(), metadata={"choices": SERVICE_LINES})
    lookback_days: int | None = field(default=None, metadata={"ge": 1})
    exclude_ongoing: str | tuple[str, ...] = ()  # one or more episode services; normalised to a tuple
    max_prior_cost_quantile: float | None = field(default=None, metadata={"gt": 0, "lt": 1})
    prior_cost_days: int | None = field(default=None, metadata={"ge": 1})

    def __post_init__(self):
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} > max_age {self.max_age}")
        if self.lookback_days is not None and not self.services_any:
            raise ValueError("lookback_days is only meaningful with services_any")
        if self.prior_cost_days is not None and self.max_prior_cost_quantile is None:
            raise ValueError("prior_cost_days is only meaningful with max_prior_cost_quantile")
        ongoing = (self.exclude_ongoing,) if isinstance(self.exclude_ongoing, str) else tuple(self.exclude_ongoing or ())
        unknown = [s for s in ongoing if s not in EPISODE_SERVICES]
        if unknown:
            raise ValueError(f"exclude_ongoing: {unknown} are not episode services {list(_EPISODES)} "
                             f"(or the keyword {INTENSIVE_KEYWORD!r})")
        object.__setattr__(self, "exclude_ongoing", tuple(dict.fromkeys(ongoing)))

    @property
    def prior_window_days(self) -> int:
        """Days of the look-back window of ``max_prior_cost_quantile`` ([T - days, T); 365 unless declared)."""
        return self.prior_cost_days or DEFAULT_PRIOR_COST_DAYS


@dataclass(frozen=True)
class Outcome:
    """What makes a cohort member positive over the horizon.

    ``population`` (``cost_quantile`` only): ``"cohort"`` takes the threshold
    over the cohort's horizon costs, ``"all"`` over the whole population at T.
    """

    kind: str
    quantile: float | None = None
    population: str = "cohort"
    services: tuple[str, ...] = ()
    min: float | None = None
    service: str | None = None
    scale: str | None = None
    min_rise: float | None = None
    of: tuple["Outcome", ...] = ()


@dataclass(frozen=True)
class Target:
    """A named target: description, cohort, outcome and horizon in days."""

    name: str
    description: str
    cohort: Cohort
    outcome: Outcome
    horizon_days: int


@dataclass(frozen=True)
class _TargetEntry:
    outcome: Any
    description: str = ""
    cohort: Cohort | None = None
    horizon_days: int | None = field(default=None, metadata={"ge": 1})


@dataclass(frozen=True)
class _TargetsFile:
    targets: Mapping[str, Any] | None = None
    horizon_days: int = field(default=DEFAULT_HORIZON_DAYS, metadata={"ge": 1})
    intensive_services: tuple[str, ...] | None = field(default=None, metadata={"choices": _EPISODES,
                                                                                "non_empty": True})


def _err(source: str, where: str, problem: str) -> TargetError:
    return TargetError(f"targets {source}: {where}: {problem}", source=source, where=where)


def _build(cls: type, raw: Any, source: str, where: str):
    try:
        return build(cls, raw, f"targets {source}", where)
    except ConfigError as err:
        raise TargetError(str(err), source=source, where=err.where) from err


def _whole(value, source, where, minimum=0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _err(source, where, f"expected a whole number >= {minimum}, got {value!r}")
    return value


def _service_list(value, source, where) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _err(source, where, f"expected a non-empty list of service lines, got {value!r}")
    unknown = [s for s in value if s not in SERVICE_LINES]
    if unknown:
        raise _err(source, where, f"unknown service line(s) {unknown}")
    return tuple(value)


def _outcome(raw, source: str, where: str) -> Outcome:
    if not isinstance(raw, dict) or raw.get("kind") not in OUTCOME_KINDS:
        raise _err(source, where, f"outcome needs a kind among {list(OUTCOME_KINDS)}, got {raw!r}")
    kind = raw["kind"]
    keys = set(raw) - {"kind"}
    optional = _OPTIONAL_OUTCOME_KEYS.get(kind, set())
    if not _OUTCOME_KEYS[kind] <= keys <= _OUTCOME_KEYS[kind] | optional:
        also = f" (optionally {sorted(optional)})" if optional else ""
        raise _err(source, where, f"outcome {kind} takes exactly {sorted(_OUTCOME_KEYS[kind])}{also}, "
                                  f"got {sorted(keys)}")
    if kind == "cost_quantile":
        q = raw["quantile"]
        if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q < 1:
            raise _err(source, f"{where}.quantile", f"expected a number strictly between 0 and 1, got {q!r}")
        population = raw.get("population", "cohort")
        if population not in QUANTILE_POPULATIONS:
            raise _err(source, f"{where}.population", f"expected one of {list(QUANTILE_POPULATIONS)}, "
                                                      f"got {population!r}")
        return Outcome(kind, quantile=float(q), population=population)
    if kind == "count":
        return Outcome(kind, services=_service_list(raw["services"], source, f"{where}.services"),
                       min=_whole(raw["min"], source, f"{where}.min", 1))
    if kind == "service_start":
        if raw["service"] not in EPISODE_SERVICES:
            raise _err(source, f"{where}.service", f"expected an episode service {sorted(EPISODE_SERVICES)}, "
                                                  f"got {raw['service']!r}")
        return Outcome(kind, service=raw["service"])
    if kind in ("assessment_level", "assessment_rise"):
        if raw["scale"] not in RAI_SCALES:
            raise _err(source, f"{where}.scale", f"unknown RAI scale {raw['scale']!r}; known: {list(RAI_SCALES)}")
        key = "min" if kind == "assessment_level" else "min_rise"
        v = raw[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or (kind == "assessment_rise" and v <= 0):
            raise _err(source, f"{where}.{key}", f"expected a number{' > 0' if key == 'min_rise' else ''}, got {v!r}")
        return Outcome(kind, scale=raw["scale"], **{key: float(v)})
    subs = raw["of"]
    if not isinstance(subs, list) or not subs:
        raise _err(source, f"{where}.of", "any_of needs a non-empty list of outcomes")
    return Outcome(kind, of=tuple(_outcome(s, source, f"{where}.of[{i}]") for i, s in enumerate(subs)))


def _read_targets_file(path: str | Path | None):
    """The targets file (packaged when None) as read and checked, and its source name."""
    try:
        raw, source = read_yaml(path, "targets.yaml")
    except FileNotFoundError:
        raise
    except ConfigError as err:
        raise TargetError(f"targets {err}", source=err.source) from err
    return _build(_TargetsFile, raw, source, ""), source


def load_targets(path: str | Path | None = None) -> dict[str, Target]:
    """Read and validate a targets YAML (``features/config/targets.yaml`` by default).

    Returns
    -------
    dict
        Target name -> :class:`Target`, in file order.

    Raises
    ------
    TargetError
        Naming the file, the target and the key of anything unknown or malformed
        (for a YAML syntax error, the line).
    FileNotFoundError
        If ``path`` does not exist.
    """
    parsed, source = _read_targets_file(path)
    intensive = parsed.intensive_services or (intensive_services() if path is not None else None)
    if not intensive:  # a broken installation, not a user error
        raise _err(source, "intensive_services", "the packaged targets file must declare intensive_services")
    groups = set(load_diagnosis_groups())
    out = {}
    for name, entry in (parsed.targets or {}).items():
        where = f"target {name}"
        entry = _expand_intensive(entry, intensive)
        t = _build(_TargetEntry, entry, source, where)
        cohort = t.cohort or Cohort()
        unknown = [g for g in cohort.diagnosis_groups if g not in groups]
        if unknown:
            raise _err(source, f"{where}.cohort.diagnosis_groups", f"unknown group(s) {unknown}; known: {sorted(groups)}")
        out[name] = Target(name, t.description, cohort, _outcome(t.outcome, source, f"{where}.outcome"),
                           t.horizon_days or parsed.horizon_days)
    if not out:
        raise _err(source, "targets", "no targets declared")
    return out


def _expand_intensive(entry: Any, intensive: tuple[str, ...]) -> Any:
    """``cohort.exclude_ongoing: intensive_services`` (alone or in a list) replaced by the file's list."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("cohort"), Mapping):
        return entry
    value = entry["cohort"].get("exclude_ongoing")
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or INTENSIVE_KEYWORD not in names:
        return entry
    expanded = [s for n in names for s in (intensive if n == INTENSIVE_KEYWORD else (n,))]
    return {**entry, "cohort": {**entry["cohort"], "exclude_ongoing": expanded}}


def intensive_services(path: str | Path | None = None) -> tuple[str, ...]:
    """The intensive services of a targets file (``intensive_services:``; the packaged file's when None).

    One list, used by the cohorts that exclude clients in an ongoing intensive
    episode (``exclude_ongoing: intensive_services``) and by risk lists to flag
    clients already receiving intensive care. A file that declares none uses
    the packaged file's list.

    Returns
    -------
    tuple of str
        Episode service lines (``housing_24h``, ``inpatient``, ...).

    Raises
    ------
    TargetError
        If the list names something other than an episode service, or the file cannot be read.
    """
    parsed, source = _read_targets_file(path)
    if parsed.intensive_services:
        return parsed.intensive_services
    if path is None:  # a broken installation, not a user error
        raise _err(source, "intensive_services", "the packaged targets file must declare intensive_services")
    return intensive_services(None)


def get_target(name: str, targets: str | Path | Mapping[str, Target] | None = None) -> Target:
    """The declared target ``name`` (from a targets file, a loaded mapping, or the packaged file).

    Raises
    ------
    TargetError
        If no target of that name is declared.
    """
    declared = targets if isinstance(targets, Mapping) else load_targets(targets)
    if name not in declared:
        raise TargetError(f"unknown target {name!r}; declared: {sorted(declared)}")
    return declared[name]
