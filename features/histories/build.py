"""Client histories as of an index date: the Python API over the compiled SQL.

>>> from features.histories.build import build_features
>>> X = build_features("out/county", "2024-01-01")          # doctest: +SKIP

:class:`ClientHistories` registers the tables with an engine once and builds
the feature table for any number of index dates; :func:`build_features` is the
one-call form. Only records dated before T reach a feature; the rules are in
docs/features.md.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from features.contract.tables import TABLES
from features.contract.costs import load_unit_costs
from features.histories.engine import DuckDBEngine, Engine
from features.contract.io import find_table
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS, STRING_COLUMNS
from features.histories.spec import FeatureSpec, load_spec
from features.histories.sql import SELECTED, compile_features, unit_rates_frame
from features.contract.stream import ValidatedDataset, open_dataset
from features.contract.validation import ValidatedTables

#: Clients per query per GiB of the engine's memory limit when no count is given: a larger population is
#: built in shares of about this many clients per GiB. On the 1.33 M county (76 events a client) a share of
#: 663,000 clients completes within a 3.7 GiB limit and not within 2.7 GiB (docs/scale.md, session 10), so
#: this leaves about half the memory a share was measured to need spare; DuckDB's default 5.4 GiB on a
#: 24 GB machine gives 700,000 clients (the 1.33 M county in 2 shares, each share costing ~5 s of CPU).
CLIENTS_PER_GIB = 130_000
#: Clients per query for an engine that does not report a memory limit.
CLIENTS_PER_QUERY = 450_000


def _env_clients_per_query() -> int | None:
    """``$SOTE_CLIENTS_PER_QUERY`` as a positive whole number (None when unset or empty)."""
    text = os.environ.get("SOTE_CLIENTS_PER_QUERY", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"SOTE_CLIENTS_PER_QUERY={text!r}: a positive whole number of clients, such as 500000")
    return int(text)


def default_clients_per_query(engine) -> int:
    """Clients per query for ``engine``: :data:`CLIENTS_PER_GIB` per GiB of its memory limit (at least 10,000)."""
    limit = getattr(engine, "memory_limit_bytes", None)
    if limit is None:
        return CLIENTS_PER_QUERY
    return max(10_000, int(round(CLIENTS_PER_GIB * limit() / 2**30, -4)))

TableSource = str | Path | Mapping[str, pd.DataFrame] | ValidatedTables | ValidatedDataset


def resolve_spec(spec: FeatureSpec | str | Path | None) -> FeatureSpec:
    """A :class:`FeatureSpec` from a spec, a YAML path, or None (the packaged default)."""
    if isinstance(spec, FeatureSpec):
        return spec
    return load_spec(spec)


def empty_table(table: str) -> pd.DataFrame:
    """An empty canonical table with the contract's column types (for tables a county lacks)."""
    cols: dict[str, pd.Series] = {}
    for c in STRING_COLUMNS[table]:
        cols[c] = pd.Series([], dtype="string")
    for c in DATE_COLUMNS[table]:
        cols[c] = pd.Series([], dtype="datetime64[s]")
    for c in FLOAT_COLUMNS[table]:
        cols[c] = pd.Series([], dtype=float)
    return pd.DataFrame(cols)


def load_source(data: TableSource, *, validate: bool = True) -> dict[str, pd.DataFrame | Path]:
    """Resolve ``data`` to one entry per table: a DataFrame, or a Parquet path for the engine to scan.

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, validated tables, or a
        validated dataset (:func:`features.contract.stream.open_dataset`), whose
        Parquet files the engine scans in place: nothing comes into pandas.
    validate
        For a folder: read it with :func:`features.contract.load.load_tables` (validated,
        costs filled; raises on a broken contract). :class:`ClientHistories` given a
        folder validates it into a dataset instead and scans its Parquet. With
        False, Parquet tables are scanned in place by the engine, which is much
        faster for data already validated (e.g. written by ``sote validate --out`` or ``sote synth``).

    Raises
    ------
    FileNotFoundError
        If the folder or its clients/events tables are missing.
    features.contract.validation.ContractError
        If ``validate`` and the data break the contract.
    """
    if isinstance(data, ValidatedDataset):
        return dict(data.paths())
    if isinstance(data, ValidatedTables):
        data = data.tables
    if isinstance(data, Mapping):
        missing = [t for t in ("clients", "events") if t not in data]
        if missing:
            raise ValueError(f"tables {missing} are required to build client histories")
        return {t: data[t] if t in data else empty_table(t) for t in TABLES}
    path = Path(data)
    if validate:
        from features.contract.load import load_tables

        return dict(load_tables(path).tables)
    if not path.is_dir():
        raise FileNotFoundError(f"data directory not found: {path}")
    out: dict[str, pd.DataFrame | Path] = {}
    for table in TABLES:
        found = find_table(path, table)
        if found is None:
            if table in ("clients", "events"):
                raise FileNotFoundError(f"table '{table}' not found in {path}")
            out[table] = empty_table(table)
        elif found.is_dir() or found.suffix == ".parquet":
            out[table] = found
        else:
            from features.contract.io import read_tables

            out[table] = read_tables(path, (table,))[0][table]
    return out


