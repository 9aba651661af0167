"""Feature spec loading and validation, the feature dictionary and schema, and the CLI commands."""
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.histories.dictionary import describe, feature_dictionary
from features.histories.schema import feature_schema
from features.histories.build import build_features
from features.contract.load import write_tables
from features.histories.spec import SpecError, load_spec, parse_spec
from features.contract.validation import validate_tables
from history_data import AS_OF
from sote.cli import app


def test_default_spec_columns_are_stable_and_unique():
    spec = load_spec()
    names = spec.column_names()
    assert names[0] == "client_id" and len(names) == len(set(names))
    assert spec.windows == (90, 180, 365, 730)
    assert "emergency_count_180d" in names and "inpatient_days_730d" in names
    assert "emergency_days_90d" not in names  # days only for episode services
    assert len([n for n in names if n.endswith("_count_90d")]) == 13


def _spec(**over):
    raw = {
        "windows": [30, 365], "events": [{"agg": "count"}], "diagnoses": {"groups": ["diabetes"]}}
    raw.update(over)
    return raw


@pytest.mark.parametrize("over,message", [
    ({"windows": [30, -5]}, "window -5"),
    ({"events": [{"agg": "median"}]}, "unknown aggregation 'median'"),
    ({"events": [{"agg": "days", "services": ["emergency"]}]}, "episode services only"),
    ({"events": [{"agg": "count", "services": ["sauna"]}]}, "sauna"),
    ({"events": [{"agg": "count"}, {"agg": "count", "windows": [30]}]}, "declared twice"),
    ({"diagnoses": {"groups": ["gout"]}}, "gout"),
    ({"measurements": {"cholesterol": {}}}, "measurements.cholesterol"),
    ({"assessments": {"scales": ["adl_h"], "lookback_days": 100, "change_days": 365}}, "change_days"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_specs_name_the_key(over, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(_spec(**over), "test.yaml")


def test_a_small_custom_spec_builds_only_its_columns(county, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"windows": [30, 365], "events": [{"agg": "count", "services": "social"}],
                                    "totals": {"aggs": ["cost"]}, "demographics": ["age"],
                                    "measurements": {"hba1c": {"change": True}}}))
    X = build_features(county, AS_OF, spec=path)
    assert list(X.columns) == ["client_id", "age", "home_care_count_30d", "home_care_count_365d",
                               "housing_24h_count_30d", "housing_24h_count_365d", "social_work_count_30d",
                               "social_work_count_365d", "disability_services_count_30d",
                               "disability_services_count_365d", "child_family_count_30d",
                               "child_family_count_365d", "cost_total_30d", "cost_total_365d", "hba1c_last",
                               "hba1c_change"]
    feature_schema(load_spec(path)).validate(X)


def test_dictionary_covers_every_feature_in_three_languages():
    d = feature_dictionary()
    assert d["feature"].tolist() == load_spec().column_names()[1:]
    for lang in ("fi", "sv", "en"):
        assert d[f"template_{lang}"].str.len().gt(0).all()
    assert describe("emergency_count_180d", 3, "en") == "3 emergency visits in the last 6 months"
    assert describe("emergency_count_180d", 3, "fi") == "3 päivystyskäyntiä viimeisen 6 kuukauden aikana"
    assert describe("emergency_count_180d", 3, "sv") == "3 jourbesök under de senaste 6 månaderna"
    assert describe("hba1c_last", 71.04, "en") == "latest HbA1c 71.0 mmol/mol"


def test_every_template_formats_a_value():
    d = feature_dictionary()
    for _, r in d.iterrows():
        value = "F" if r["dtype"] == "str" else 0.5
        for lang in ("fi", "sv", "en"):
            assert r[f"template_{lang}"].format(value=value)


def test_schema_rejects_a_negative_count(county):
    X = build_features(county, AS_OF)
    X.loc[0, "emergency_count_90d"] = -1
    with pytest.raises(Exception, match="emergency_count_90d"):
        feature_schema().validate(X)


def test_cli_features_and_labels(county, tmp_path):
    valid = validate_tables({k: v.copy() for k, v in county.items()}, lenient=True).tables  # drop broken rows
    data = write_tables(valid, tmp_path / "data")
    runner = CliRunner()
    out = tmp_path / "X.parquet"
    res = runner.invoke(app, ["features", "--data", str(data), "--as-of", "2024-01-01", "--out", str(out),
                              "--no-validate"])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), build_features(valid, AS_OF), check_dtype=False)
    lab = tmp_path / "y.csv"
    res = runner.invoke(app, ["labels", "--data", str(data), "--as-of", "2023-01-01", "--target", "high_use",
                              "--out", str(lab)])
    assert res.exit_code == 0, res.output
    y = pd.read_csv(lab)
    assert set(y["label"]) <= {0, 1} and y["target"].eq("high_use").all()


@pytest.mark.parametrize("args,message", [
    (["--as-of", "2024-13-45", "--out", "x.parquet"], "not a calendar date"),
    (["--as-of", "2024-01-01", "--out", "x.txt"], ".parquet or .csv"),
])
def test_cli_errors_are_clear(county, tmp_path, args, message):
    data = write_tables(county, tmp_path / "data")
    res = CliRunner().invoke(app, ["features", "--data", str(data), "--no-validate", *args])
    assert res.exit_code != 0 and message in res.output


def test_cli_unknown_target_and_missing_folder(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["labels", "--data", str(tmp_path / "none"), "--as-of", "2024-01-01", "--target",
                              "high_use", "--out", str(tmp_path / "y.csv")])
    assert res.exit_code == 2 and "not found" in res.output
