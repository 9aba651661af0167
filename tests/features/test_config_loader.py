"""The configuration loader: every rule, and the file, key path and value in every message."""
from __future__ import annotations

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
