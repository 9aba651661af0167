"""Tile a generated county: N copies of every client under fresh client ids, Parquet to Parquet in DuckDB.

    python benchmarks/tile_county.py out/county out/county_x5 --copies 5

Copy ``k`` (0 to N-1) of a client keeps every record and renames the client
``<client_id><k>`` with ``k`` zero-padded to a fixed width, so the new ids
are unique whenever the base ids are. The canonical tables hold no other
identifier (events, diagnoses, measurements and assessments are keyed by
``client_id`` alone; units, municipalities and professionals are shared
vocabulary), so nothing else needs renaming. ``truth.parquet`` is tiled the
same way, so ``sote train``'s oracle finds every client; ``dataset.yaml``
is copied as is, and ``manifest.json`` (the synthetic county's, which also
declares its period) is copied with its row counts updated and a ``tiling``
entry added, so the period checks of every command pass on the tiled county.

Each table goes through one DuckDB ``COPY (SELECT … UNION ALL …) TO`` per
file: the rows stream from the base Parquet to the new Parquet and never come
into pandas, so tiling a county to millions of clients needs little memory
(DuckDB's ``memory_limit``, 2 GB by default here). The base files' Arrow
schema (dictionary-encoded text, as ``sote synth`` writes it) is carried
over, so the tiled tables read back into the same types as the base.

The folder is written atomically (:func:`features.contract.io.atomic_dir`,
which records it as sote's in ``.sote-manifest.json``). A ``tiling.json``
names the base, its file sizes and modification times and the number of
copies; :func:`is_current` uses it to reuse a tiled county.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

#: The tables copied with their ids renamed: the canonical ones and the synthetic county's truth.
ID_TABLES: tuple[str, ...] = ("clients", "events", "diagnoses", "measurements", "assessments", "truth")
#: Files copied unchanged (the period declarations).
DECLARATIONS: tuple[str, ...] = ("dataset.yaml",)
SYNTH_MANIFEST = "manifest.json"
TILING = "tiling.json"


class TilingError(ValueError):
    """A base folder that cannot be tiled (missing, CSV tables, no client_id column); names the file."""


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def base_tables(base: Path) -> dict[str, Path]:
    """The Parquet files (or Parquet folders) of ``base`` to tile, by table.

    Raises
    ------
    TilingError
        If the folder is missing, lacks ``clients`` or ``events``, or holds a table as CSV.
    """
    if not base.is_dir():
        raise TilingError(f"base county {base} is not a folder")
    found = {}
    for table in ID_TABLES:
        for name in (f"{table}.csv", f"{table}.csv.gz"):
            if (base / name).exists():
                raise TilingError(f"{base / name}: only Parquet tables are tiled (convert the county with "
                                  "`sote validate --out` first)")
        if (base / f"{table}.parquet").is_file():
            found[table] = base / f"{table}.parquet"
        elif (base / table).is_dir():
            found[table] = base / table
    missing = [t for t in ("clients", "events") if t not in found]
    if missing:
        raise TilingError(f"base county {base} lacks {', '.join(missing)} (expected <table>.parquet or <table>/)")
    return found


def _source(path: Path) -> str:
    return f"read_parquet({_sql_text(str(path / '**' / '*.parquet') if path.is_dir() else str(path))})"


def _arrow_schema(path: Path) -> bytes | None:
    """The base file's stored Arrow schema (kept so the copy reads back into the same types), if any."""
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        return None
    meta = pq.read_metadata(files[0]).metadata or {}
    return meta.get(b"ARROW:schema")


