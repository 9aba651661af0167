"""Constants of the canonical data contract (see DESIGN.md, "Data contract").

Everything here is vocabulary shared by schemas, the synthetic county, the
adapters and the feature pipeline. Counties that differ override values
through config files, not by editing this module.
"""
from __future__ import annotations

TABLES: tuple[str, ...] = ("clients", "events", "diagnoses", "measurements", "assessments")

#: Service lines, social and health together (one integrated view).
SERVICE_LINES: tuple[str, ...] = (
    "primary_care_visit",
    "remote_contact",
    "emergency",
    "specialist_outpatient",
    "inpatient",
    "home_care",
    "housing_24h",
    "mental_health_substance",
    "social_work",
    "disability_services",
    "rehabilitation",
    "oral_health",
    "child_family",
)

#: Service lines run by the social-care sector; the rest are health care.
SOCIAL_SERVICES: frozenset[str] = frozenset(
    {"home_care", "housing_24h", "social_work", "disability_services", "child_family"}
)
HEALTH_SERVICES: frozenset[str] = frozenset(SERVICE_LINES) - SOCIAL_SERVICES

#: Service lines recorded as episodes with a start and an end (days of care).
EPISODE_SERVICES: frozenset[str] = frozenset({"inpatient", "housing_24h"})

SEXES: tuple[str, ...] = ("F", "M", "X")
LANGUAGES: tuple[str, ...] = ("fi", "sv", "other")
CODE_SYSTEMS: tuple[str, ...] = ("ICD-10", "ICPC-2")

#: Measurement names, their units and the physiologically plausible range.
MEASUREMENTS: dict[str, tuple[str, float, float]] = {
    "hba1c": ("mmol/mol", 15.0, 200.0),
    "bmi": ("kg/m2", 10.0, 90.0),
    "sbp": ("mmHg", 50.0, 300.0),
    "dbp": ("mmHg", 20.0, 200.0),
    "ldl": ("mmol/l", 0.1, 20.0),
    "egfr": ("ml/min/1.73m2", 1.0, 200.0),
}

#: RAI instruments and the range of each scale (DOMAIN.md, "Functional capacity").
RAI_INSTRUMENTS: tuple[str, ...] = ("rai_hc", "rai_ltc", "rai_sa")
RAI_SCALES: dict[str, tuple[int, int]] = {
    "adl_h": (0, 6),
    "cps": (0, 6),
    "maple": (1, 5),
    "iadl": (0, 9),
    "chess": (0, 5),
    "drs": (0, 14),
}
