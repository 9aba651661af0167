"""The configuration loader: every rule, and the file, key path and value in every message."""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from features.config.loader import ConfigError, ConfigFileNotFound, build, load_config, read_yaml


@dataclass(frozen=True)
class Window:
    days: int = field(metadata={"gt": 0})
    label: str = ""


@dataclass(frozen=True)
class Job:
    name: str
    top: int = field(default=50, metadata={"ge": 1, "le": 1000})
    share: float = field(default=0.2, metadata={"gt": 0, "lt": 1})
    strict: bool = True
    dates: tuple[str, ...] = ("2024-01-01",)
    unit: str | None = None
    lang: Literal["fi", "sv", "en"] = "fi"
    method: str = field(default="auto", metadata={"choices": ("auto", "kmeans")})
    windows: tuple[Window, ...] = ()
    main: Window | None = None
    weights: Mapping[str, float] = field(default_factory=dict, metadata={"ge": 0})
    pair: tuple[int, str] = (1, "a")
    extra: Any = None

    def __post_init__(self):
        if self.unit == "forbidden":
            raise ValueError("unit 'forbidden' is not allowed")


def err(raw, where=""):
    with pytest.raises(ConfigError) as info:
        build(Job, raw, "job.yaml", where)
    return str(info.value)


def test_builds_with_defaults_and_conversions():
    job = build(Job, {"name": "x", "share": 1 / 3, "dates": ["2023-01-01", "2024-01-01"], "windows": [{"days": 90}],
                      "main": {"days": 30, "label": "m"}, "weights": {"a": 1, 2: 0.5}, "pair": [2, "b"]}, "job.yaml")
    assert job.top == 50 and job.dates == ("2023-01-01", "2024-01-01") and job.windows == (Window(90),)
    assert job.main == Window(30, "m") and dict(job.weights) == {"a": 1.0, "2": 0.5}  # YAML number keys -> text
    assert isinstance(job.weights["a"], float) and job.pair == (2, "b")
    with pytest.raises(TypeError):
        job.weights["b"] = 1.0  # a Mapping field is read-only
    with pytest.raises(TypeError):
        job.weights.update(b=1.0)
    assert pickle.loads(pickle.dumps(job)) == job and hash(job.weights) == hash(pickle.loads(pickle.dumps(job)).weights)


def test_unknown_and_missing_keys_name_file_and_path():
    msg = err({"name": "x", "colour": "red"})
    assert msg.startswith("job.yaml: top level:") and "['colour']" in msg and "'top'" in msg
    assert err({}) == "job.yaml: name: required key is missing"
    msg = err({"name": "x", "windows": [{"days": 1}, {"days": 2, "size": 2}]})
    assert msg.startswith("job.yaml: windows[1]: unknown key(s) ['size']")
    assert err({"name": "x", "main": {}}) == "job.yaml: main.days: required key is missing"


@pytest.mark.parametrize("raw, where, value", [
    ({"top": True}, "top", "True"),            # a bool is not an int
    ({"top": "3"}, "top", "'3'"),              # text is not a number
    ({"top": 2.5}, "top", "2.5"),
    ({"share": "x"}, "share", "'x'"),
    ({"strict": "yes"}, "strict", "'yes'"),
    ({"strict": 1}, "strict", "1"),
    ({"name": 5}, "name", "5"),
    ({"dates": "2024-01-01"}, "dates", "'2024-01-01'"),
    ({"dates": ["2024-01-01", 3]}, "dates[1]", "3"),
    ({"weights": {"a": "heavy"}}, "weights.a", "'heavy'"),
    ({"weights": [1]}, "weights", "[1]"),
    ({"pair": [1]}, "pair", "[1]"),
    ({"pair": [1, 2]}, "pair[1]", "2"),
    ({"main": 3}, "main", "3"),
    ({"lang": "de"}, "lang", "'de'"),
    ({"method": "dbscan"}, "method", "'dbscan'"),
])
def test_types_name_path_and_value(raw, where, value):
    msg = err({"name": "x", **raw})
    assert msg.startswith(f"job.yaml: {where}: ") and value in msg


@pytest.mark.parametrize("raw, where", [
    ({"top": 0}, "top"), ({"top": 1001}, "top"), ({"share": 0}, "share"), ({"share": 1.0}, "share"),
    ({"windows": [{"days": 0}]}, "windows[0].days"), ({"weights": {"a": -1}}, "weights.a"),
])
def test_ranges_from_metadata(raw, where):
    msg = err({"name": "x", **raw})
    assert msg.startswith(f"job.yaml: {where}: expected a value")
    assert build(Job, {"name": "x", "top": 1, "share": 0.99}, "s").top == 1  # bounds inclusive only where declared


def test_optional_and_null():
    assert build(Job, {"name": "x", "unit": None, "main": None}, "s").unit is None
    assert err({"name": None}) == "job.yaml: name: expected a text, got None"
    assert "expected a mapping" in err(["name"])
    assert build(Job, {"name": "x", "extra": {"anything": [1]}}, "s").extra == {"anything": [1]}


