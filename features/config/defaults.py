"""Defaults that several parts of sote share, each defined once here.

The synthetic county's data period, size and seed, the three index dates of the main job
(learn at one date, judge at the next, score at the third) and the built-in
targets (the targets declared in the packaged ``targets.yaml``) and the default target. Training,
the demo, the CLI and the synthetic county refer to these names instead of
repeating the values.
"""
from __future__ import annotations

from features.config.loader import read_yaml

#: First and last day of the synthetic county's data.
DATA_START = "2019-01-01"
DATA_END = "2025-12-31"
#: Residents of the default synthetic county (Keski-Uusimaa-sized) and its seed.
COUNTY_CLIENTS = 199_000
COUNTY_SEED = 2024
#: Index date a model learns from.
TRAIN_AS_OF = "2023-01-01"
#: Later index date the model is judged (and chosen) on; also the date segments are drawn at in the demo.
VALID_AS_OF = "2024-01-01"
#: Index date the risk lists are scored at.
SCORE_AS_OF = "2025-01-01"


def _builtin_targets() -> tuple[str, ...]:
    raw, source = read_yaml(None, "targets.yaml")
    targets = raw.get("targets") if isinstance(raw, dict) else None
    if not isinstance(targets, dict) or not targets:
        raise RuntimeError(f"{source}: declares no targets")  # a broken installation, not a user error
    return tuple(targets)


#: Names of the targets declared in the packaged ``features/config/targets.yaml``, in file order.
BUILTIN_TARGETS: tuple[str, ...] = _builtin_targets()
#: The target trained and scored when none is named.
DEFAULT_TARGET = "high_use"
if DEFAULT_TARGET not in BUILTIN_TARGETS:  # a broken installation, not a user error
    raise RuntimeError(f"the default target {DEFAULT_TARGET!r} is not declared in the packaged targets.yaml")
