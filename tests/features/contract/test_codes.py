import pandas as pd
import pytest

from features.contract.codes import code_in_ranges, normalise_codes, normalise_icd10, normalise_icpc2, normalise_system


@pytest.mark.parametrize("raw", ["E11.9", "E119", "e11.9", " E11.9 ", "E11.9*", "E11.9+H36.0*"])
def test_icd10_spellings_are_one_code(raw):
    assert normalise_icd10(pd.Series([raw])).iloc[0] == "E11.9"


def test_icd10_category_only_and_malformed():
    out = normalise_icd10(pd.Series(["I10", "F03", "E1X.9", "??", "12345", None]))
    assert out.iloc[:2].tolist() == ["I10", "F03"]
    assert out.iloc[2:].isna().all()


def test_icpc2_codes():
    out = normalise_icpc2(pd.Series(["t90", "T 90", "P76", "T90.1", "T9", "TT90"]))
    assert out.iloc[:4].tolist() == ["T90", "T90", "P76", "T90.1"]
    assert out.iloc[4:].isna().all()


def test_codes_follow_their_system_row_by_row():
    systems = normalise_system(pd.Series(["icd10", "ICPC2", "ICD-10", "SNOMED"]))
    assert systems.iloc[:3].tolist() == ["ICD-10", "ICPC-2", "ICD-10"] and pd.isna(systems.iloc[3])
    out = normalise_codes(pd.Series(["e119", "t90", "T90", "E11"]), systems)
    assert out.iloc[0] == "E11.9" and out.iloc[1] == "T90"
    assert out.iloc[2] == "T90"  # T90 is also a well-formed ICD-10 category
    assert pd.isna(out.iloc[3])  # unknown system: no code


def test_code_ranges_include_bounds_and_chapters():
    codes = pd.Series(["E10.1", "E14", "E15", "T89", "T90.1", "P76", "F10.2"])
    diab = code_in_ranges(codes, [("E10", "E14"), ("T89", "T90")])
    assert diab.tolist() == [True, True, False, True, True, False, False]
    assert code_in_ranges(codes, [("P", "P")]).tolist() == [False] * 5 + [True, False]
