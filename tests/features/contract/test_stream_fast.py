"""The Arrow fast path of streaming validation (features.contract.stream_fast) changes nothing but the time.

Each county here is validated twice, with the fast path and with every batch
through pandas (``stream_scan.FAST = False``): the reports, the kept tables
(Parquet, schema included) and the quarantine files must be identical, and both
must equal the in-memory reference (``validate_tables``). The counties are
Parquet (the fast path reads only Parquet) with problems in some batches only,
so that both paths run in one validation.
"""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import features.contract.stream_scan as scan
from features.contract.costs import fill_missing_costs
from features.contract.load import write_quarantine
from features.contract.stream import open_dataset
from features.contract.stream_fast import FastPath, column_hashes, column_rules, frame_hashes, row_hashes
from features.contract.tables import TABLES
from features.contract.validation import ContractError
from test_stream import _in_memory as in_memory, assert_same_report as same_report  # same folder

BATCH = 40
QFILES = [*TABLES, "summary", "problems"]


def _days(values) -> pa.Array:
    return pa.array(pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[D]"))


def county(rng: np.random.Generator, *, n_events: int = 6 * BATCH, dictionary: bool = True) -> dict[str, pa.Table]:
    """A valid county: 30 clients, events with missing costs (per-visit, per-day, by professional), codes to normalise."""
    ids = [f"k{i:03d}" for i in range(30)]
    clients = pa.table({
        "client_id": ids, "birth_date": _days(["1940-03-01"] * 25 + ["2010-06-01"] * 5),
        "sex": ["F", "M", "X"] * 10, "municipality": ["Hyvinkää"] * 30, "language": ["fi", "sv", "other"] * 10,
        "death_date": _days([None] * 28 + ["2023-05-01", "2023-06-01"]), "unit": ["u1", "u2"] * 15,
    })
    services = np.array(["primary_care_visit", "inpatient", "housing_24h", "emergency", "home_care"], dtype=object)
    pros = np.array(["doctor.u1.01", "nurse.u2.03", "ward.w1", None, "other.x"], dtype=object)
    start = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 4000, n_events), unit="D")
    length = rng.integers(0, 30, n_events)
    end = pd.Series(start + pd.to_timedelta(length, unit="D")).where(rng.random(n_events) < 0.4)
    cost = rng.uniform(5, 900, n_events).round(2)
    cost[rng.random(n_events) < 0.3] = np.nan
    client = np.array(ids[:28], dtype=object)[rng.integers(0, 28, n_events)]
    events = pd.DataFrame({"client_id": client, "start": start, "end": end,
                           "service": services[rng.integers(0, 5, n_events)],
                           "professional": pros[rng.integers(0, 5, n_events)], "cost_eur": cost,
                           "unit": np.array(["u1", "u2", None], dtype=object)[rng.integers(0, 3, n_events)]})
    events = pa.table({
        "client_id": pa.array(events["client_id"]), "start": _days(events["start"]), "end": _days(events["end"]),
        "service": pa.array(events["service"]), "professional": pa.array(events["professional"], pa.string()),
        "cost_eur": pa.array(events["cost_eur"], from_pandas=True), "unit": pa.array(events["unit"], pa.string()),
    })
    n = 3 * BATCH
    diagnoses = pa.table({
        "client_id": np.array(ids[:28], dtype=object)[rng.integers(0, 28, n)],
        "date": _days(pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D")),
        "code": np.array(["E11.9", "e119", "T90", "I10", "F32.1", "k29.7"], dtype=object)[rng.integers(0, 6, n)],
        "system": np.array(["ICD-10", "icd10", "ICD-10", "ICD10", "ICD-10", "ICD-10"], dtype=object)[
            rng.integers(0, 6, n)],
    })
    # T90 is ICPC-2: keep the pairs valid
    system = np.where(pd.Series(diagnoses["code"].to_pylist()).eq("T90"), "ICPC-2",
                      pd.Series(diagnoses["system"].to_pylist()))
    diagnoses = diagnoses.set_column(3, "system", pa.array(system.astype(object)))
    measurements = pa.table({
        "client_id": np.array(ids[:28], dtype=object)[rng.integers(0, 28, n)],
        "date": _days(pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")),
        "name": np.array(["hba1c", "bmi", "egfr"], dtype=object)[rng.integers(0, 3, n)],
        "value": rng.uniform(20, 80, n).round(1),
    })
    assessments = pa.table({
        "client_id": np.array(ids[:28], dtype=object)[rng.integers(0, 28, n)],
        "date": _days(pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")),
        "instrument": np.array(["rai_hc", "rai_ltc"], dtype=object)[rng.integers(0, 2, n)],
        "scale": np.array(["adl_h", "cps", "maple"], dtype=object)[rng.integers(0, 3, n)],
        "value": rng.integers(1, 6, n).astype(float),
    })
    tables = dict(clients=clients, events=events, diagnoses=diagnoses, measurements=measurements,
                  assessments=assessments)
    if dictionary:
        tables = {t: (tab if t == "clients" else encode(tab)) for t, tab in tables.items()}
    return tables


def encode(table: pa.Table) -> pa.Table:
    """Text columns dictionary-encoded, as the synthetic county writes them."""
    cols = [pc_encode(c) if pa.types.is_string(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)


def pc_encode(col):
    import pyarrow.compute as pc

    return pc.dictionary_encode(col)


def put(table: pa.Table, row: int, **values) -> pa.Table:
    """``table`` with the given columns' values replaced at ``row`` (types kept)."""
    frame = {name: table.column(name).to_pylist() for name in table.column_names}
    for name, value in values.items():
        frame[name][row] = value
    cols = []
    for name in table.column_names:
        t = table.schema.field(name).type
        if pa.types.is_dictionary(t):
            cols.append(pc_encode(pa.array(frame[name], t.value_type)))
        else:
            cols.append(pa.array(frame[name], t))
    return pa.table(cols, names=table.column_names)


def write(folder, tables: dict[str, pa.Table], period: str | None = "period: {start: 2012-01-01, end: 2024-12-31}"):
    folder.mkdir(parents=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=BATCH)
    if period:
        (folder / "dataset.yaml").write_text(period + "\n")
    return folder


class Counted:
    """FastPath.typed wrapped to count the batches it took and refused."""

    def __init__(self, monkeypatch):
        self.took = self.refused = 0
        original = FastPath.typed

        def typed(path, batch, **kw):
            found = original(path, batch, **kw)
            if found is None:
                self.refused += 1
            else:
                self.took += 1
            return found

        monkeypatch.setattr(FastPath, "typed", typed)


def validate_both(data, tmp_path, monkeypatch, *, lenient: bool):
    """Validate with and without the fast path; return (fast, slow) as (report, tables, quarantine text) or errors."""
    out = {}
    tmp_path.mkdir()
    for fast in (True, False):
        monkeypatch.setattr(scan, "FAST", fast)
        q = tmp_path / f"q{fast}"
        kwargs = dict(lenient=True, quarantine_dir=q) if lenient else {}
        try:
            with open_dataset(data, batch_rows=BATCH, workdir=tmp_path, **kwargs) as ds:
                files = {t: pq.read_table(p) for t, p in ds.paths().items()}
                quarantine = {n: (q / f"{n}.csv").read_text() for n in QFILES} if lenient else None
                out[fast] = (ds.report, files, quarantine, ds.period)
        except ContractError as err:
            out[fast] = (err.report, None, None, None)
    return out[True], out[False]


def check(data, tmp_path, monkeypatch, *, strict: bool = False, expect_fast: bool = True):
    """Fast and pandas paths identical (lenient, and strict if asked), and equal to the in-memory reference."""
    counted = Counted(monkeypatch)
    monkeypatch.setattr(scan, "_HEAD", 15)  # a table's first batch split: its first rows through pandas, the rest not
    for lenient in (False, True) if strict else (True,):
        fast, slow = validate_both(data, tmp_path / f"l{lenient}", monkeypatch, lenient=lenient)
        same_report(fast[0], slow[0])
        assert fast[3] == slow[3]
        if slow[1] is not None:
            for table in TABLES:
                assert fast[1][table].schema.equals(slow[1][table].schema, check_metadata=True), table
                assert fast[1][table].equals(slow[1][table]), table
        else:
            assert fast[1] is None
        assert fast[2] == slow[2]
        old, old_error = in_memory(data, lenient)
        same_report(old_error if old is None else old.report, fast[0])
        if lenient and old is not None:
            for table in TABLES:
                kept = fill_missing_costs(old.tables[table]) if table == "events" else old.tables[table]
                from features.contract.stream import to_pandas

                pd.testing.assert_frame_equal(kept, to_pandas(table, fast[1][table]))
            write_quarantine(old, tmp_path / f"qold{lenient}", overwrite=True)
            for name in QFILES:
                assert (tmp_path / f"qold{lenient}" / f"{name}.csv").read_text() == fast[2][name], name
    if expect_fast:
        assert counted.took > 0
    return counted


@pytest.mark.parametrize("dictionary", [True, False])
def test_a_clean_county_goes_the_fast_way_with_identical_output(tmp_path, monkeypatch, dictionary):
    data = write(tmp_path / "d", county(np.random.default_rng(1), dictionary=dictionary))
    counted = check(data, tmp_path, monkeypatch)
    assert counted.refused == 0  # nothing in it needs pandas after each table's first batch


def test_problems_in_some_batches_are_reported_as_pandas_reports_them(tmp_path, monkeypatch):
    tables = county(np.random.default_rng(2))
    ev = tables["events"]
    ev = put(ev, BATCH + 3, client_id="nobody")                              # foreign key
    ev = put(ev, 2 * BATCH + 1, start=pd.Timestamp("1935-01-01").date())      # before birth
    ev = put(ev, 2 * BATCH + 5, service=" emergency ")                        # stripped: valid, not fast
    ev = put(ev, 3 * BATCH + 2, cost_eur=float("inf"))                        # not a finite number
    ev = put(ev, 3 * BATCH + 7, cost_eur=-3.0)                                # negative cost
    ev = put(ev, 4 * BATCH + 4, start=pd.Timestamp("2025-03-01").date(), end=None)  # after the period
    ev = put(ev, 4 * BATCH + 9, end=pd.Timestamp("2011-01-01").date())        # end before start
    row = {c: ev.column(c)[7].as_py() for c in ev.column_names}
    ev = put(ev, 5 * BATCH + 1, **row)                                        # an exact duplicate, fast batch 0 -> 5
    ev = put(ev, 4 * BATCH + 11, **{c: ev.column(c)[BATCH + 3].as_py() for c in ev.column_names})  # slow <-> slow
    tables["events"] = ev
    dg = put(tables["diagnoses"], BATCH + 2, code="E1X")                      # malformed code
    tables["diagnoses"] = put(dg, 2 * BATCH + 2, system="klingon")
    tables["measurements"] = put(tables["measurements"], 2 * BATCH + 3, value=900.0)  # out of range
    tables["assessments"] = put(tables["assessments"], BATCH + 1, value=2.5)  # not a whole score
    data = write(tmp_path / "d", tables)
    counted = check(data, tmp_path, monkeypatch, strict=True)
    assert counted.refused >= 8
    report = in_memory(data, True)[0].report
    dup = next(p for p in report.problems if p.column == "(all)")
    assert dup.rows.tolist() == [4 * BATCH + 11, 5 * BATCH + 1]


def test_a_dead_clients_later_record_and_padded_text(tmp_path, monkeypatch):
    tables = county(np.random.default_rng(3))
    ev = put(tables["events"], 2 * BATCH, client_id="k029", start=pd.Timestamp("2023-07-01").date(), end=None)
    tables["events"] = put(ev, 3 * BATCH, professional="")                   # empty text is missing
    tables["measurements"] = put(tables["measurements"], BATCH, name="bmi ")
    data = write(tmp_path / "d", tables, period=None)                         # no period: dates after today
    check(data, tmp_path, monkeypatch)


def test_extra_columns_timestamps_and_nan_costs_as_pandas_writes_them(tmp_path, monkeypatch):
    tables = county(np.random.default_rng(4))
    ev = tables["events"]
    n = ev.num_rows
    extra = pa.array([None if i % 7 == 0 else i for i in range(n)], pa.int64())
    flag = pa.array([i % 3 == 0 for i in range(n)])
    ev = ev.append_column("source_row", extra).append_column("flag", flag)
    stamps = pc_cast_timestamp(ev.column("start"))
    ev = ev.set_column(1, "start", stamps)
    cost = np.array(ev.column("cost_eur").to_pylist(), dtype=float)
    cost[::11] = np.nan                                                          # NaN, not null
    ev = ev.set_column(ev.column_names.index("cost_eur"), "cost_eur", pa.array(cost))
    ev = put(ev, 2 * BATCH + 2, **{c: ev.column(c)[2 * BATCH + 1].as_py() for c in ev.column_names})
    tables["events"] = ev
    data = write(tmp_path / "d", tables)
    check(data, tmp_path, monkeypatch)


def pc_cast_timestamp(col):
    import pyarrow.compute as pc

    return pc.cast(col, pa.timestamp("us"))


def test_a_time_of_day_goes_the_pandas_way(tmp_path, monkeypatch):
    tables = county(np.random.default_rng(5))
    ev = tables["events"]
    stamps = pc_cast_timestamp(ev.column("start")).to_pylist()
    stamps[BATCH + 5] = stamps[BATCH + 5] + pd.Timedelta(hours=10)
    tables["events"] = ev.set_column(1, "start", pa.array(stamps, pa.timestamp("us")))
    data = write(tmp_path / "d", tables)
    counted = check(data, tmp_path, monkeypatch)
    assert counted.refused >= 1


def test_rules_are_read_from_the_schemas():
    rules = column_rules("events")
    assert rules["service"].allowed and not rules["service"].nullable and rules["professional"].nullable
    assert rules["start"].low == pd.Timestamp("1890-01-01") and rules["cost_eur"].low == 0
    assert column_rules("clients") is None  # unique ids: validated whole, in pandas


def test_equal_rows_hash_equal_whatever_their_encoding():
    text = pa.array(["a", None, "b", "a"])
    days = pa.array(np.array(["2020-01-01", "NaT", "2021-05-05", "2020-01-01"], dtype="datetime64[s]"))
    money = pa.array([1.5, None, -0.0, 1.5])
    arrow = row_hashes([pc_encode(text), days, money])
    assert (arrow == row_hashes([text.cast(pa.large_string()), days, pa.array([1.5, np.nan, 0.0, 1.5],
                                                                              from_pandas=True)])).all()
    frame = pd.DataFrame({"t": pd.Series(["a", None, "b", "a"], dtype="string"),
                          "d": pd.Series(np.array(["2020-01-01", "NaT", "2021-05-05", "2020-01-01"],
                                                  dtype="datetime64[s]")),
                          "m": [1.5, np.nan, 0.0, 1.5]})
    assert (frame_hashes(frame) == arrow).all()
    assert arrow[0] == arrow[3] and len(set(arrow[:3].tolist())) == 3
    assert (column_hashes(pd.Series([1, 2], dtype="int64")) == column_hashes(pa.array([1.0, 2.0]))).all()


def test_worker_processes_give_the_output_of_one_process(tmp_path, monkeypatch):
    import features.contract.stream_pool as pool

    tables = county(np.random.default_rng(6))
    ev = tables["events"]
    ev = put(ev, 3 * BATCH + 4, client_id="nobody")                          # a worker hands it back to pandas
    ev = put(ev, 4 * BATCH + 2, **{c: ev.column(c)[BATCH + 1].as_py() for c in ev.column_names})  # across tasks
    tables["events"] = ev
    tables["diagnoses"] = put(tables["diagnoses"], 2 * BATCH + 1, code="E1X")
    data = write(tmp_path / "d", tables)
    monkeypatch.setattr(pool, "MIN_ROWS", 0)
    monkeypatch.setenv("SOTE_VALIDATE_WORKERS", "2")
    recorded = []
    original = scan._Scan.take_fast
    monkeypatch.setattr(scan._Scan, "take_fast", lambda self, found, offset: (recorded.append(self.table),
                                                                               original(self, found, offset)))
    counted = check(data, tmp_path, monkeypatch, strict=True)
    assert recorded.count("events") > counted.took  # most batches were checked by the workers
    assert pool.workers() == 2
    monkeypatch.setenv("SOTE_VALIDATE_WORKERS", "two")
    with pytest.raises(ValueError, match="SOTE_VALIDATE_WORKERS"):
        pool.workers()


def test_workers_start_from_a_script_without_a_main_guard(tmp_path):
    import subprocess
    import sys

    data = write(tmp_path / "d", county(np.random.default_rng(7)))
    script = tmp_path / "plain.py"  # no `if __name__ == "__main__"`: a spawned worker would run it again
    script.write_text("import features.contract.stream_pool as pool\n"
                      "pool.MIN_ROWS = 0\n"
                      "from features.contract.stream import open_dataset\n"
                      f"with open_dataset({str(data)!r}, batch_rows={BATCH}, workdir={str(tmp_path)!r}) as ds:\n"
                      "    print(ds.report.rows_kept['events'], pool.workers())\n")
    env = {**__import__("os").environ, "SOTE_VALIDATE_WORKERS": "2"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(6 * BATCH), "2"]


def test_a_date_after_the_declared_period_alone_sends_its_batch_the_pandas_way(tmp_path, monkeypatch):
    # the batch's only problem: the fast path compared dates in seconds with the period's end in
    # nanoseconds, took the batch and lost the problem (the reliability tests found it)
    tables = county(np.random.default_rng(4))
    tables["events"] = put(tables["events"], 3 * BATCH + 2, start=pd.Timestamp("2025-01-01").date(), end=None)
    data = write(tmp_path / "d", tables)
    counted = check(data, tmp_path, monkeypatch, strict=True)
    assert counted.refused >= 1
    report = in_memory(data, True)[0].report
    after = [p for p in report.problems if "after the end of the data period" in p.rule]
    assert [p.rows.tolist() for p in after] == [[3 * BATCH + 2]]
