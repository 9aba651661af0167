"""The synthetic county: configuration, chunked (parallel) simulation and atomic Parquet output."""
from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.config.defaults import BUILTIN_TARGETS, COUNTY_CLIENTS, COUNTY_SEED, DATA_END, DATA_START, VALID_AS_OF
from features.config.loader import build, read_yaml
from features.contract.tables import SERVICE_LINES
from features.contract.io import atomic_dir
from features.synth.dynamics import ARCHETYPES, default_prices
from features.synth.estimate import half_mean, mean_and_se
from features.synth.records import INSTRUMENTS, MEASUREMENT_NAMES, SCALE_NAMES, Vocab
from features.synth.simulate import NO_DAY, ChunkResult, CountyLayout, TruthSpec, simulate_chunk

#: Targets whose true probabilities the county records: every built-in target (packaged targets.yaml).
TRUTH_TARGETS = BUILTIN_TARGETS


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. The same configuration always gives identical files.

    Parameters
    ----------
    clients
        Residents at ``start`` (births and people moving in are added over time).
    seed
        Seed of every random step.
    start, end
        First and last day of the data (whole months).
    county
        Preset in ``features/config/counties.yaml`` (``keski-uusimaa``, ``ita-uusimaa``).
    truth_reps
        Replicate futures per client and index date behind the true probabilities.
    evaluated_dates, evaluated_reps_factor
        Index dates where models are judged against the truth (the validation
        date of the main job): there the truth runs ``evaluated_reps_factor``
        times as many futures, so the oracle is a precise limit where it is
        read. Dates that are not index dates of the truth are ignored.
    chunk_size
        Residents simulated together; part of the random layout, so keep it fixed.
    workers
        Processes simulating chunks in parallel (does not change the output).
    missing_cost
        Share of clean event rows whose cost is left missing (filled from unit costs when read).
    dirty
        Inject realistic data faults (see :mod:`features.synth.dirty`).
    """

    clients: int = COUNTY_CLIENTS
    seed: int = COUNTY_SEED
    start: str = DATA_START
    end: str = DATA_END
    county: str = "keski-uusimaa"
    truth_reps: int = 32
    evaluated_dates: tuple[str, ...] = (VALID_AS_OF,)
    evaluated_reps_factor: int = 3
    chunk_size: int = 20_000
    workers: int = 2
    missing_cost: float = 0.02
    dirty: bool = False


@dataclass(frozen=True)
class Municipality:
    """A municipality of a county preset: share of residents, Swedish-speaking share, care units."""

    share: float = field(metadata={"gt": 0})
    swedish: float = field(metadata={"ge": 0, "le": 1})
    units: tuple[str, ...] = field(metadata={"non_empty": True})


@dataclass(frozen=True)
class CountyPreset:
    """A county preset of ``features/config/counties.yaml``."""

    residents: int = field(metadata={"ge": 1})
    municipalities: Mapping[str, Municipality] = field(metadata={"non_empty": True})


def load_presets() -> dict[str, CountyPreset]:
    """The county presets of the packaged ``counties.yaml``, validated."""
    raw, source = read_yaml(None, "counties.yaml")
    return {name: build(CountyPreset, preset, source, str(name)) for name, preset in raw.items()}


def load_layout(county: str) -> tuple[CountyLayout, list[str]]:
    """Municipalities, shares and units of a county preset."""
    presets = load_presets()
    if county not in presets:
        raise ValueError(f"unknown county preset '{county}'; choose one of {sorted(presets)}")
    munis = presets[county].municipalities
    names = list(munis)
    units: list[str] = []
    unit_idx: list[list[int]] = []
    for name in names:
        unit_idx.append(list(range(len(units), len(units) + len(munis[name].units))))
        units.extend(munis[name].units)
    shares = np.array([munis[m].share for m in names], float)
    layout = CountyLayout(names, shares / shares.sum(), np.array([munis[m].swedish for m in names]), unit_idx)
    return layout, units


def _packaged_targets() -> dict:
    """The packaged targets.yaml as parsed (validated by features.targets.spec.load_targets in the tests)."""
    return read_yaml(None, "targets.yaml")[0]


def truth_spec() -> TruthSpec:
    """Read the parameters of the built-in targets from the packaged targets.yaml."""
    cfg = _packaged_targets()
    t = cfg["targets"]
    young = t["young_adult_mhsu"]
    outcomes = {o["kind"]: o for o in t["elderly_low_function"]["outcome"]["of"]}
    rising = t["rising_high_use"]
    return TruthSpec(
        intensive_services=tuple(cfg["intensive_services"]),
        rising_prior_days=rising["cohort"].get("prior_cost_days", 365),
        rising_prior_quantile=rising["cohort"]["max_prior_cost_quantile"],
        rising_quantile=rising["outcome"]["quantile"],
        elderly_min_age=t["elderly_low_function"]["cohort"]["min_age"],
        maple_min=outcomes["assessment_level"]["min"], adl_rise=outcomes["assessment_rise"]["min_rise"],
        young_min_age=young["cohort"]["min_age"], young_max_age=young["cohort"]["max_age"],
        young_lookback_days=young["cohort"]["lookback_days"], young_min_count=young["outcome"]["min"],
        horizon_days=cfg["horizon_days"],
    )


def _quantiles() -> dict[str, float]:
    cfg = _packaged_targets()
    return {name: cfg["targets"][name]["outcome"]["quantile"] for name in ("high_use", "diabetes_high_use")}


def client_ids(index: np.ndarray, seed: int) -> np.ndarray:
    """Pseudonymous 12-hex-digit ids: a seeded bijection of the running index (never reused)."""
    mask = (1 << 48) - 1
    x = (index.astype(np.uint64) * np.uint64(0x9E3779B97F4B) + np.uint64(seed * 7919 + 12345)) & np.uint64(mask)
    x ^= x >> np.uint64(17)
    x = (x * np.uint64(0xD6E8FEB86659)) & np.uint64(mask)
    x ^= x >> np.uint64(23)
    return np.array([f"{v:012x}" for v in x.tolist()], dtype=object)


def _dict(indices: np.ndarray, values: list[str] | np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(indices, np.int32)), pa.array(list(values), pa.string()))


def _dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days, np.int64)
    return pa.array(days.astype(np.int32), pa.int32(), mask=days == NO_DAY).cast(pa.date32())


def _to_arrow(res: ChunkResult, ids: np.ndarray, layout: CountyLayout, units: list[str], vocab: Vocab
              ) -> dict[str, pa.Table]:
    c = res.clients
    local = lambda g: np.asarray(g, np.int64) - res.offset  # noqa: E731
    clients = pa.table({
        "client_id": pa.array(ids, pa.string()),
        "birth_date": _dates(c["birth_day"]),
        "sex": _dict(c["sex"], ["F", "M", "X"]),
        "municipality": _dict(c["municipality"], layout.municipalities),
        "language": _dict(c["language"], ["fi", "sv", "other"]),
        "death_date": _dates(c["death_day"]),
        "unit": _dict(c["unit"], units),
        "moved_in": _dates(c["moved_in"]),
        "moved_out": _dates(c["moved_out"]),
    })
    ev = res.tables["events"]
    places = units + [vocab.hospital]
    events = pa.table({
        "client_id": _dict(local(ev["client"]), ids),
        "start": _dates(ev["start"]),
        "end": _dates(ev["end"]),
        "service": _dict(ev["service"], SERVICE_LINES),
        "professional": _dict(ev["professional"], vocab.professionals),
        "cost_eur": pa.array(ev["cost"].astype(float), pa.float64(), from_pandas=True),
        "unit": _dict(ev["unit"], places),
    })
    dg = res.tables["diagnoses"]
    diagnoses = pa.table({
        "client_id": _dict(local(dg["client"]), ids),
        "date": _dates(dg["date"]),
        "code": _dict(dg["code"], vocab.codes),
        "system": _dict(dg["system"], ["ICD-10", "ICPC-2"]),
    })
    ms = res.tables["measurements"]
    measurements = pa.table({
        "client_id": _dict(local(ms["client"]), ids),
        "date": _dates(ms["date"]),
        "name": _dict(ms["name"], MEASUREMENT_NAMES),
        "value": pa.array(ms["value"].astype(float)),
    })
    asm = res.tables["assessments"]
    assessments = pa.table({
        "client_id": _dict(local(asm["client"]), ids),
        "date": _dates(asm["date"]),
        "instrument": _dict(asm["instrument"], INSTRUMENTS),
        "scale": _dict(asm["scale"], SCALE_NAMES),
        "value": pa.array(asm["value"].astype(float)),
    })
    out = {"clients": clients, "events": events, "diagnoses": diagnoses, "measurements": measurements,
           "assessments": assessments}
    # Rows in a stable, readable order: by client, then date.
    for name, key, raw in (("events", "start", ev), ("diagnoses", "date", dg), ("measurements", "date", ms),
                           ("assessments", "date", asm)):
        order = np.lexsort((raw[key], raw["client"])) if len(raw[key]) else np.array([], np.int64)
        out[name] = out[name].take(pa.array(order, pa.int64()))
    return out


def _plan(cfg: SynthConfig) -> list[tuple[int, int, int]]:
    """(chunk, offset, residents) per chunk; offsets leave room for each chunk's entrants."""
    sizes = [min(cfg.chunk_size, cfg.clients - i) for i in range(0, cfg.clients, cfg.chunk_size)]
    stride = cfg.chunk_size * 3
    return [(k, k * stride, n) for k, n in enumerate(sizes)]


