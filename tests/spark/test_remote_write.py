"""A remote output path (a URI Spark writes itself) is replaced only when it is a completed output."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.spark


def test_a_remote_folder_of_other_files_is_refused_and_kept(spark, tmp_path):
    from features.contract.outputs import OutputRefused
    from features.histories.engine_spark import write_frame

    target = tmp_path / "theirs"
    target.mkdir()
    (target / "notes.txt").write_text("not sote's")
    with pytest.raises(OutputRefused, match="no _SUCCESS marker"):
        write_frame(spark.range(5), target.as_uri())
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_a_completed_remote_output_is_replaced_by_a_rerun(spark, tmp_path):
    from features.histories.engine import read_parquet_output
    from features.histories.engine_spark import write_frame

    target = (tmp_path / "out").as_uri()
    write_frame(spark.range(5), target)
    write_frame(spark.range(3), target)  # a rerun replaces sote's earlier output
    assert sorted(read_parquet_output(tmp_path / "out")["id"].to_pylist()) == [0, 1, 2]
