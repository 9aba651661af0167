"""unit_cost_per_row costs each distinct (service, professional) pair once: the same rates as row by row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract.costs import load_unit_costs, unit_cost_per_row


def row_by_row(events: pd.DataFrame, costs) -> pd.Series:
    """The rule spelled out per row: the base rate, a role override, an exact professional override."""
    out = []
    for service, professional in zip(events["service"], events["professional"]):
        c = costs.get(service) if isinstance(service, str) else None
        rate = c.eur if c is not None else np.nan
        if c is not None and isinstance(professional, str):
            role = professional.split(".", 1)[0]
            rate = c.by_professional.get(professional, c.by_professional.get(role, rate))
        out.append(rate)
    return pd.Series(out, index=events.index, dtype=float)


@pytest.mark.parametrize("kind", ["object", "string", "category"])
def test_rates_equal_the_row_by_row_rule(kind):
    costs = load_unit_costs()
    with_overrides = [s for s, c in costs.items() if c.by_professional]
    assert with_overrides, "the packaged table has professional overrides to exercise"
    exact = [p for s in with_overrides for p in costs[s].by_professional]
    rng = np.random.default_rng(3)
    n = 5_000
    services = np.array(list(costs) + ["not_a_service", None], dtype=object)
    professionals = np.array(exact + [p + ".u9.01" for p in exact] + ["doctor.u1.02", "nurse", "x.y", None],
                             dtype=object)
    events = pd.DataFrame({"service": services[rng.integers(0, len(services), n)],
                           "professional": professionals[rng.integers(0, len(professionals), n)]},
                          index=rng.permutation(n) + 10)
    events = events.astype(kind)
    got = unit_cost_per_row(events, costs)
    pd.testing.assert_series_equal(got, row_by_row(events.astype(object).where(events.notna(), None), costs))
    assert got.notna().sum() > n // 2 and (got != got.iloc[0]).any()


def test_an_empty_frame_gives_an_empty_series():
    got = unit_cost_per_row(pd.DataFrame({"service": pd.Series([], dtype=object),
                                          "professional": pd.Series([], dtype=object)}), load_unit_costs())
    assert got.empty and got.dtype == float
