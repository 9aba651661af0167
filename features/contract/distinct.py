"""Vectorised work on the distinct values of a column, spread back to every row.

Service records repeat a few thousand codes, units and names across millions of
rows; cleaning each distinct value once instead of each row is what keeps
reading a county's tables fast.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd


def per_unique(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn`` applied to the distinct non-missing values of ``values``, as a string Series aligned with ``values``.

    ``fn`` takes and returns a string Series (positionally aligned); missing
    stays missing.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    done = fn(pd.Series(pd.array(uniques, dtype="string")))
    spread = pd.array(done.to_numpy(dtype=object), dtype="string").take(codes, allow_fill=True)
    return pd.Series(spread, index=values.index, name=values.name)


def categorical_to_string(values: pd.Series) -> pd.Series:
    """A categorical column as a string column, converting each category once."""
    cat = values.array
    levels = pd.array(cat.categories.astype(str).to_numpy(dtype=object), dtype="string")
    return pd.Series(levels.take(cat.codes, allow_fill=True), index=values.index, name=values.name)


def member_of(values: pd.Series, pool) -> pd.Series:
    """``values.isin(pool)``, hashing ``pool`` once.

    pandas' ``isin`` on Arrow-backed strings walks a large ``pool`` in Python;
    an index lookup does the same in compiled code.
    """
    index = pd.Index(pd.unique(pd.Series(pool).astype(values.dtype)))
    return pd.Series(index.get_indexer(values) >= 0, index=values.index, name=values.name)