def test_post_init_errors_are_reported_with_source_and_where():
    assert err({"name": "x", "unit": "forbidden"}, "job") == "job.yaml: job: unit 'forbidden' is not allowed"


def test_nested_where_prefix():
    assert err({"name": "x", "top": -1}, "jobs.daily").startswith("job.yaml: jobs.daily.top: ")


def test_yaml_dates_become_iso_text(tmp_path: Path):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\ndates: [2023-01-01, 2024-01-01]\n")
    assert load_config(Job, path).dates == ("2023-01-01", "2024-01-01")


def test_read_yaml_syntax_error_names_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntop: 3\nwindows: [1, 2\nlang: fi\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert str(info.value).startswith(f"{path}: not valid YAML at line 4")
    assert info.value.source == str(path)


def test_read_yaml_missing_and_packaged(tmp_path: Path):
    with pytest.raises(ConfigFileNotFound) as info:
        read_yaml(tmp_path / "none.yaml")
    assert isinstance(info.value, FileNotFoundError) and "none.yaml" in str(info.value)
    raw, source = read_yaml(None, "targets.yaml")
    assert source == "targets.yaml (default)" and "high_use" in raw["targets"]
    with pytest.raises(ConfigFileNotFound):
        read_yaml(None, "no_such.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml(empty) == ({}, str(empty))


def test_load_config_section_and_defaults(tmp_path: Path):
    path = tmp_path / "all.yaml"
    path.write_text("job:\n  name: daily\n  top: 20\nother: 1\n")
    job = load_config(Job, path, section="job")
    assert (job.name, job.top) == ("daily", 20)
    path.write_text("job:\n  name: daily\n  top: 0\n")
    with pytest.raises(ConfigError, match=r"all.yaml: job.top: expected a value >= 1, got 0"):
        load_config(Job, path, section="job")
    with pytest.raises(ConfigError, match="Window defaults: days: required key is missing"):
        load_config(Window)
    with pytest.raises(ConfigError, match=r"all.yaml: job2.name: required key is missing"):
        load_config(Job, path, section="job2")  # a missing section is empty


def test_build_rejects_non_dataclass():
    with pytest.raises(TypeError):
        build(dict, {}, "s")


# --------------------------------------------------------------- every YAML of sote goes through the loader

def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_targets_are_the_packaged_targets_in_file_order():
    from features.config.defaults import BUILTIN_TARGETS
    from features.synth.generate import TRUTH_TARGETS
    from features.targets.spec import load_targets

    assert BUILTIN_TARGETS == tuple(load_targets()) == TRUTH_TARGETS
    assert BUILTIN_TARGETS[0] == "high_use" and len(BUILTIN_TARGETS) == 5 and "rising_high_use" in BUILTIN_TARGETS


def test_feature_spec_files_name_file_key_and_line(tmp_path: Path):
    from features.histories.spec import SpecError, load_charlson, load_diagnosis_groups, load_spec

    with pytest.raises(SpecError, match=r"feature spec .*c.yaml: not valid YAML at line 2"):
        load_spec(_write(tmp_path, "windows: [30\nevents: []\n"))
    with pytest.raises(SpecError, match=r"feature spec .*c.yaml: measurements.hba1c.lookback_days: expected a value "
                                        r"> 0, got -3"):
        load_spec(_write(tmp_path, "measurements: {hba1c: {lookback_days: -3}}\n"))
    with pytest.raises(SpecError, match=r"continuity.by\[0\]: 'nurse' is not one of"):
        load_spec(_write(tmp_path, "continuity: {by: [nurse]}\n"))
    with pytest.raises(FileNotFoundError, match="feature spec not found"):
        load_spec(tmp_path / "none.yaml")
    with pytest.raises(SpecError, match=r"diagnosis groups .*c.yaml: groups.gout.icd10\[0\]: expected a list of 2 "
                                        r"items, got \['M10'\]"):
        load_diagnosis_groups(_write(tmp_path, "groups: {gout: {icd10: [[M10]]}}\n"))
    with pytest.raises(SpecError, match=r"Charlson mapping .*c.yaml: categories.x.weight: expected a whole number, "
                                        r"got 'two'"):
        load_charlson(_write(tmp_path, "categories: {x: {weight: two, icd10: [I21]}}\n"))
    with pytest.raises(SpecError, match=r"categories.x.icd10: bad ICD-10 entry '21'"):
        load_charlson(_write(tmp_path, "categories: {x: {weight: 1, icd10: ['21']}}\n"))
    with pytest.raises(SpecError, match=r"implies\[0\]: unknown category \['y'\]"):
        load_charlson(_write(tmp_path, "categories: {x: {weight: 1, icd10: [I21]}}\n"
                                       "implies: [{all_of: [x], then: y}]\n"))
    assert load_charlson(_write(tmp_path, "categories: {x: {weight: 1, icd10: [I21, I60-I64]}}\n")).categories[0] \
        .ranges == (("I60", "I64"),)


def test_targets_yaml_errors_name_the_line_and_key(tmp_path: Path):
    from features.targets.spec import TargetError, load_targets

    with pytest.raises(TargetError, match=r"targets .*c.yaml: not valid YAML at line 4, .*"
                       r"\(while parsing a flow mapping at line 3, column 14\)"):
        load_targets(_write(tmp_path, "targets:\n  x:\n    outcome: {kind: count\n"))
    with pytest.raises(TargetError, match=r"target x.cohort: min_age 70 > max_age 60"):
        load_targets(_write(tmp_path, "targets: {x: {cohort: {min_age: 70, max_age: 60}, "
                                      "outcome: {kind: cost_quantile, quantile: 0.9}}}\n"))
    with pytest.raises(TargetError, match=r"target x.horizon_days: expected a value >= 1, got 0"):
        load_targets(_write(tmp_path, "targets: {x: {horizon_days: 0, outcome: {kind: cost_quantile, "
                                      "quantile: 0.9}}}\n"))
    with pytest.raises(TargetError, match=r"target x.outcome: required key is missing"):
        load_targets(_write(tmp_path, "targets: {x: {description: no outcome}}\n"))


def test_unit_costs_name_the_service_and_value(tmp_path: Path):
    from features.contract.costs import load_unit_costs

    table = load_unit_costs()
    assert table["inpatient"].per == "day" and table["primary_care_visit"].by_professional == {"doctor": 130.0,
                                                                                              "nurse": 60.0}
    lines = "".join(f"  {s}: {{eur: 10}}\n" for s in table if s != "home_care")
    with pytest.raises(ConfigError, match=r"unit-cost table .*c.yaml: services: unknown services \[\], "
                                          r"missing \['home_care'\]"):
        load_unit_costs(_write(tmp_path, "services:\n" + lines))
    with pytest.raises(ConfigError, match=r"services.home_care.eur: expected a value >= 0, got -5.0"):
        load_unit_costs(_write(tmp_path, "services:\n" + lines + "  home_care: {eur: -5}\n"))
    with pytest.raises(ConfigError, match=r"services.home_care.per: 'hour' is not one of \['visit', 'day'\]"):
        load_unit_costs(_write(tmp_path, "services:\n" + lines + "  home_care: {eur: 5, per: hour}\n"))


def test_grid_config_names_the_rule(tmp_path: Path):
    from segmentation.grid import load_grid_config

    cfg = load_grid_config()
    assert cfg.need.min_points == 2 and cfg.need.rules[2].op == "top_share" and cfg.labels["en"]["self_reliant"]
    rule = "{column: a, op: '>=', value: 1}"
    with pytest.raises(ConfigError, match=r"grid config .*c.yaml: need.rules\[0\].op: '~' is not one of"):
        load_grid_config(_write(tmp_path, f"need: {{min_points: 1, rules: [{{column: a, op: '~', value: 1}}]}}\n"
                                          f"weak_resources: {{min_points: 1, rules: [{rule}]}}\n"))
    with pytest.raises(ConfigError, match=r"weak_resources: min_points 2 exceeds the 1 rule"):
        load_grid_config(_write(tmp_path, f"need: {{min_points: 1, rules: [{rule}]}}\n"
                                          f"weak_resources: {{min_points: 2, rules: [{rule}]}}\n"))
    with pytest.raises(ConfigError, match=r"top level: labels.fi must name exactly"):
        load_grid_config(_write(tmp_path, f"need: {{min_points: 1, rules: [{rule}]}}\n"
                                          f"weak_resources: {{min_points: 1, rules: [{rule}]}}\n"
                                          "labels: {fi: {self_reliant: x}}\n"))


def test_adapter_map_files_go_through_the_loader(tmp_path: Path):
    from features.adapters.common import AdapterError, load_maps

    with pytest.raises(AdapterError, match=r"map file .*c.yaml: not valid YAML at line 2.*"
                       r"\(while parsing a flow node at line 2"):
        load_maps(_write(tmp_path, "synthea: [\n"))
    with pytest.raises(AdapterError, match="map file not found"):
        load_maps(tmp_path / "none.yaml")
    with pytest.raises(AdapterError, match="expected a mapping at the top level"):
        load_maps(_write(tmp_path, "- a\n"))


def test_county_presets_are_validated():
    from features.synth.generate import load_layout, load_presets

    presets = load_presets()
    assert set(presets) == {"keski-uusimaa", "ita-uusimaa"} and presets["keski-uusimaa"].residents == 199_000
    layout, units = load_layout("keski-uusimaa")
    assert units[:2] == ["hyvinkaa_keskusta", "hyvinkaa_paavola"] and layout.units[0] == [0, 1]
    assert abs(layout.shares.sum() - 1) < 1e-12 and layout.municipalities[0] == "Hyvinkää"
