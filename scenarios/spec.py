"""The scenarios file: declared scenarios a county edits without code (``scenarios/config/scenarios.yaml``).

Read through the configuration loader (:mod:`features.config.loader`): an
unknown key, a value out of range, an unknown service line or model is refused
with the file, the key path and the value. Segment names are checked against
the need-based segments when a run starts (:func:`check_segments`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from features.config.loader import build, config_error, read_yaml
from features.contract.tables import SERVICE_LINES

LANGS = ("fi", "sv", "en")


@dataclass(frozen=True)
class HealthyAgeing:
    """Age-specific use shifts to older ages: the X-year-olds of year y use as the (X - shift)-year-olds did."""

    years_per_decade: float = field(metadata={"ge": 0, "le": 10})


@dataclass(frozen=True)
class Intervention:
    """Reach ``reach`` of the top-risk clients of ``segments``, lowering their use by ``reduction`` per line.

    Top risk is the top ``top_share`` of each segment's residents by the cost of the
    year before the base year (a documented proxy for a risk list). Inputs, not claims.
    """

    segments: tuple[str, ...] = field(metadata={"non_empty": True})
    reach: float = field(metadata={"ge": 0, "le": 1})
    reduction: Mapping[str, float] = field(metadata={"non_empty": True})
    top_share: float = field(default=0.2, metadata={"gt": 0, "le": 1})
    from_year: int | None = None

    def __post_init__(self):
        unknown = sorted(set(self.reduction) - set(SERVICE_LINES))
        if unknown:
            raise ValueError(f"reduction: unknown service line(s) {unknown}; known: {list(SERVICE_LINES)}")
        bad = {k: v for k, v in self.reduction.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"reduction: a share must be between 0 and 1, got {bad}")


@dataclass(frozen=True)
class Scenario:
    """One named scenario: a model (``demographic`` or ``dynamics``) and any combination of modifiers."""

    labels: Mapping[str, str]
    model: str = field(default="dynamics", metadata={"choices": ("demographic", "dynamics")})
    healthy_ageing: HealthyAgeing | None = None
    proximity_to_death: bool = False
    intervention: Intervention | None = None
    description: str = ""

    def __post_init__(self):
        missing = [lang for lang in LANGS if not str(self.labels.get(lang, "")).strip()]
        if missing:
            raise ValueError(f"labels: no label in {missing}")


@dataclass(frozen=True)
class ScenariosConfig:
    """The whole file: age bands, cell rules, bootstrap, the states of the dynamics and the scenarios.

    ``ongoing_states``: services that split each segment into its clients in the service on
    the date (an episode running; for home care a visit in the 30 days before) and the others,
    so a client in 24-hour housing or in regular home care is a state of its own in the
    transition matrices (the first listed wins; ``[]``: the need-based segments alone).
    """

    scenarios: Mapping[str, Scenario] = field(metadata={"non_empty": True})
    age_bands: tuple[int, ...] = (0, 7, 18, 30, 45, 65, 75, 85)
    min_cell_residents: int = field(default=20, metadata={"ge": 1})
    bootstrap: int = field(default=200, metadata={"ge": 0})
    interval: float = field(default=0.8, metadata={"gt": 0, "lt": 1})
    seed: int = 0
    reference: str | None = None
    ongoing_states: tuple[str, ...] = field(default=("housing_24h", "home_care"),
                                            metadata={"choices": ("housing_24h", "inpatient", "home_care")})

    def __post_init__(self):
        b = self.age_bands
        if not b or b[0] != 0 or any(x >= y for x, y in zip(b, b[1:])):
            raise ValueError(f"age_bands: lower bounds rising from 0, got {list(b)}")
        if self.reference is not None and self.reference not in self.scenarios:
            raise ValueError(f"reference: {self.reference!r} is not a scenario ({sorted(self.scenarios)})")


def packaged_scenarios_path() -> Path:
    """The shipped scenarios file (``scenarios/config/scenarios.yaml``), the one to copy and edit."""
    return Path(__file__).resolve().parent / "config" / "scenarios.yaml"


def load_scenarios(path: str | Path | None = None) -> ScenariosConfig:
    """Read and check a scenarios file (the packaged ``scenarios/config/scenarios.yaml`` when None).

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file, the key path and the bad value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = read_yaml(path, "scenarios.yaml", package="scenarios.config")
    config = build(ScenariosConfig, raw, f"scenarios config {source}")
    object.__setattr__(config, "_source", source)
    return config


def check_segments(config: ScenariosConfig, segments, source: str | None = None) -> None:
    """Refuse an intervention naming a segment the need-based segmentation does not have."""
    source = source or getattr(config, "_source", "scenarios config")
    for name, scenario in config.scenarios.items():
        if scenario.intervention is None:
            continue
        unknown = [s for s in scenario.intervention.segments if s not in segments]
        if unknown:
            raise config_error(f"scenarios config {source}", f"scenarios.{name}.intervention.segments",
                               f"unknown segment(s) {unknown}; the need-based segments are {list(segments)}")