def _run_chunk(args: tuple) -> ChunkResult:
    cfg, chunk, offset, n, truth_months, spec = args
    layout, units = load_layout(cfg.county)
    n_months = _n_months(cfg)
    return simulate_chunk(seed=cfg.seed, chunk=chunk, offset=offset, n_initial=n, start=np.datetime64(cfg.start),
                          n_months=n_months, layout=layout, vocab=Vocab(units, f"{cfg.county}_hospital"),
                          prices=default_prices(), reps=truth_reps_by_month(cfg, truth_months),
                          missing_cost=cfg.missing_cost, truth_months=truth_months, spec=spec)


def _month_date(cfg: SynthConfig, m: int) -> str:
    return str((np.datetime64(cfg.start, "M") + m).astype("datetime64[D]"))


def truth_reps_by_month(cfg: SynthConfig, truth_months: list[int]) -> dict[int, int]:
    """Replicate futures at each truth month: ``truth_reps``, times the factor at the evaluated dates."""
    evaluated = {str(date.fromisoformat(d)) for d in cfg.evaluated_dates}
    return {m: cfg.truth_reps * (cfg.evaluated_reps_factor if _month_date(cfg, m) in evaluated else 1)
            for m in truth_months}


def _n_months(cfg: SynthConfig) -> int:
    s, e = np.datetime64(cfg.start, "M"), np.datetime64(cfg.end, "M")
    return int((e - s).astype(int)) + 1


