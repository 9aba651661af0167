"""Work on distinct values gives exactly what the same work on every row gives."""
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract.codes import normalise_icd10
from features.contract.distinct import categorical_to_string, member_of, per_unique

values = st.lists(st.sampled_from(["E11.9", " e119 ", "E10.3+ H36.0*", "x", "", "T90", None]), max_size=50)


@settings(max_examples=80, deadline=None)
@given(values)
def test_per_unique_equals_row_by_row(rows):
    s = pd.Series(rows, dtype="string")
    for fn in (normalise_icd10, lambda u: u.str.strip().replace("", pd.NA)):
        pd.testing.assert_series_equal(per_unique(s, fn), fn(s).astype("string"), check_names=False)


@settings(max_examples=80, deadline=None)
@given(values, values)
def test_member_of_equals_isin(rows, pool):
    s = pd.Series(rows, dtype="string")
    expected = s.astype(object).isin([p for p in pool if p is not None])
    assert member_of(s, [p for p in pool if p is not None]).tolist() == expected.tolist()


@settings(max_examples=50, deadline=None)
@given(values)
def test_categorical_to_string_equals_astype(rows):
    s = pd.Series(pd.Categorical(rows))
    pd.testing.assert_series_equal(categorical_to_string(s), s.astype("string"))
