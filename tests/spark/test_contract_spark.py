"""The contract checks on Spark give the streaming validation's report: problems, counts, examples, order, text."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract.stream import open_dataset
from features.contract.validate_spark import SparkCheckUnsupported, check_contract_spark
from features.contract.validation import ContractError
from sote.app import ExitCode
from sote.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features" / "contract"))
from test_stream import _messy, _write  # noqa: E402  (the streaming validation's own messy tables)

pytestmark = pytest.mark.spark

runner = CliRunner()


def _reports(data, engine):
    """The report of the streaming validation (small batches: merged over batches) and of the Spark checks."""
    with pytest.raises(ContractError) as stream:
        open_dataset(data, batch_rows=3)
    with pytest.raises(ContractError) as spark:
        check_contract_spark(data, engine)
    return stream.value.report, spark.value.report


def assert_same_report(expected, got) -> None:
    """Same problems in the same order with the same counts and example rows, same row counts, same text."""
    assert [(p.table, p.column, p.rule, p.count) for p in got.problems] == \
           [(p.table, p.column, p.rule, p.count) for p in expected.problems]
    for a, b in zip(expected.problems, got.problems):
        assert (a.rows is None) == (b.rows is None)
        if a.rows is not None:
            pd.testing.assert_frame_equal(a.examples, b.examples)
    assert got.rows_in == expected.rows_in
    assert got.to_text() == expected.to_text()


def test_messy_parquet_tables_give_the_same_report_on_spark(spark_engine, tmp_path):
    data = _write(tmp_path / "messy", _messy(), parquet=tuple(_messy()))
    expected, got = _reports(data, spark_engine)
    assert_same_report(expected, got)
    kinds = {(p.table, p.column, p.rule.split(":")[0]) for p in got.problems}
    # row rules, parse errors, codes, uniqueness, the foreign key, birth and death dates, duplicates
    assert {("clients", "client_id", "unique"), ("events", "client_id", "foreign key"), ("events", "(all)",
            "duplicate row (first copy kept)"), ("diagnoses", "system", "isin(['ICD-10', 'ICPC-2'])")} <= kinds
    assert any("birth_date" in p.rule for p in got.problems) and any("death_date" in p.rule for p in got.problems)


@pytest.mark.slow  # 96 s on the shared machine: outside the Spark stage's five minutes (the messy tables are in it)
def test_a_dirty_synthetic_county_gives_the_same_report_on_spark(spark_engine, tmp_path):
    from features.synth import SynthConfig, generate_county

    data = tmp_path / "dirty"
    generate_county(data, SynthConfig(clients=150, seed=5, truth_reps=1, workers=1, dirty=True))
    expected, got = _reports(data, spark_engine)
    assert len(got.problems) >= 5
    assert_same_report(expected, got)


@pytest.mark.slow  # ~40 s: the Spark stage checks a valid county through `sote validate` (150 clients) instead
def test_a_valid_county_passes_on_spark_with_its_row_counts(spark_engine, small_county):
    path, dataset = small_county
    report = check_contract_spark(path, spark_engine)
    assert report.ok and report.rows_in == dataset.report.rows_in


def test_a_csv_table_is_refused_with_what_to_run(spark_engine, tmp_path):
    data = _write(tmp_path / "csv", _messy())
    with pytest.raises(SparkCheckUnsupported, match="sote validate"):
        check_contract_spark(data, spark_engine)


def test_sote_labels_on_spark_gives_duckdbs_contract_error(tmp_path):
    """The CLI validates before Spark starts: the same report and exit code with either engine."""
    data = _write(tmp_path / "messy", _messy(), parquet=tuple(_messy()))
    runs = {}
    for engine, out in (("duckdb", "l.parquet"), ("spark", "l_spark")):
        result = runner.invoke(app, ["labels", "--data", str(data), "--as-of", "2021-06-01", "--target", "high_use",
                                     "--out", str(tmp_path / out), "--engine", engine])
        assert result.exit_code == ExitCode.DATA_INVALID, result.output
        runs[engine] = result.output
    assert runs["spark"] == runs["duckdb"] and "foreign key" in runs["spark"]
    assert not (tmp_path / "l_spark").exists()


def test_sote_validate_on_spark_prints_the_one_process_report_and_exit_code(spark, spark_master, tmp_path):
    """`sote validate --engine spark`: the same report text and exit code as the streaming validation.

    The command finds the fixture's session (four shuffle partitions) running, uses it and leaves it running.
    """
    from features.synth import SynthConfig, generate_county

    data = _write(tmp_path / "messy", _messy(), parquet=tuple(_messy()))
    clean = tmp_path / "clean"
    generate_county(clean, SynthConfig(clients=150, seed=5, truth_reps=1, workers=1))
    runs = {}
    for engine in ("duckdb", "spark"):
        extra = ["--engine", "spark", "--spark-master", spark_master] if engine == "spark" else []
        result = runner.invoke(app, ["validate", str(data), *extra])
        assert result.exit_code == ExitCode.DATA_INVALID, result.output
        ok = runner.invoke(app, ["validate", str(clean), *extra])
        assert ok.exit_code == 0, ok.output
        runs[engine] = result.output, [line for line in ok.output.splitlines() if "rows in" in line]
    assert runs["spark"] == runs["duckdb"] and "foreign key" in runs["spark"][0]
    assert len(runs["spark"][1]) == 5 and " 0 quarantined" in runs["spark"][1][0]