def _truth_months(cfg: SynthConfig, horizon_days: int) -> list[int]:
    n_months = _n_months(cfg)
    end = np.datetime64(cfg.end, "D")
    months = []
    for m in range(12, n_months, 12):
        first = (np.datetime64(cfg.start, "M") + m).astype("datetime64[D]")
        if first + horizon_days - 1 <= end and m + 12 <= n_months:
            months.append(m)
    return months


def _validate_config(cfg: SynthConfig) -> None:
    start, end = date.fromisoformat(cfg.start), date.fromisoformat(cfg.end)
    if start.day != 1:
        raise ValueError(f"--start must be the first day of a month, got {cfg.start}")
    if (end + pd.Timedelta(days=1)).day != 1:
        raise ValueError(f"--end must be the last day of a month, got {cfg.end}")
    if end <= start:
        raise ValueError("--end must be after --start")
    if cfg.clients < 1 or cfg.truth_reps < 1 or cfg.chunk_size < 1 or cfg.evaluated_reps_factor < 1:
        raise ValueError("clients, truth_reps, evaluated_reps_factor and chunk_size must be positive")
    for d in cfg.evaluated_dates:
        try:
            date.fromisoformat(d)
        except (TypeError, ValueError):
            raise ValueError(f"evaluated_dates: {d!r} is not a date (YYYY-MM-DD)") from None


