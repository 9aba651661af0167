"""Need-based rule segments: priority order, one segment per client, the rule that placed each, config checks."""
import numpy as np
import pandas as pd
import pytest

from features.config.loader import ConfigError
from segmentation.needs import NeedSegments, load_needs_config


def _clients() -> pd.DataFrame:
    base = {c: 0.0 for c in load_needs_config().columns()}
    rows = [
        {"age": 40},                                                       # healthy
        {"age": 80, "home_care_count_365d": 12, "chronic_conditions": 3},  # frailty before complex chronic
        {"age": 60, "chronic_conditions": 2, "inpatient_count_365d": 1},   # complex chronic
        {"age": 60, "chronic_conditions": 1},                              # stable chronic
        {"age": 25, "dx_mental_health": 1, "social_work_count_365d": 3},   # mental health before social need
        {"age": 3},                                                        # early childhood
        {"age": 50, "rai_chess_last": 4, "disability_services_count_365d": 5},  # end of life first of all
        {"age": 35, "emergency_count_365d": 2},                            # acute episode
        {"age": 80, "rai_adl_h_last": np.nan, "chronic_conditions": 1},    # missing RAI is no evidence: stable
    ]
    return pd.DataFrame([{**base, "rai_chess_last": np.nan, "rai_adl_h_last": np.nan, "rai_cps_last": np.nan,
                          **r} for r in rows])


def test_first_rule_in_priority_order_places_each_client_once():
    X = _clients()
    model = NeedSegments().fit(X)
    names = [model.config_.segments[c].name for c in model.labels_]
    assert names == ["healthy", "frailty", "complex_chronic", "stable_chronic", "mental_health_substance",
                     "maternity_early_childhood", "end_of_life", "acute_episode", "stable_chronic"]
    rules = model.rules(X)
    assert list(rules["segment"]) == names
    assert rules.loc[1, "conditions"] == "age >= 75; home_care_count_365d >= 1"
    assert rules.loc[6, "conditions"] == "rai_chess_last >= 4"
    assert rules.loc[0, "conditions"] == ""  # the catch-all holds without a condition
    assert model.k_ == 10 and model.segment_names("sv")[9] == "Friska"
    assert model.segment_names("en")[model.segment_codes_["frailty"]] == "Frailty"
    with pytest.raises(ValueError, match="no need-segment labels"):
        model.segment_names("de")


def test_packaged_rules_declare_proxies_and_three_languages():
    config = load_needs_config()
    names = [s.name for s in config.segments]
    assert names[-1] == "healthy" and len(names) == len(set(names)) == 10
    assert {s.name for s in config.segments if s.proxy} == {"end_of_life", "serious_disability", "social_need",
                                                            "maternity_early_childhood"}
    assert all(s.why for s in config.segments)


def test_a_county_file_is_checked(tmp_path):
    good = tmp_path / "needs.yaml"
    good.write_text("segments:\n"
                    "  - {name: old, labels: {fi: Vanhat, sv: Gamla, en: Old}, any: [{column: age, op: '>=', value: 65}]}\n"
                    "  - {name: rest, labels: {fi: Muut, sv: Övriga, en: Others}}\n")
    model = NeedSegments(good).fit(pd.DataFrame({"age": [70, 20, np.nan]}))
    assert model.labels_.tolist() == [0, 1, 1]
    bad_op = tmp_path / "op.yaml"
    bad_op.write_text(good.read_text().replace("'>='", "'=>'"))
    with pytest.raises(ConfigError, match="op"):
        load_needs_config(bad_op)
    no_catch_all = tmp_path / "last.yaml"
    no_catch_all.write_text(good.read_text().splitlines()[0] + "\n" + good.read_text().splitlines()[1] + "\n")
    with pytest.raises(ConfigError, match="must have no conditions"):
        load_needs_config(no_catch_all)
    no_sv = tmp_path / "sv.yaml"
    no_sv.write_text(good.read_text().replace("sv: Gamla, ", ""))
    with pytest.raises(ConfigError, match=r"no label in \['sv'\]"):
        load_needs_config(no_sv)
    with pytest.raises(ValueError, match="lacks columns used by the need-based rules"):
        NeedSegments(good).fit(pd.DataFrame({"sex": ["F"]}))
