"""Shared fixtures of the reliability tests: a tiny synthetic county (period declared in its manifest)."""
import shutil

import pytest

from features.synth import SynthConfig, generate_county


@pytest.fixture(scope="session")
def tiny_county(tmp_path_factory):
    """A 60-resident synthetic county, 2019-01-01 .. 2025-12-31; copy it before changing it."""
    path = tmp_path_factory.mktemp("tiny") / "county"
    generate_county(path, SynthConfig(clients=60, seed=11, truth_reps=1, workers=1))
    return path


@pytest.fixture
def county_copy(tiny_county, tmp_path):
    """A private copy of the tiny county (tables and manifest only)."""
    dst = tmp_path / "county"
    dst.mkdir()
    for name in ("clients", "events", "diagnoses", "measurements", "assessments"):
        shutil.copy(tiny_county / f"{name}.parquet", dst / f"{name}.parquet")
    shutil.copy(tiny_county / "manifest.json", dst / "manifest.json")
    return dst
