"""Tiling with distinct copies (copy k generated with seed + k): what the copies hold, and why it matters.

The scale benchmark tiles a county to 1.33 M clients. Copied identically, copies of one history carry
different ids and fall on both sides of the trainer's client-disjoint early-stopping split, so LightGBM
never stops early; generated with their own seeds, the copies are distinct histories and it stops as on
a county of that size.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_scale  # noqa: E402
import tile_county  # noqa: E402

TABLES = ("clients", "events", "diagnoses", "measurements", "assessments", "truth")
SEED = 3


def _read(folder: Path, table: str) -> pd.DataFrame:
    return pq.read_table(folder / f"{table}.parquet").to_pandas()


@pytest.fixture(scope="module")
def distinct(tmp_path_factory):
    """A 40-resident synthetic county (seed 3) tiled into 3 distinct copies (seeds 3, 4 and 5)."""
    from features.synth import SynthConfig, generate_county

    root = tmp_path_factory.mktemp("distinct")
    generate_county(root / "base", SynthConfig(clients=40, seed=SEED, truth_reps=1, workers=1))
    made = tile_county.tile_county(root / "base", root / "tiled", 3, mode="distinct", copies_dir=root / "seeds",
                                   memory_limit="256MB", threads=1)
    return root, made


def test_copy_k_is_the_county_generated_with_seed_plus_k_under_fresh_ids(distinct):
    root, made = distinct
    assert made["seeds"] == [SEED, SEED + 1, SEED + 2] and made["mode"] == "distinct"
    sources = [root / "base", root / "seeds" / f"seed-{SEED + 1}", root / "seeds" / f"seed-{SEED + 2}"]
    for k, src in enumerate(sources[1:], start=1):
        config = json.loads((src / "manifest.json").read_text())["config"]
        assert config == {**json.loads((root / "base" / "manifest.json").read_text())["config"], "seed": SEED + k}
    for table in TABLES:
        tiled = _read(root / "tiled", table)
        assert len(tiled) == made["rows"][table] == sum(pq.read_metadata(s / f"{table}.parquet").num_rows
                                                        for s in sources), table
        for k, src in enumerate(sources):
            copy = tiled[tiled["client_id"].astype(str).str[-1] == str(k)].reset_index(drop=True)
            own = _read(src, table)
            expected = own.assign(client_id=own["client_id"].astype(str) + str(k))
            pd.testing.assert_frame_equal(copy.astype(str), expected.astype(str), check_dtype=False,
                                          check_categorical=False)
    clients = _read(root / "tiled", "clients")
    assert clients["client_id"].is_unique
    # distinct histories: no copy's (birth date, sex, municipality) sequence repeats another's
    people = [tuple(map(tuple, _read(s, "clients")[["birth_date", "sex", "municipality"]].astype(str).to_numpy()))
              for s in sources]
    assert len(set(people)) == 3


def test_the_copies_share_the_county_vocabulary_and_period(distinct):
    from features.contract.dataset import read_declaration
    from features.synth.generate import load_layout
    from features.synth.records import Vocab

    root, made = distinct
    manifest = json.loads((root / "base" / "manifest.json").read_text())
    _, units = load_layout(manifest["config"]["county"])
    vocab = Vocab(units, f"{manifest['config']['county']}_hospital")
    events = _read(root / "tiled", "events")
    assert set(events["unit"].astype(str)) <= set(units) | {vocab.hospital}
    assert set(events["professional"].astype(str)) <= set(vocab.professionals)
    assert set(_read(root / "tiled", "clients")["unit"].dropna().astype(str)) <= set(units)
    assert read_declaration(root / "tiled").period == read_declaration(root / "base").period is not None
    tiled = json.loads((root / "tiled" / "manifest.json").read_text())
    assert tiled["tiling"]["mode"] == "distinct" and tiled["tiling"]["seeds"] == [SEED, SEED + 1, SEED + 2]
    assert tiled["rows"]["clients"] == made["rows"]["clients"] and tiled["truth_rows"] == made["rows"]["truth"]
    assert "truth_realism" not in tiled  # one seed's figures; each copy's own manifest keeps them
    assert set(tiled["truth_reps_by_date"]) == set(manifest["truth_reps_by_date"])


def test_distinct_copies_are_reused_and_retiled_only_when_a_copy_changes(distinct, tmp_path):
    root, _ = distinct
    base, tiled, seeds = root / "base", root / "tiled", root / "seeds"
    assert tile_county.is_current(tiled, base, 3, mode="distinct", copies_dir=seeds)
    assert not tile_county.is_current(tiled, base, 3, mode="identical")  # another tiling
    assert not tile_county.is_current(tiled, base, 3, mode="distinct", copies_dir=tmp_path)  # other copies
    assert not tile_county.is_current(tiled, base, 2, mode="distinct", copies_dir=seeds)
    events = seeds / f"seed-{SEED + 2}" / "events.parquet"
    before = events.stat().st_mtime_ns
    assert tile_county.generate_copies(base, 3, seeds)[2] == events.parent  # reused, not generated again
    assert events.stat().st_mtime_ns == before
    os.utime(events, ns=(before + 10**9, before + 10**9))
    assert not tile_county.is_current(tiled, base, 3, mode="distinct", copies_dir=seeds)


def test_distinct_copies_need_a_synthetic_base(distinct, tmp_path):
    root, _ = distinct
    bare = tmp_path / "bare"
    bare.mkdir()
    for table in ("clients", "events"):
        (bare / f"{table}.parquet").write_bytes((root / "base" / f"{table}.parquet").read_bytes())
    with pytest.raises(tile_county.TilingError, match="manifest.json: distinct copies are generated"):
        tile_county.tile_county(bare, tmp_path / "out", 2, mode="distinct")
    made = tile_county.tile_county(bare, tmp_path / "out", 2, mode="identical", threads=1)  # still possible
    assert made["rows"]["clients"] == 2 * pq.read_metadata(bare / "clients.parquet").num_rows
    with pytest.raises(tile_county.TilingError, match="choose among distinct, identical"):
        tile_county.tile_county(bare, tmp_path / "o", 2, mode="shuffled")
    with pytest.raises(tile_county.TilingError, match="inside the copies folder"):
        tile_county.tile_county(root / "base", tmp_path / "seeds" / "x", 2, mode="distinct",
                                copies_dir=tmp_path / "seeds")


def test_the_benchmark_tiles_distinct_copies_unless_told_otherwise():
    args = bench_scale.parser().parse_args(["--clients", "100"])
    assert args.tiling == "distinct" == bench_scale.TILING
    assert bench_scale.parser().parse_args(["--clients", "100", "--tiling", "identical"]).tiling == "identical"
    assert bench_scale.tiled_name(Path("county"), 5, "distinct") == "county-x5-distinct"
    assert bench_scale.tiled_name(Path("county"), 5, "identical") == "county-x5"  # the earlier runs' folder


#: Boosting budget of the early-stopping test: a cap the identical copies reach and distinct ones stay far below.
CAP, PATIENCE = 300, 20


def test_a_model_on_distinct_copies_stops_early_and_on_identical_copies_runs_to_the_cap(tmp_path):
    """1,500 residents tiled x3 both ways; the project's classifier with its early stopping on each.

    Measured (base seeds 5, 11, 23, 101): identical copies keep 284-300 of 300 rounds, distinct ones 36-63
    (seed 11: 300 and 55). With the old tiling as the benchmark's (identical copies) the second assertion fails.
    """
    from features.histories.spec import load_spec
    from features.synth import SynthConfig, generate_county
    from features.targets.labels import build_training_set
    from models.estimator import ServiceNeedClassifier
    from models.train import _feature_columns

    generate_county(tmp_path / "base", SynthConfig(clients=1_500, seed=11, truth_reps=1, workers=1))
    spec = load_spec(None)
    rounds = {}
    for name, mode in (("identical", "identical"), ("benchmark", bench_scale.TILING)):
        tile_county.tile_county(tmp_path / "base", tmp_path / name, 3, mode=mode, copies_dir=tmp_path / "seeds",
                                memory_limit="512MB", threads=1, workers=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            training = build_training_set(tmp_path / name, ["2023-01-01"], "high_use", spec=spec)  # validates
        assert len(training) > 2_500 and training["client_id"].is_unique
        model = ServiceNeedClassifier(n_estimators=CAP, early_stopping_rounds=PATIENCE, n_jobs=1).fit(
            training[_feature_columns(training, spec)], training["label"].to_numpy(int),
            groups=training["client_id"])
        rounds[name] = model.best_iteration_
    assert rounds["identical"] >= 0.9 * CAP, rounds  # twins in the stopping slice: the loss keeps falling
    assert rounds["benchmark"] <= CAP / 3, rounds  # the benchmark's (distinct) copies: stops as on real data
    assert rounds["identical"] >= 3 * rounds["benchmark"], rounds
