"""DemoConfig from YAML (docs/demo.yaml), command-line overrides, and `sote demo --config` refusing bad files."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.config.defaults import BUILTIN_TARGETS, SCORE_AS_OF, TRAIN_AS_OF, VALID_AS_OF
from features.config.loader import ConfigError
from sote.cli import app
from sote.demo import DemoConfig, load_demo_config

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "demo.yaml"


def test_the_documented_sample_loads_and_differs_from_the_defaults_only_in_size():
    config = load_demo_config(SAMPLE)
    assert config == DemoConfig(clients=20_000)
    assert (config.train_as_of, config.valid_as_of, config.score_as_of) == (TRAIN_AS_OF, VALID_AS_OF, SCORE_AS_OF)
    assert config.targets == BUILTIN_TARGETS and load_demo_config() == DemoConfig()


def test_command_line_values_win_over_the_file(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text("clients: 5000\nseed: 7\ntargets: [high_use]\n")
    config = load_demo_config(path, clients=3000, seed=None, workers=1)
    assert (config.clients, config.seed, config.workers, config.targets) == (3000, 7, 1, ("high_use",))
    with pytest.raises(ConfigError, match=r"command-line options: clients: expected a value >= 1, got 0"):
        load_demo_config(path, clients=0)


@pytest.mark.parametrize("text, message", [
    ("clients: many\n", r"demo.yaml: clients: expected a whole number, got 'many'"),
    ("targets: [high_use, sauna_visits]\n", r"demo.yaml: targets\[1\]: 'sauna_visits' is not one of"),
    ("targets: []\n", r"demo.yaml: targets: expected a non-empty list"),
    ("explain_share: 1.5\n", r"demo.yaml: explain_share: expected a value <= 1, got 1.5"),
    ("valid_as_of: 2022-06-01\n", r"demo.yaml: top level: the dates must be in order"),
    ("score_as_of: 2027-01-01\n", r"inside the synthetic data \(2019-01-01 to 2025-12-31\)"),
    ("train_as_of: soon\n", r"train_as_of 'soon' is not a date"),
    ("clients: 10\ncolour: red\n", r"demo.yaml: top level: unknown key\(s\) \['colour'\]"),
])
def test_bad_demo_files_name_the_key_and_value(tmp_path, text, message):
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_demo_config(path)


def test_cli_demo_refuses_a_bad_config_before_writing_anything(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text("clients: 2000\ntruth_reps: 0\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["demo", "--config", str(path), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "truth_reps: expected a value >= 1, got 0" in res.output and not out.exists()
    res = CliRunner().invoke(app, ["demo", "--config", str(tmp_path / "none.yaml"), "--out", str(out)])
    assert res.exit_code == 2 and "not found" in res.output and not out.exists()
