"""Realistic data faults for ``sote synth --dirty``, so validation can be tested on them.

Each fault hits its own rows (no row gets two faults), and the counts are
returned, so a test can check that validation rejects exactly what was injected.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa

#: Share of rows of a table hit by each fault.
FAULTS: dict[str, tuple[str, float]] = {
    "events.duplicate_row": ("events", 0.002),
    "events.unknown_client": ("events", 0.001),
    "events.negative_cost": ("events", 0.001),
    "events.before_birth": ("events", 0.0005),
    "events.end_before_start": ("events", 0.0005),
    "events.unknown_service": ("events", 0.0005),
    "diagnoses.malformed_code": ("diagnoses", 0.002),
    "diagnoses.unknown_system": ("diagnoses", 0.001),
    "diagnoses.unknown_client": ("diagnoses", 0.001),
    "measurements.out_of_range": ("measurements", 0.001),
    "assessments.out_of_scale": ("assessments", 0.001),
    "clients.duplicate_id": ("clients", 0.001),
    "clients.bad_sex": ("clients", 0.001),
}


def _plain(table: pa.Table) -> pa.Table:
    """Decode dictionary columns so values outside the vocabulary can be written."""
    return pa.table({name: (col.dictionary_decode() if pa.types.is_dictionary(col.type) else col)
                     for name, col in zip(table.column_names, [c.combine_chunks() for c in table.columns])})


def _set(table: pa.Table, column: str, rows: np.ndarray, values) -> pa.Table:
    col = table[column].to_pandas().to_numpy(dtype=object, copy=True)
    col[rows] = values
    arr = pa.array(list(col), type=table.schema.field(column).type, from_pandas=True)
    return table.set_column(table.schema.get_field_index(column), column, arr)


def inject_faults(tables: dict[str, pa.Table], rng: np.random.Generator) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Return the tables with faults injected, and how many rows each fault hit."""
    out = {name: _plain(t) for name, t in tables.items()}
    counts: dict[str, int] = {}
    free = {name: np.ones(t.num_rows, bool) for name, t in out.items()}

    def pick(table: str, share: float) -> np.ndarray:
        candidates = np.flatnonzero(free[table])
        # At least one row per fault, so even a small county shows every kind.
        k = min(len(candidates), max(1, int(rng.binomial(out[table].num_rows, share))))
        rows = np.sort(rng.choice(candidates, k, replace=False)) if k else np.array([], np.int64)
        free[table][rows] = False
        return rows

    for fault, (table, share) in FAULTS.items():
        rows = pick(table, share)
        counts[fault] = len(rows)
        if not len(rows):
            continue
        t = out[table]
        kind = fault.split(".", 1)[1]
        if kind == "unknown_client":
            t = _set(t, "client_id", rows, [f"zz{x:010x}" for x in rng.integers(0, 2**40, len(rows))])
        elif kind == "negative_cost":
            t = _set(t, "cost_eur", rows, -np.abs(rng.normal(100, 50, len(rows))) - 1)
        elif kind == "before_birth":
            births = dict(zip(out["clients"]["client_id"].to_pylist(), out["clients"]["birth_date"].to_pylist()))
            ids = t["client_id"].to_pylist()
            t = _set(t, "start", rows, [births[ids[r]] - timedelta(days=400) for r in rows])
            t = _set(t, "end", rows, [None] * len(rows))
        elif kind == "end_before_start":
            starts = t["start"].to_pylist()
            t = _set(t, "end", rows, [starts[r] - timedelta(days=365) for r in rows])
        elif kind == "unknown_service":
            t = _set(t, "service", rows, "dental_lab")
        elif kind == "malformed_code":
            t = _set(t, "code", rows, [["E1X.9", "??", "12345", "T9"][i % 4] for i in range(len(rows))])
        elif kind == "unknown_system":
            t = _set(t, "system", rows, "SNOMED-CT")
        elif kind == "out_of_range":
            t = _set(t, "value", rows, 5000.0)
        elif kind == "out_of_scale":
            t = _set(t, "value", rows, 42.0)
        elif kind == "bad_sex":
            t = _set(t, "sex", rows, "N")
        out[table] = t
        if kind in ("duplicate_row", "duplicate_id"):
            out[table] = pa.concat_tables([t, t.take(pa.array(rows))])
            free[table] = np.concatenate([free[table], np.zeros(len(rows), bool)])
    return out, counts
