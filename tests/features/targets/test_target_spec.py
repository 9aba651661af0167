"""Target declarations (features/targets/spec.py): the dataclasses, horizons and lookup."""
import pytest
import yaml

from features.targets import labels, spec
from features.targets.spec import Cohort, TargetError, get_target, load_targets


def test_labels_uses_the_declarations_of_spec():
    assert labels.load_targets is spec.load_targets and labels.TargetError is TargetError
    assert issubclass(TargetError, ValueError)


def test_cohort_checks_itself():
    with pytest.raises(ValueError, match="min_age 70 > max_age 60"):
        Cohort(min_age=70, max_age=60)
    with pytest.raises(ValueError, match="only meaningful with services_any"):
        Cohort(lookback_days=30)
    assert Cohort(services_any=("emergency",), lookback_days=30).lookback_days == 30


def test_horizons_file_default_and_per_target(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"horizon_days": 180, "targets": {
        "a": {"outcome": {"kind": "cost_quantile", "quantile": 0.5}},
        "b": {"horizon_days": 30, "cohort": {"services_any": ["emergency"], "lookback_days": 90},
              "outcome": {"kind": "count", "services": ["emergency"], "min": 2}}}}))
    targets = load_targets(path)
    assert [t.horizon_days for t in targets.values()] == [180, 30]
    assert targets["b"].cohort == Cohort(services_any=("emergency",), lookback_days=90)
    assert targets["b"].outcome.min == 2 and targets["a"].cohort == Cohort()


def test_get_target():
    assert get_target("high_use").outcome.quantile == 0.9
    assert get_target("high_use", load_targets()) == load_targets()["high_use"]
    with pytest.raises(TargetError, match=r"unknown target 'nope'; declared: \['diabetes_high_use'"):
        get_target("nope")