def _fingerprint(base: Path) -> list[dict]:
    entries = []
    for entry in sorted(base.rglob("*")):
        if entry.is_file() and not entry.name.startswith(".sote"):
            st = entry.stat()
            entries.append({"file": str(entry.relative_to(base)), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return entries


def is_current(out: Path, base: Path, copies: int) -> bool:
    """True if ``out`` is a tiling of ``base`` (unchanged since) into ``copies`` copies."""
    try:
        info = json.loads((out / TILING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (info.get("base") == str(base.resolve()) and info.get("copies") == copies
            and info.get("base_files") == _fingerprint(base))


def tile_table(con, src: Path, dst: Path, copies: int, width: int) -> int:
    """Write ``copies`` copies of one table from ``src`` to the Parquet file ``dst``; return the rows written."""
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_source(src)}").fetchall()]
    if "client_id" not in columns:
        raise TilingError(f"{src}: no client_id column; cannot give the copies fresh ids")
    parts = [f"SELECT * REPLACE (CAST(client_id AS VARCHAR) || {_sql_text(str(k).zfill(width))} AS client_id) "
             f"FROM {_source(src)}" for k in range(copies)]
    options = ["FORMAT parquet"]
    schema = _arrow_schema(src)
    if schema is not None:
        options.append("KV_METADATA {'ARROW:schema': " + _sql_text(schema.decode("ascii")) + "}")
    con.execute(f"COPY ({' UNION ALL '.join(parts)}) TO {_sql_text(str(dst))} ({', '.join(options)})")
    return con.execute(f"SELECT COUNT(*) FROM read_parquet({_sql_text(str(dst))})").fetchone()[0]


def tile_county(base: str | Path, out: str | Path, copies: int, *, memory_limit: str = "2GB",
                threads: int | None = None, overwrite: bool = False) -> dict:
    """Write ``copies`` copies of the county in ``base`` under fresh client ids into ``out``, atomically.

    Parameters
    ----------
    base
        A county folder of Parquet tables (e.g. ``sote synth``'s output), with
        ``truth.parquet``, ``manifest.json`` and ``dataset.yaml`` if present.
    out
        The tiled county's folder; replaced whole if sote wrote it, refused if
        it holds other files (unless ``overwrite``, see
        :func:`features.contract.io.atomic_dir`).
    copies
        Number of copies (1 renames the ids only).
    memory_limit, threads
        DuckDB's settings for the copying.
    overwrite
        Accept an ``out`` folder that holds files sote did not write.

    Returns
    -------
    dict
        ``rows`` per table, ``copies``, ``seconds``.

    Raises
    ------
    TilingError
        If ``base`` cannot be tiled.
    features.contract.outputs.OutputRefused
        If ``out`` holds files sote did not write, or lies inside ``base``.
    """
    import duckdb

    from features.contract.io import atomic_dir

    base, out = Path(base).resolve(), Path(out).resolve()
    if copies < 1:
        raise TilingError(f"--copies {copies}: give at least 1")
    if out == base or base in out.parents:
        raise TilingError(f"output {out} lies inside the base county {base}; choose a folder outside it")
    tables = base_tables(base)
    width = len(str(copies - 1))
    t0 = time.perf_counter()
    rows = {}
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {_sql_text(memory_limit)}")
    con.execute("SET preserve_insertion_order = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    try:
        with atomic_dir(out, overwrite=overwrite, option="tiled county") as tmp:
            con.execute(f"SET temp_directory = {_sql_text(str(tmp / '.duckdb_tmp'))}")
            for table, src in tables.items():
                rows[table] = tile_table(con, src, tmp / f"{table}.parquet", copies, width)
            shutil.rmtree(tmp / ".duckdb_tmp", ignore_errors=True)
            for name in DECLARATIONS:
                if (base / name).is_file():
                    shutil.copy2(base / name, tmp / name)
            if (base / SYNTH_MANIFEST).is_file():
                manifest = json.loads((base / SYNTH_MANIFEST).read_text(encoding="utf-8"))
                manifest["rows"] = {t: n for t, n in rows.items() if t != "truth"}
                if "truth_rows" in manifest:
                    manifest["truth_rows"] = rows.get("truth")
                manifest["tiling"] = {"base": str(base), "copies": copies}
                (tmp / SYNTH_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
            seconds = round(time.perf_counter() - t0, 1)
            (tmp / TILING).write_text(json.dumps({
                "base": str(base), "copies": copies, "id_suffix_width": width, "rows": rows, "seconds": seconds,
                "base_files": _fingerprint(base)}, indent=2) + "\n", encoding="utf-8")
    finally:
        con.close()
    return {"rows": rows, "copies": copies, "seconds": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path, help="county folder to copy (Parquet tables)")
    ap.add_argument("out", type=Path, help="folder for the tiled county")
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit while copying")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--overwrite", action="store_true", help="write into a folder that holds other files")
    args = ap.parse_args(argv)
    ROOT = Path(__file__).resolve().parents[1]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        made = tile_county(args.base, args.out, args.copies, memory_limit=args.memory_limit, threads=args.threads,
                           overwrite=args.overwrite)
    except (TilingError, OSError) as err:
        print(f"tile_county: {err}", file=sys.stderr)
        return 2
    print(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
