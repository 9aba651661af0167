"""Streaming validation's peak memory does not grow with the events table; today's in-memory path's does.

Each validation runs in a fresh child process, which reports its own peak
resident memory (``VmHWM`` of ``/proc/self/status``: it starts afresh at
``exec``, whereas ``ru_maxrss`` carries the parent's peak over through
``vfork``, so a large pytest worker would inflate it). The limit is the peak of the
same streaming validation on a tiny county plus a margin: the streaming path
on a large events table stays under it, the in-memory path (``read_tables`` +
``validate_tables``, what ``load_tables`` did) on the same table goes over it.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

CHILD = textwrap.dedent("""
    import sys
    mode, data, batch_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "stream":
        from features.contract.stream import open_dataset
        with open_dataset(data, batch_rows=batch_rows, memory_limit="64MB") as ds:
            part = ds.read("events", ["client_id", "cost_eur"], "service = ?", ["home_care"])
            print(ds.report.rows_kept["events"], len(part))
    else:
        from features.contract.dataset import read_declaration
        from features.contract.io import read_tables
        from features.contract.validation import validate_tables
        declaration = read_declaration(data)
        tables, problems = read_tables(data, declaration=declaration)
        result = validate_tables(tables, parse_problems=problems, period=declaration.period)
        print(result.report.rows_kept["events"], 0)
    with open("/proc/self/status") as status:
        print(status.read().split("VmHWM:")[1].split()[0])  # kB
""")


def make_county(folder, events: int, clients: int = 2_000, seed: int = 1):
    """A valid county with ``events`` event rows (Parquet), written directly with Arrow (fast)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    ids = np.array([f"c{i:07d}" for i in range(clients)], dtype=object)
    day = lambda text, n: pa.array(np.full(n, np.datetime64(text, "D")))  # noqa: E731
    pq.write_table(pa.table({
        "client_id": ids, "birth_date": day("1950-01-01", clients), "sex": np.where(np.arange(clients) % 2, "F", "M"),
        "municipality": ["Hyvinkää"] * clients, "language": ["fi"] * clients,
        "death_date": pa.nulls(clients, pa.date32()), "unit": ["u1"] * clients}), folder / "clients.parquet")
    services = np.array(["emergency", "primary_care_visit", "remote_contact", "home_care"], dtype=object)
    starts = np.datetime64("2019-01-01") + rng.integers(0, 2_000, events).astype("timedelta64[D]")
    pq.write_table(pa.table({
        "client_id": ids[rng.integers(0, clients, events)], "start": pa.array(starts),
        "end": pa.nulls(events, pa.date32()), "service": services[rng.integers(0, 4, events)],
        "professional": np.array(["doctor.u1.01", "nurse.u2.03"], dtype=object)[rng.integers(0, 2, events)],
        "cost_eur": rng.uniform(10, 500, events),  # not rounded: no row repeats by chance
        "unit": np.array(["u1", "u2"], dtype=object)[rng.integers(0, 2, events)]}),
        folder / "events.parquet", row_group_size=100_000)
    one = {"client_id": ["c0000001"], "date": day("2021-01-01", 1)}
    pq.write_table(pa.table({**one, "code": ["E11.9"], "system": ["ICD-10"]}), folder / "diagnoses.parquet")
    pq.write_table(pa.table({**one, "name": ["bmi"], "value": [25.0]}), folder / "measurements.parquet")
    pq.write_table(pa.table({**one, "instrument": ["rai_hc"], "scale": ["cps"], "value": [2.0]}),
                   folder / "assessments.parquet")
    (folder / "dataset.yaml").write_text("period: {start: 2019-01-01, end: 2025-12-31}\n")
    return folder


def peak_mb(mode: str, data, batch_rows: int) -> tuple[float, str]:
    """Run one validation in a fresh child; return its peak resident memory (MB) and its output."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(data), str(batch_rows)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate()
    assert child.returncode == 0, err[-2000:]
    lines = out.split("\n")
    return int(lines[-2]) / 1024, lines[-3]


def check_flat_memory(tmp_path, events: int, batch_rows: int, margin_mb: float):
    tiny = make_county(tmp_path / "tiny", events=1_000)
    large = make_county(tmp_path / "large", events=events)
    base, _ = peak_mb("stream", tiny, batch_rows)
    limit = base + margin_mb
    streamed, out = peak_mb("stream", large, batch_rows)
    assert out.split()[0] == str(events)
    assert streamed < limit, f"streaming peaked at {streamed:.0f} MB, limit {limit:.0f} MB (tiny county {base:.0f})"
    in_memory, out = peak_mb("in_memory", large, batch_rows)
    assert out.split()[0] == str(events)
    assert in_memory > limit, (f"the in-memory path peaked at {in_memory:.0f} MB, under the limit {limit:.0f} MB: "
                               "the data are too small to show anything")


def test_streaming_validation_holds_in_a_limit_the_in_memory_path_exceeds(tmp_path):
    # measured (each child's own VmHWM): a tiny county 200 MB; 1 M events streamed 286 MB, in memory 373 MB;
    # 2 M events streamed 307 MB (the growth is the test's own read of a quarter of the rows), in memory 553 MB
    check_flat_memory(tmp_path, events=2_000_000, batch_rows=50_000, margin_mb=150)


@pytest.mark.slow
def test_streaming_validation_memory_is_flat_at_eight_million_events(tmp_path):
    check_flat_memory(tmp_path, events=8_000_000, batch_rows=200_000, margin_mb=300)
