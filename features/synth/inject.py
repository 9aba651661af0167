"""Injected label bias: a generated county in which one group's recorded use is suppressed at equal need.

A utilisation label measures use, not need. To test that the label-bias check
(:func:`models.bias.label_bias`) notices a group whose needs reach services less
often, :func:`suppress_group_use` copies a generated county and drops a seeded
share of one group's service events (visits and episode rows) while keeping
everything that records need: diagnoses, RAI assessments, measurements and
deaths. The group's members are as sick as before; less of it is recorded as
use, in their history and in their future alike.

The new folder is written atomically (built aside, swapped in whole) under
sote's output rules (:mod:`features.contract.outputs`): it may not overlap the
source, and a folder holding files sote did not write is refused unless
``overwrite``. The generator's ``truth.parquet`` is left out: its
probabilities describe the county before the injection, so the new folder's
oracle would be misleading. ``manifest.json`` keeps the source's manifest
(the data period is read from it) with the event count updated and an
``injection`` record: the group, the share, the seed and how many rows went.

>>> suppress_group_use("out/county", "out/county_sv_suppressed", column="language", value="sv",
...                    share=0.5, seed=1)  # doctest: +SKIP
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.io import atomic_dir
from features.contract.outputs import MANIFEST, check_not_input, is_temp
from features.contract.tables import SERVICE_LINES
from features.provenance import file_digest

#: Columns of the clients table a suppressed group may be defined by.
GROUP_COLUMNS = ("language", "municipality", "sex", "unit")
#: Entries of the source folder not copied as they are: rewritten, or describing the county before injection.
_NOT_COPIED = {"events.parquet", "truth.parquet", "manifest.json", MANIFEST}


def _member(column: pa.ChunkedArray, values) -> np.ndarray:
    """Whether each value of a (dictionary-encoded) text column is one of ``values``; decoded once per level."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        levels = np.isin(array.dictionary.cast(pa.string()).to_numpy(zero_copy_only=False), values)
        codes = array.indices.to_numpy(zero_copy_only=False)
        return np.asarray(levels, bool)[codes] & array.is_valid().to_numpy(zero_copy_only=False)
    return np.isin(array.cast(pa.string()).to_numpy(zero_copy_only=False), values)


def _group_ids(clients: pa.Table, column: str, value: str) -> np.ndarray:
    values = clients.column(column).cast(pa.string()).to_numpy(zero_copy_only=False)
    ids = clients.column("client_id").cast(pa.string()).to_numpy(zero_copy_only=False)
    return ids[values == value]


def suppress_group_use(source: str | Path, out: str | Path, *, column: str, value: str, share: float,
                       seed: int = 0, services: tuple[str, ...] | list[str] | None = None,
                       overwrite: bool = False) -> dict:
    """Write a copy of a generated county with a seeded share of one group's events removed.

    Parameters
    ----------
    source
        A county folder written by :func:`features.synth.generate_county`
        (``clients.parquet``, ``events.parquet``, ``manifest.json``).
    out
        The new county folder.
    column, value
        The group: clients whose ``column`` (one of :data:`GROUP_COLUMNS`) equals ``value``
        (e.g. ``language`` = ``sv``, ``municipality`` = ``Mäntsälä``).
    share
        Each of the group's event rows (of ``services``) is dropped with this probability, in (0, 1].
    seed
        Seed of the draws: one uniform number per event row of the source, in file order, so the
        same source, share and seed always drop the same rows.
    services
        Service lines whose events are suppressed (default: every line).
    overwrite
        Write into an existing folder that also holds files sote did not write (only sote's files
        are replaced).

    Returns
    -------
    dict
        The new folder's manifest; its ``injection`` entry records the group, ``share``, ``seed``,
        ``services``, ``group_clients``, ``group_events`` (before), ``events_removed``, and the
        digest of the source's ``events.parquet``.

    Raises
    ------
    ValueError
        For an unknown column, a share outside (0, 1], an unknown service line, a value no client
        has, or a source that is not a generated county.
    features.contract.outputs.OutputRefused
        If ``out`` overlaps ``source`` or holds files sote did not write (without ``overwrite``).
    """
    source, out = Path(source), Path(out)
    if column not in GROUP_COLUMNS:
        raise ValueError(f"column must be one of {list(GROUP_COLUMNS)}, got {column!r}")
    if not 0.0 < float(share) <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    services = tuple(services) if services else tuple(SERVICE_LINES)
    unknown = sorted(set(services) - set(SERVICE_LINES))
    if unknown:
        raise ValueError(f"unknown service line(s) {unknown}; known: {list(SERVICE_LINES)}")
    missing = [name for name in ("clients.parquet", "events.parquet", "manifest.json")
               if not (source / name).is_file()]
    if missing:
        raise ValueError(f"{source} is not a generated county (no {', '.join(missing)}); "
                         "suppress_group_use copies the output of `sote synth`")
    check_not_input(out, [source], "--out")

    clients = pq.read_table(source / "clients.parquet", columns=["client_id", column])
    ids = _group_ids(clients, column, value)
    if len(ids) == 0:
        raise ValueError(f"no client has {column} = {value!r} in {source}")
    events = pq.read_table(source / "events.parquet")
    in_group = _member(events.column("client_id"), ids) & _member(events.column("service"), list(services))
    draws = np.random.default_rng(seed).random(events.num_rows)
    drop = in_group & (draws < share)
    kept = events.filter(pa.array(~drop))

    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    manifest.setdefault("rows", {})["events"] = kept.num_rows
    manifest.pop("truth_rows", None)
    manifest.pop("truth_index_dates", None)
    manifest["injection"] = {
        "kind": "suppressed use at equal need",
        "column": column, "value": value, "share": float(share), "seed": int(seed), "services": list(services),
        "group_clients": int(len(ids)), "group_events": int(in_group.sum()), "events_removed": int(drop.sum()),
        "source_events_digest": file_digest(source / "events.parquet"),
        "kept": "clients, diagnoses, measurements, assessments (need) unchanged; truth.parquet left out",
    }
    with atomic_dir(out, overwrite=overwrite, option="--out") as tmp:
        for entry in sorted(source.iterdir()):
            if entry.name in _NOT_COPIED or is_temp(entry.name):
                continue
            if entry.is_dir():
                shutil.copytree(entry, tmp / entry.name)
            else:
                shutil.copyfile(entry, tmp / entry.name)
        pq.write_table(kept, tmp / "events.parquet")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest
