"""``sote monitor``: outputs, the verdict, exit statuses and the messages of wrong options (small seeded tables)."""
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sote.cli import app

runner = CliRunner()


def _table(seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2_000
    return pd.DataFrame({
        "client_id": [f"{v:012x}" for v in rng.integers(16**11, 16**12, n)],
        "age": rng.normal(60 + shift, 15, n).round(),
        "cost_total_365d": rng.gamma(1.0, 2_000 * (1 + shift / 10), n),
        "unit": rng.choice(["kerava", "tuusula", "mantsala"], n, p=[0.5, 0.3, 0.2]),
    })


@pytest.fixture()
def tables(tmp_path):
    ref, same, shifted = _table(1), _table(2), _table(3, shift=12.0)
    paths = {}
    for name, frame in (("ref", ref), ("same", same), ("shifted", shifted)):
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name])
    paths["ids"] = set(ref["client_id"]) | set(same["client_id"]) | set(shifted["client_id"])
    return paths


def test_monitor_writes_report_and_csv_and_exits_by_the_verdict(tables, tmp_path):
    out = tmp_path / "reports" / "drift.html"
    ok = runner.invoke(app, ["monitor", "--reference", str(tables["ref"]), "--current", str(tables["same"]),
                             "--out", str(out), "--no-log"])
    assert ok.exit_code == 0, ok.output
    assert "verdict: ok" in ok.output
    csv = pd.read_csv(tmp_path / "reports" / "drift.csv")
    assert set(csv["name"]) == {"age", "cost_total_365d", "unit"} and (csv["level"] == "ok").all()
    assert (tmp_path / "reports" / "drift.html").is_file()

    shifted = tmp_path / "shifted"
    res = runner.invoke(app, ["monitor", "--reference", str(tables["ref"]), "--current", str(tables["shifted"]),
                              "--out", str(shifted), "--no-log"])
    assert res.exit_code == 0 and "verdict: act" in res.output and "age" in res.output  # reported, not failed
    failing = runner.invoke(app, ["monitor", "--reference", str(tables["ref"]), "--current", str(tables["shifted"]),
                                  "--out", str(shifted), "--no-log", "--fail-on-drift"])
    assert failing.exit_code == 5, failing.output  # ExitCode.DRIFT
    assert "drift above the act threshold" in failing.output
    text = (shifted.with_suffix(".html")).read_text() + (shifted.with_suffix(".csv")).read_text()
    assert not set(re.findall(r"[0-9a-f]{12}", text)) & tables["ids"]


def test_wrong_options_exit_2_with_one_message(tables, tmp_path):
    cases = [
        (["--current", str(tables["same"]), "--out", str(tmp_path / "d")], "give --reference, or --model"),
        (["--reference", str(tmp_path / "nope.parquet"), "--current", str(tables["same"]), "--out",
          str(tmp_path / "d")], "--reference"),
        (["--reference", str(tables["ref"]), "--current", str(tmp_path), "--out", str(tmp_path / "d")],
         "is a folder"),
        (["--reference", str(tables["ref"]), "--current", str(tables["same"]), "--out", str(tmp_path / "d"),
          "--colour"], "No such option"),
    ]
    for args, message in cases:
        res = runner.invoke(app, ["monitor", *args, "--no-log"])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and "Traceback" not in res.output
    bad = tmp_path / "monitoring.yaml"
    bad.write_text("psi: {watch: 0.3, act: 0.1}\n")
    res = runner.invoke(app, ["monitor", "--reference", str(tables["ref"]), "--current", str(tables["same"]),
                              "--out", str(tmp_path / "d"), "--config", str(bad), "--no-log"])
    assert res.exit_code == 2 and str(bad) in res.output and "psi" in res.output
    foreign = tmp_path / "mine.csv"
    foreign.write_text("not sote's\n")
    res = runner.invoke(app, ["monitor", "--reference", str(tables["ref"]), "--current", str(tables["same"]),
                              "--out", str(tmp_path / "mine"), "--no-log"])
    assert res.exit_code == 2 and "mine.csv" in res.output and foreign.read_text() == "not sote's\n"
    assert not (tmp_path / "mine.html").exists()
