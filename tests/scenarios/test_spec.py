"""The scenarios file: the packaged one loads; a wrong key, value, service line or segment is named."""
import pytest

from features.config.loader import ConfigError
from scenarios.spec import check_segments, load_scenarios


def test_packaged_file_declares_the_issue_scenarios():
    cfg = load_scenarios()
    assert {"demographic", "dynamics", "healthy_ageing", "proximity_to_death", "early_support", "combined"} \
        <= set(cfg.scenarios)
    combined = cfg.scenarios["combined"]
    assert combined.healthy_ageing and combined.proximity_to_death and combined.intervention


@pytest.mark.parametrize("text, where", [
    ("scenarios: {a: {labels: {fi: a, sv: a, en: a}, modle: dynamics}}", "unknown key(s) ['modle']"),
    ("scenarios: {a: {labels: {fi: a, sv: a, en: a}, model: trend}}", "scenarios.a.model"),
    ("scenarios: {a: {labels: {fi: a, sv: a, en: a}, intervention: {segments: [frailty], reach: 0.5, "
     "reduction: {home_kare: 0.1}}}}", "home_kare"),
    ("scenarios: {a: {labels: {fi: a, sv: a, en: a}, intervention: {segments: [frailty], reach: 1.5, "
     "reduction: {home_care: 0.1}}}}", "scenarios.a.intervention.reach"),
    ("scenarios: {a: {labels: {fi: a, en: a}}}", "no label in ['sv']"),
    ("age_bands: [5, 10]\nscenarios: {a: {labels: {fi: a, sv: a, en: a}}}", "age_bands"),
])
def test_bad_file_is_named(tmp_path, text, where):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_scenarios(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_unknown_segment_is_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("scenarios: {a: {labels: {fi: a, sv: a, en: a}, intervention: {segments: [fraility], "
                    "reach: 0.5, reduction: {home_care: 0.1}}}}")
    with pytest.raises(ConfigError, match=r"scenarios.a.intervention.segments: unknown segment\(s\) \['fraility'\]"):
        check_segments(load_scenarios(path), ("frailty", "healthy"))


def test_the_packaged_path_is_the_shipped_file():
    from scenarios.spec import packaged_scenarios_path

    assert load_scenarios(packaged_scenarios_path()).scenarios == load_scenarios().scenarios
