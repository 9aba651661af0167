"""Segmentation ablation: what each representation and method choice does, on synthetic counties.

For every county folder given, the client histories are built at ``--as-of``
(next year's cost must be in the data) and, per representation (block
handling and tail transform) × method × k: the adjusted Rand index against the
county's true latent groups (``truth.parquet``'s ``archetype`` — measured
here, never used to build or choose segments), bootstrap stability, the
smallest segment's share, the out-of-time η² of next year's cost and the η² of
as many bands of last year's cost. Then what ``--method auto`` chooses and the
need-based rule segments, side by side. Figures go to
``benchmarks/results/segmentation_ablation[_TAG].csv`` and ``segmentation_methods[_TAG].csv``
(and each county's candidates of ``auto`` to ``segmentation_auto_<county>.csv``).

    .venv/bin/python benchmarks/bench_segmentation.py /tmp/seg20k_s1 /tmp/seg20k_s2 /tmp/seg20k_ita
    .venv/bin/python benchmarks/bench_segmentation.py /tmp/c --variants equal --methods kmeans --k 5 8
    .venv/bin/python benchmarks/bench_segmentation.py /tmp/c --variants equal2w15 --methods kmeans --refits 0 --no-auto

``--bootstrap`` and ``--refits`` default to ``Segmenter``'s defaults (8 and 10); ``--refits 0`` is the
former single k-means fit (4 initialisations, lowest inertia).

A feature table can be cached next to the run with ``--cache DIR`` (one Parquet per county and date).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segmentation.cluster import Segmenter, cost_bands, eta_squared
from segmentation.compare import compare_methods, synthetic_archetypes
from segmentation.preprocess import CONDITIONS_WEIGHT, FOUR_BLOCKS, TWO_BLOCKS, UseProfileTransformer
from segmentation.segments import segment_clients

VARIANTS = {
    "none": {},                                                  # every standardised column the same weight
    "equal": {"block_scaling": "equal"},                         # conditions / service use / person equal
    "equal4": {"block_scaling": "equal", "blocks": FOUR_BLOCKS},  # level of use a block of its own
    "equal2": {"block_scaling": "equal", "blocks": TWO_BLOCKS},   # conditions / use and person
    "equal2w15": {"block_scaling": "equal", "blocks": TWO_BLOCKS,  # the same, conditions 1.5 times (default)
                  "block_weights": CONDITIONS_WEIGHT},
    "equal2w2": {"block_scaling": "equal", "blocks": TWO_BLOCKS,   # the same, conditions twice
                 "block_weights": (("conditions", 2.0),)},
    "pca": {"block_scaling": "pca", "block_components": 6},      # per-block PCA, then equal
    "rank": {"tail": "rank"},                                    # quantiles instead of log1p
}
RESULTS = Path(__file__).parent / "results"


def county_features(folder: Path, as_of: str, cache: Path | None) -> pd.DataFrame:
    """Features at ``as_of`` with ``__next_cost`` (cost over the following 365 days)."""
    path = None if cache is None else cache / f"{folder.name}_{as_of}.parquet"
    if path is not None and path.exists():
        return pd.read_parquet(path)
    from features.contract.load import load_tables
    from segmentation.segments import horizon_cost
    from segmentation.snapshots import features_at, next_year_covered

    tables = load_tables(folder)
    events = tables.tables["events"]
    if not next_year_covered(events, as_of):
        raise SystemExit(f"{folder}: the data do not cover the year after {as_of}")
    features = features_at(tables, as_of)
    features["__next_cost"] = horizon_cost(events, features["client_id"], as_of).to_numpy()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        features.to_parquet(path)
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counties", nargs="+", type=Path)
    parser.add_argument("--as-of", default="2024-01-01")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--methods", default="kmeans,gmm")
    parser.add_argument("--k", nargs=2, type=int, default=(5, 12))
    parser.add_argument("--bootstrap", type=int, default=8)
    parser.add_argument("--refits", type=int, default=10,
                        help="k-means: most central of this many bootstrap runs (0: one fit, 4 initialisations).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--no-auto", action="store_true", help="Skip the --method auto / needs comparison.")
    parser.add_argument("--no-ablation", action="store_true", help="Only the --method auto / needs comparison.")
    parser.add_argument("--tag", default="", help="Suffix of the result files (parallel runs do not overwrite).")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    tag = f"_{args.tag}" if args.tag else ""
    rows, methods = [], []
    for folder in args.counties:
        features = county_features(folder, args.as_of, args.cache)
        next_cost = features.pop("__next_cost").astype(float)
        arch = synthetic_archetypes(folder, args.as_of, features["client_id"])
        known = pd.notna(arch)
        features, next_cost, arch = (features[known].reset_index(drop=True), next_cost[known].reset_index(drop=True),
                                     arch[known].astype(str))
        prior = features["cost_total_365d"].to_numpy(float)
        for variant in ([] if args.no_ablation else args.variants.split(",")):
            Z = UseProfileTransformer(**VARIANTS[variant]).fit_transform(features)
            for method in args.methods.split(","):
                seg = Segmenter(method=method, n_bootstrap=args.bootstrap, n_refits=args.refits,
                                random_state=args.seed)
                for k in range(args.k[0], args.k[1] + 1):
                    t = time.perf_counter()
                    model, centers = seg._fit_central(Z, k, args.seed)
                    labels = seg._assign(model, centers, Z)
                    stab = seg._stability(Z, k, labels, np.random.default_rng([args.seed, k]))
                    row = {"county": folder.name, "variant": variant, "method": method, "refits": args.refits, "k": k,
                           "ari": adjusted_rand_score(arch, labels), "stability": float(np.mean(stab)),
                           "min_share": np.bincount(labels, minlength=k).min() / len(labels),
                           "eta2": eta_squared(labels, next_cost), "eta2_bands": eta_squared(cost_bands(prior, k),
                                                                                            next_cost),
                           "seconds": time.perf_counter() - t}
                    rows.append(row)
                    print({k2: round(v, 3) if isinstance(v, float) else v for k2, v in row.items()}, flush=True)
                pd.DataFrame(rows).to_csv(RESULTS / f"segmentation_ablation{tag}.csv", index=False)
        if args.no_auto:
            continue
        t = time.perf_counter()
        auto = segment_clients(features, "auto", next_year_cost=next_cost, random_state=args.seed,
                               n_bootstrap=args.bootstrap, n_refits=args.refits)
        needs = segment_clients(features, "needs", next_year_cost=next_cost)
        grid = segment_clients(features, "grid", next_year_cost=next_cost)
        table = compare_methods(features, {f"auto ({auto.method})": auto, "needs": needs, "grid": grid}, next_cost,
                                np.asarray(arch, dtype=object))
        table.insert(0, "county", folder.name)
        table["seconds_auto"] = time.perf_counter() - t
        methods.append(table)
        print(table.round(3).to_string(index=False), flush=True)
        pd.concat(methods).to_csv(RESULTS / f"segmentation_methods{tag}.csv", index=False)
        auto.selection.assign(county=folder.name).to_csv(RESULTS / f"segmentation_auto_{folder.name}.csv",
                                                         index=False)


if __name__ == "__main__":
    main()
