"""The DuckDB engine's memory limit and spill folder."""
from pathlib import Path

import pandas as pd

from features.histories.engine import DuckDBEngine, default_memory_limit


def _setting(engine: DuckDBEngine, name: str) -> str:
    return engine.query(f"SELECT current_setting('{name}') AS v")["v"].iloc[0]


def test_default_limit_is_a_share_of_memory_with_a_cap():
    value = float(default_memory_limit().removesuffix("GB"))
    assert 0.5 <= value <= 6.0
    assert default_memory_limit(share=1.0, cap_gb=2.0) == "2.0GB"


def test_environment_sets_the_limit_and_spills_go_to_a_private_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", "300MB")
    engine = DuckDBEngine(threads=1)
    assert _setting(engine, "memory_limit").startswith("286")  # DuckDB reports 300 MB in MiB
    spill = Path(_setting(engine, "temp_directory"))
    assert spill.name.startswith("sote-duckdb-") and tmp_path not in spill.parents
    # a sort larger than the limit completes by spilling
    out = engine.query("SELECT count(*) AS n FROM (SELECT range AS x, md5(range::VARCHAR) AS h FROM range(4000000) "
                       "ORDER BY h) t")
    assert out["n"].iloc[0] == 4_000_000
    engine.close()
    assert not spill.exists() and not any(tmp_path.iterdir())


def test_explicit_limit_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", "300MB")
    engine = DuckDBEngine(memory_limit="1GB")
    engine.register("t", pd.DataFrame({"a": [1, 2]}))
    assert engine.columns("t") == ["a"]
    assert _setting(engine, "memory_limit").startswith("953")
    engine.close()