def _typed(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The engine's result in the spec's column types, sorted by ``client_id`` (the query has no ORDER BY)."""
    dtypes = {"int": "int64", "float": "float64", "str": "str"}
    names = ["client_id"] + [c.name for c in spec.columns()]
    frame = frame[names].astype({"client_id": "str", **{c.name: dtypes[c.dtype] for c in spec.columns()}})
    order = frame["client_id"].argsort(kind="stable").to_numpy()
    return frame.take(order).reset_index(drop=True)


class ClientHistories:
    """Feature tables of one data source for any number of index dates.

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, validated tables or a validated
        dataset. A folder with ``validate`` is validated once into a dataset
        (:func:`features.contract.stream.open_dataset`, a validated copy is used as
        is) whose Parquet the engine scans; :meth:`close` (or ``with``) removes a
        temporary copy.
    spec
        A :class:`FeatureSpec`, a spec YAML path, or None for the packaged default.
    engine
        Any :class:`~features.histories.engine.Engine`; a fresh :class:`DuckDBEngine` by default.
    validate
        See :func:`load_source`.
    cache
        Keep each date's feature table, so several targets trained on the same
        dates build their features once: ``True`` (or ``"memory"``) in memory (a
        copy is returned each time), ``"disk"`` as Parquet in a private temporary
        folder read back on each request (the same frame; nothing held between
        requests: a long pipeline such as the demo keeps several dates without
        their ~2 kB a resident each; removed by :meth:`close`).
    clients_per_query
        With an engine that can restrict its tables to a share of the clients
        (:meth:`DuckDBEngine.restrict`), a population larger than this is built
        in shares of about this many clients, one query each, so that the
        per-client window functions and aggregates stay within the engine's
        memory limit (every feature is per client, so the result is the same).
        None: ``$SOTE_CLIENTS_PER_QUERY``, else :func:`default_clients_per_query` (from the
        engine's memory limit: ``$SOTE_DUCKDB_MEMORY_LIMIT`` sizes the shares too).
    """

    def __init__(self, data: TableSource, spec: FeatureSpec | str | Path | None = None, *,
                 engine: Engine | None = None, validate: bool = True, cache: bool | str = False,
                 clients_per_query: int | None = None):
        self.spec = resolve_spec(spec)
        told = clients_per_query or _env_clients_per_query()  # a wrong count fails before anything is opened
        if cache not in (False, True, "memory", "disk"):
            raise ValueError(f"cache={cache!r}: False, True, 'memory' or 'disk'")
        self._cache: dict[pd.Timestamp, pd.DataFrame | Path] | None = {} if cache else None
        self._cache_dir = tempfile.TemporaryDirectory(prefix="sote-features-cache-") if cache == "disk" else None
        self.engine = engine if engine is not None else DuckDBEngine()
        self.clients_per_query = told or default_clients_per_query(self.engine)
        self.dataset: ValidatedDataset | None = None  # opened here from a folder: closed by close()
        if validate and isinstance(data, (str, Path)):
            data = self.dataset = open_dataset(data)
        self.tables = load_source(data, validate=validate)
        for name, table in self.tables.items():
            self.engine.register(name, table)
        self.engine.register("unit_rates", unit_rates_frame(load_unit_costs(self.spec.unit_costs)))
        cols = set(self.engine.columns("clients"))
        self.has_moves = ("moved_in" in cols, "moved_out" in cols)

    def close(self) -> None:
        """Remove the validated copy this object made of a folder and a disk cache (nothing else is closed)."""
        if self._cache_dir is not None:
            self._cache_dir.cleanup()
            self._cache_dir = None
            self._cache = {}
        if self.dataset is not None:
            self.dataset.close()
            self.dataset = None

    def __enter__(self) -> ClientHistories:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sql(self, as_of, clients: str | None = None) -> str:
        """The query that :meth:`features` runs for ``as_of`` (``clients``: see :func:`compile_features`)."""
        # DuckDB shares one CTE among its readers: the per-service joins; other engines get the pivot
        pivot = "join" if getattr(self.engine, "dialect", None) == "duckdb" else "case"
        return compile_features(self.spec, as_of, has_moves=self.has_moves, clients=clients, pivot=pivot)

    def select_clients(self, clients) -> int:
        """Register the ids ``clients`` as the table :data:`SELECTED` for a restricted query.

        Parameters
        ----------
        clients
            An iterable or pandas Index/Series of client ids (duplicates and missing
            values are dropped; ids not in the data simply match nothing).

        Returns
        -------
        int
            How many distinct ids were registered.
        """
        if isinstance(clients, (str, bytes)):
            raise TypeError("clients must be a collection of client ids, not one id as text")
        if not isinstance(clients, (pd.Index, pd.Series)):
            clients = list(clients)
        ids = pd.Series(pd.Index(clients).dropna().unique(), dtype="object").astype("str")
        self.engine.register(SELECTED, pd.DataFrame({"client_id": ids}))
        return len(ids)

    def features(self, as_of, clients=None) -> pd.DataFrame:
        """One row per client in the population at ``as_of``, sorted by ``client_id``.

        Parameters
        ----------
        as_of
            Index date T.
        clients
            Optional client ids (an iterable or pandas Index): only their rows are built,
            equal to the full table's rows for those ids; ids outside the population
            at ``as_of`` (or not in the data) are absent. The restriction is part of the
            query (a semi-join on every table it reads), so only those clients' records
            are aggregated. Not cached.

        Returns
        -------
        pandas.DataFrame
            ``client_id`` then the spec's columns: counts, costs and flags as
            numbers with zero for no records; measurement, RAI, continuity and
            "days since" values NaN where there is nothing to summarise.
        """
        if clients is not None:
            self.select_clients(clients)
            return self._query(as_of, SELECTED)
        if self._cache is None:
            return self._query(as_of)
        key = pd.Timestamp(as_of).normalize()
        if self._cache_dir is not None:
            if key not in self._cache:
                table = self._query(key)
                path = Path(self._cache_dir.name) / f"{key:%Y-%m-%d}.parquet"
                table.to_parquet(path, index=False)
                self._cache[key] = path
                return table
            return pd.read_parquet(self._cache[key])
        if key not in self._cache:
            self._cache[key] = self._query(key)
        return self._cache[key].copy()

    def prepare(self, as_of_dates: Iterable) -> None:
        """Build and cache the feature tables of ``as_of_dates`` now, returning nothing.

        With the disk cache no table stays in memory afterwards, so a pipeline can build a
        later step's table while it holds little else (the demo builds 1 January after its
        scenarios' base year before that step reads its base-year records). Dates already
        cached are not built again.

        Raises
        ------
        ValueError
            If this object keeps no cache (the tables would be built and thrown away).
        """
        if self._cache is None:
            raise ValueError("prepare() needs a cache: ClientHistories(..., cache='disk' or True)")
        for t in as_of_dates:
            if pd.Timestamp(t).normalize() not in self._cache:
                self.features(t)

    def shares(self) -> int:
        """How many queries the population takes: one per ``clients_per_query`` clients (1 without ``restrict``).

        A query restricted to selected clients takes as many: DuckDB does not push the semi-join
        on the selected ids below every aggregate, so a query's memory follows the clients of its
        id range, not the selection (300,000 selected clients of the 1.33 M county in one query
        exceeded a 5.4 GiB memory limit).
        """
        if not hasattr(self.engine, "restrict"):
            return 1
        n = int(self.engine.query("SELECT count(*) AS n FROM clients")["n"].iloc[0])
        return max(1, -(-n // max(1, self.clients_per_query)))

    def _query(self, as_of, clients: str | None = None) -> pd.DataFrame:
        """The typed feature table: one query, or one per share of the clients stacked and sorted by ``client_id``.

        Each share's result is typed as it arrives and the engine's frame let go, and the
        shares are let go once stacked: at most two copies of the table are held at once.
        """
        parts = self.shares()
        sql = self.sql(as_of, clients)
        if parts <= 1:
            return _typed(self.engine.query(sql), self.spec)
        restrict = self.engine.restrict
        frames = []
        try:
            for part in range(parts):
                restrict(parts, part)
                frames.append(_typed(self.engine.query(sql), self.spec))
        finally:
            restrict(None)
        stacked = pd.concat(frames, ignore_index=True)
        frames.clear()
        if stacked["client_id"].is_monotonic_increasing:  # shares by id range, each sorted: nothing to do
            return stacked
        return stacked.sort_values("client_id", kind="stable", ignore_index=True)

    def features_many(self, as_of_dates: Iterable) -> pd.DataFrame:
        """Feature tables for several index dates stacked, with an ``as_of`` column."""
        frames = []
        for t in as_of_dates:
            f = self.features(t)
            f.insert(1, "as_of", pd.Timestamp(t).normalize())
            frames.append(f)
        return pd.concat(frames, ignore_index=True)


def build_features(data: TableSource, as_of, spec: FeatureSpec | str | Path | None = None, *,
                   engine: Engine | None = None, validate: bool = True) -> pd.DataFrame:
    """Build the client-history feature table as of ``as_of``.

    Parameters
    ----------
    data
        A data folder (Parquet/CSV), a mapping of table name to DataFrame,
        :class:`~features.contract.validation.ValidatedTables` or a
        :class:`~features.contract.stream.ValidatedDataset`.
    as_of
        Index date T; only records dated before T are used.
    spec
        Feature spec, spec YAML path, or None for ``features/config/features.yaml``.
    engine
        SQL engine; DuckDB in-process by default.
    validate
        For a folder, validate and cost-fill it first (see :func:`load_source`).

    Returns
    -------
    pandas.DataFrame
        One row per client born before T, not dead before T and resident at T.

    Examples
    --------
    >>> X = build_features("out/county", "2024-01-01")            # doctest: +SKIP
    >>> X.loc[:, ["client_id", "emergency_count_180d", "hba1c_last"]]  # doctest: +SKIP
    """
    with ClientHistories(data, spec, engine=engine, validate=validate) as histories:
        return histories.features(as_of)