def generate_county(out_dir: str | Path, config: SynthConfig = SynthConfig(), progress=None, *,
                    overwrite: bool = False, extra_outputs=None) -> dict:
    """Simulate a county and write its tables, ``truth.parquet`` and ``manifest.json`` into ``out_dir``.

    The directory is built aside and swapped in only when complete, so an
    interrupted run never leaves half-written tables.

    Parameters
    ----------
    out_dir
        Destination folder. An earlier output of sote is replaced; a folder
        holding anything else is refused unless ``overwrite`` (then only sote's
        own files are replaced, see :mod:`features.contract.outputs`).
    config
        What to generate.
    progress
        Optional callable ``progress(done_chunks, total_chunks)``.
    overwrite
        Write into a folder that also holds files sote did not write.
    extra_outputs
        Optional callable ``extra_outputs(folder, config) -> dict`` run once the tables and
        the truth are written into the folder being built (before it is moved into place):
        it may add files there (``sote synth`` adds the county's ``projection.csv``, made by
        a layer that this package may not import) and returns manifest entries, added under
        their own keys.

    Returns
    -------
    dict
        The manifest: configuration, data period, row counts, realism figures and timings.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If ``out_dir`` holds files sote did not write and ``overwrite`` is False.
    """
    _validate_config(config)
    from features.contract.outputs import check_output_dir

    check_output_dir(out_dir, "--out", overwrite=overwrite)
    t_start = time.perf_counter()
    layout, units = load_layout(config.county)
    vocab = Vocab(units, f"{config.county}_hospital")
    spec = truth_spec()
    truth_months = _truth_months(config, spec.horizon_days)
    plan = _plan(config)
    jobs = [(config, k, off, n, truth_months, spec) for k, off, n in plan]
    counts = dict.fromkeys(("clients", "events", "diagnoses", "measurements", "assessments"), 0)
    truth_parts: list[list[dict]] = []
    rng_dirty = np.random.default_rng(np.random.SeedSequence([config.seed, 999_999]))
    fault_counts: dict[str, int] = {}
    with atomic_dir(out_dir, overwrite=overwrite, option="--out") as tmp:
        writers: dict[str, pq.ParquetWriter] = {}
        pool = ProcessPoolExecutor(config.workers) if config.workers > 1 and len(jobs) > 1 else None
        results = pool.map(_run_chunk, jobs) if pool else map(_run_chunk, jobs)
        try:
            for done, res in enumerate(results, 1):
                ids = client_ids(res.clients["client"], config.seed)
                tables = _to_arrow(res, ids, layout, units, vocab)
                if config.dirty:
                    from features.synth.dirty import inject_faults

                    tables, faults = inject_faults(tables, rng_dirty)
                    for k, v in faults.items():
                        fault_counts[k] = fault_counts.get(k, 0) + v
                for name, table in tables.items():
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(tmp / f"{name}.parquet", table.schema)
                    writers[name].write_table(table.cast(writers[name].schema))
                    counts[name] += table.num_rows
                for piece in res.truth:
                    piece["client_id"] = client_ids(piece["client"], config.seed)
                truth_parts.append(res.truth)
                if progress:
                    progress(done, len(jobs))
        finally:
            if pool:
                pool.shutdown()
            for w in writers.values():
                w.close()
        truth, realism = _assemble_truth(truth_parts, truth_months, config, spec)
        pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), tmp / "truth.parquet")
        manifest = {
            "generator": "sote synthetic county",
            "config": asdict(config),
            "period": {"start": config.start, "end": config.end},  # records after the end are contract errors
            "rows": counts,
            "truth_rows": len(truth),
            "truth_index_dates": sorted(truth["as_of"].dt.strftime("%Y-%m-%d").unique().tolist()),
            "truth_reps_by_date": {_month_date(config, m): r
                                   for m, r in truth_reps_by_month(config, truth_months).items()},
            "faults_injected": fault_counts,
            "truth_realism": realism,
        }
        if extra_outputs is not None:
            extra = extra_outputs(tmp, config)
            clash = sorted(set(extra) & set(manifest))
            if clash:
                raise ValueError(f"extra_outputs: manifest key(s) {clash} are the generator's own")
            manifest.update(extra)
        manifest["seconds"] = round(time.perf_counter() - t_start, 1)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def _max_or_none(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return round(float(x.max()), 4) if len(x) else None


def _assemble_truth(parts: list[list[dict]], truth_months: list[int], cfg: SynthConfig, spec: TruthSpec
                    ) -> tuple[pd.DataFrame, dict]:
    """Long-form truth: per index date, the realised-cost thresholds turn cost samples into probabilities.

    ``rising_high_use`` is the one cohort that needs the whole county: last
    year's recorded cost at or below the population's quantile (in cents, as
    the labels compare it) and no intensive episode running at T; its
    probability is that of next year's cost above the whole population's
    threshold, from the same futures as ``high_use``.
    """
    q = _quantiles()
    frames, realism = [], {}
    for i in range(len(truth_months)):
        pieces = [p[i] for p in parts]
        as_of = pd.Timestamp(np.datetime64(int(pieces[0]["as_of_day"]), "D"))
        realised = np.concatenate([p["realised_cost"] for p in pieces])
        samples = np.concatenate([p["cost_samples"] for p in pieces])
        prior = np.concatenate([p["prior_cost"] for p in pieces])
        prior_threshold = float(np.quantile(prior, spec.rising_prior_quantile))
        cohorts = {t: np.concatenate([p["cohorts"][t] for p in pieces]) for t in TRUTH_TARGETS
                   if t != "rising_high_use"}
        cohorts["rising_high_use"] = (prior <= prior_threshold) & ~np.concatenate(
            [p["intensive_ongoing"] for p in pieces])
        ids = np.concatenate([p["client_id"] for p in pieces])
        arche = np.concatenate([p["archetype"] for p in pieces])
        expected = samples.mean(axis=1)
        thr_all = float(np.quantile(realised, q["high_use"]))
        diab = cohorts["diabetes_high_use"]
        thr_diab = float(np.quantile(realised[diab], q["diabetes_high_use"])) if diab.any() else np.inf
        thr_rising = float(np.quantile(realised, spec.rising_quantile))
        prob, se, half = {}, {}, {}
        for target, thr in (("high_use", thr_all), ("rising_high_use", thr_rising), ("diabetes_high_use", thr_diab)):
            prob[target], se[target] = mean_and_se(samples > thr)
            half[target] = half_mean(samples > thr)
        for target in ("elderly_low_function", "young_adult_mhsu"):
            prob[target] = np.concatenate([p[f"p_{target}"] for p in pieces])
            se[target] = np.concatenate([p[f"se_{target}"] for p in pieces])
            half[target] = np.concatenate([p[f"half_{target}"] for p in pieces])
        for target in TRUTH_TARGETS:
            keep = cohorts[target]
            frames.append(pd.DataFrame({
                "client_id": ids[keep], "as_of": as_of, "target": target,
                "probability": prob[target][keep].astype(float),
                "probability_se": se[target][keep].astype(float),
                "probability_half": half[target][keep].astype(float),
                "archetype": pd.Categorical.from_codes(arche[keep], ARCHETYPES),
                "expected_cost_eur": expected[keep].astype(float),
            }))
        realism[str(as_of.date())] = {
            "population": int(len(ids)), "high_use_threshold_eur": round(thr_all, 0),
            "diabetes_threshold_eur": round(thr_diab, 0), "prior_cost_threshold_eur": round(prior_threshold, 0),
            "cohort_sizes": {t: int(c.sum()) for t, c in cohorts.items()},
            "replicate_futures": int(samples.shape[1]),
            "max_probability_se": {t: _max_or_none(se[t][cohorts[t]]) for t in TRUTH_TARGETS},
        }
    truth = pd.concat(frames, ignore_index=True)
    truth["target"] = truth["target"].astype("category")
    return truth, realism
