"""Small cells: the minimum group sizes below which figures do not leave the analysts' own tables.

A figure about a group of clients (a municipality, a language, an age band,
a segment) that is small, or has few outcomes, can point at a person. sote
therefore suppresses every per-group figure under these limits wherever it
leaves the machine: MLflow metrics and artifacts (``group_metrics.csv``,
plots, the model card) and HTML reports. The analysts' in-memory tables keep
the full figures; suppression is applied when they are written out.

- :data:`MIN_GROUP_CLIENTS`: a group needs at least 50 clients;
- :data:`MIN_GROUP_OUTCOMES`: and at least 5 clients with the outcome and at
  least 5 without it (the complement is as revealing: 48 of 50 is "2 did not").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Fewest clients a group may have for any figure about it to be shown.
MIN_GROUP_CLIENTS = 50
#: Fewest clients with (and without) the outcome a group may have for any figure about it to be shown.
MIN_GROUP_OUTCOMES = 5


def small_cell(n, outcomes=None) -> np.ndarray:
    """True where a group of ``n`` clients with ``outcomes`` positives is under the limits.

    Works element-wise on arrays or Series; ``outcomes=None`` checks the size only.
    """
    n = np.asarray(n, dtype=float)
    small = ~(n >= MIN_GROUP_CLIENTS)  # a missing size counts as small
    if outcomes is not None:
        outcomes = np.asarray(outcomes, dtype=float)
        small |= ~(outcomes >= MIN_GROUP_OUTCOMES) | ~(n - outcomes >= MIN_GROUP_OUTCOMES)
    return small


def suppress_small_cells(table: pd.DataFrame, *, n: str = "n", outcomes: str | None = "positives",
                         keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """A copy of a per-group table with every figure of a small group blanked.

    Parameters
    ----------
    table
        One row per group.
    n, outcomes
        Columns holding the group's size and number of outcomes (``outcomes=None``: size only).
    keep
        Columns naming the group (e.g. ``grouping``, ``group``), kept as they are.

    Returns
    -------
    pandas.DataFrame
        Same rows and columns; in small groups every other column is missing
        (numbers become NaN, flags and text ``<NA>``), and a boolean column
        ``suppressed`` says which rows were blanked.
    """
    small = small_cell(table[n], table[outcomes] if outcomes is not None else None)
    out = table.copy()
    for col in out.columns:
        if col in keep:
            continue
        if pd.api.types.is_float_dtype(out[col]):
            out.loc[small, col] = np.nan
        else:
            out[col] = out[col].astype("Float64" if pd.api.types.is_numeric_dtype(out[col])
                                       and not pd.api.types.is_bool_dtype(out[col]) else "object")
            out.loc[small, col] = pd.NA
    out["suppressed"] = small
    return out
