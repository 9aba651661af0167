"""The scale benchmark's pieces on a tiny county: tiling under fresh ids, and measuring one child command."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_scale  # noqa: E402
import tile_county  # noqa: E402

TABLES = ("clients", "events", "diagnoses", "measurements", "assessments", "truth")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 40-resident synthetic county (with truth.parquet and manifest.json) and its tiling into 3 copies."""
    from features.synth import SynthConfig, generate_county

    root = tmp_path_factory.mktemp("scale")
    generate_county(root / "base", SynthConfig(clients=40, seed=3, truth_reps=1, workers=1))
    made = tile_county.tile_county(root / "base", root / "tiled", 3, memory_limit="256MB", threads=1)
    return root / "base", root / "tiled", made


def _read(folder: Path, table: str) -> pd.DataFrame:
    return pq.read_table(folder / f"{table}.parquet").to_pandas()


def test_every_table_is_copied_three_times_under_fresh_unique_ids(tiny):
    base, tiled, made = tiny
    for table in TABLES:
        b, t = _read(base, table), _read(tiled, table)
        assert len(t) == 3 * len(b) == made["rows"][table], table
        ids = b["client_id"].astype(str)
        for k in range(3):
            copy = t[t["client_id"].astype(str).str[-1] == str(k)].reset_index(drop=True)
            expected = b.assign(client_id=ids + str(k))
            # every column but the id is unchanged, row for row
            pd.testing.assert_frame_equal(copy.astype(str), expected.reset_index(drop=True).astype(str),
                                          check_dtype=False, check_categorical=False)
    clients = _read(tiled, "clients")["client_id"].astype(str)
    assert clients.is_unique
    assert not set(clients) & set(_read(base, "clients")["client_id"].astype(str))  # fresh ids, not the base's
    events = set(_read(tiled, "events")["client_id"].astype(str))
    assert events <= set(clients)  # every record still belongs to a client of the tiled county


def test_types_period_and_ownership_are_kept(tiny):
    from features.contract.dataset import read_declaration
    from features.contract.outputs import owned

    base, tiled, _ = tiny
    for table in TABLES:
        b, t = pq.read_schema(base / f"{table}.parquet"), pq.read_schema(tiled / f"{table}.parquet")
        assert b.names == t.names, table
        for name in b.names:  # text stays dictionary-encoded, dates stay dates (timestamp units may differ)
            assert str(b.field(name).type).split("[")[0] == str(t.field(name).type).split("[")[0], (table, name)
    assert read_declaration(tiled).period == read_declaration(base).period is not None
    manifest = json.loads((tiled / "manifest.json").read_text())
    assert manifest["tiling"]["copies"] == 3
    assert manifest["rows"]["events"] == 3 * json.loads((base / "manifest.json").read_text())["rows"]["events"]
    assert {f"{t}.parquet" for t in TABLES} | {"manifest.json", "tiling.json"} <= owned(tiled)


def test_a_tiling_is_reused_only_while_its_base_is_unchanged(tiny, tmp_path):
    base, tiled, _ = tiny
    assert tile_county.is_current(tiled, base, 3)
    assert not tile_county.is_current(tiled, base, 2)
    copy = tmp_path / "base"
    copy.mkdir()
    for f in base.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert not tile_county.is_current(tiled, copy, 3)  # another folder


def test_refusals_name_the_problem(tiny, tmp_path):
    base, _, _ = tiny
    with pytest.raises(tile_county.TilingError, match="inside the base county"):
        tile_county.tile_county(base, base / "x", 2)
    csv = tmp_path / "csv"
    csv.mkdir()
    _read(base, "clients").to_csv(csv / "clients.csv", index=False)
    with pytest.raises(tile_county.TilingError, match="clients.csv: only Parquet"):
        tile_county.tile_county(csv, tmp_path / "out", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(tile_county.TilingError, match="lacks clients, events"):
        tile_county.tile_county(tmp_path / "empty", tmp_path / "o", 2)
    with pytest.raises(tile_county.TilingError, match="at least 1"):
        tile_county.tile_county(base, tmp_path / "o", 0)


def test_a_child_is_measured_by_its_own_peak_memory(tmp_path):
    big = bytearray(256 * 2**20)  # this process peaks above the child: a leak of its peak would show
    big[::4096] = b"x" * len(big[::4096])
    del big
    grow = "b = bytearray(100 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    result = bench_scale.run_measured("grow", [sys.executable, "-c", grow], tmp_path)
    assert result["ok"] and result["exit"] == 0 and result["error"] == ""
    assert 100 <= result["peak_rss_mb"] < 200
    assert result["load_before"] >= 0 and result["seconds"] > 0 and 0 < result["cpu_seconds"] < 30


def test_a_failing_child_is_recorded_with_its_stderr_tail(tmp_path):
    fail = "import sys; print('first', file=sys.stderr); print('the reason', file=sys.stderr); sys.exit(3)"
    result = bench_scale.run_measured("fail", [sys.executable, "-c", fail], tmp_path)
    assert not result["ok"] and result["exit"] == 3
    assert result["error"] == "first | the reason"
    assert (tmp_path / "fail.err").read_text().splitlines() == ["first", "the reason"]


def test_a_stuck_child_is_stopped_at_the_timeout(tmp_path):
    result = bench_scale.run_measured("stuck", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path,
                                      timeout=1)
    assert result["exit"] == "timeout" and not result["ok"] and result["seconds"] < 30


def test_a_missing_command_is_a_failed_step(tmp_path):
    result = bench_scale.run_measured("missing", [str(tmp_path / "no-such-command")], tmp_path)
    assert result["exit"] == 127 and "cannot run" in result["error"]


def test_sote_validate_on_the_tiled_county_is_measured(tiny, tmp_path):
    _, tiled, _ = tiny
    argv = bench_scale.sote_command() + bench_scale.step_commands(
        tiled, tmp_path, tiled, as_of="2024-01-01", explain_share=0.2)["validate"]
    result = bench_scale.run_measured("validate", argv, tmp_path / "logs", cwd=tmp_path)
    assert result["ok"], result["error"]
    assert result["peak_rss_mb"] > 50  # an interpreter with pandas and DuckDB, not this test's floor
    rows = pq.read_metadata(tmp_path / "validated" / "clients.parquet").num_rows
    assert rows == pq.read_metadata(tiled / "clients.parquet").num_rows
    assert result["cpu_seconds"] > 0.5  # the interpreter's imports at least, counted for the command itself
    assert "| validate | tiled |" in bench_scale.markdown([{**result, "data": "tiled"}])
    assert os.path.exists(tmp_path / "logs" / "validate.out")
