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
_OUTCOME_KEYS = {
    "cost_quantile": {"quantile"}, "count": {"services", "min"}, "service_start": {"service"},
    "assessment_level": {"scale", "min"}, "assessment_rise": {"scale", "min_rise"}, "any_of": {"of"},
}
#: Horizon of a target that declares none, and of a file that declares no default.
DEFAULT_HORIZON_DAYS = 365


class TargetError(ConfigError):
    """A targets file that cannot be used, or an unknown target name."""


@dataclass(frozen=True)
class Cohort:
    """Who is eligible at T; every key is optional (an empty cohort is the whole population)."""

    min_age: int | None = field(default=None, metadata={"ge": 0})
    max_age: int | None = field(default=None, metadata={"ge": 0})
    diagnosis_groups: tuple[str, ...] = ()
    services_any: tuple[str, ...] = field(default=(), metadata={"choices": SERVICE_LINES})
    lookback_days: int | None = field(default=None, metadata={"ge": 1})
    exclude_ongoing: str | None = field(default=None, metadata={"choices": tuple(sorted(EPISODE_SERVICES))})

    def __post_init__(self):
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} > max_age {self.max_age}")
        if self.lookback_days is not None and not self.services_any:
            raise ValueError("lookback_days is only meaningful with services_any")


@dataclass(frozen=True)
class Outcome:
    """What makes a cohort member positive over the horizon."""

    kind: str
    quantile: float | None = None
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
    if keys != _OUTCOME_KEYS[kind]:
        raise _err(source, where, f"outcome {kind} takes exactly {sorted(_OUTCOME_KEYS[kind])}, got {sorted(keys)}")
    if kind == "cost_quantile":
        q = raw["quantile"]
        if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q < 1:
            raise _err(source, f"{where}.quantile", f"expected a number strictly between 0 and 1, got {q!r}")
        return Outcome(kind, quantile=float(q))
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
    try:
        raw, source = read_yaml(path, "targets.yaml")
    except FileNotFoundError:
        raise
    except ConfigError as err:
        raise TargetError(f"targets {err}", source=err.source) from err
    parsed = _build(_TargetsFile, raw, source, "")
    groups = set(load_diagnosis_groups())
    out = {}
    for name, entry in (parsed.targets or {}).items():
        where = f"target {name}"
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
