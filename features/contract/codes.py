"""Diagnosis-code normalisation for ICD-10 and ICPC-2.

``E11.9``, ``E119``, ``e11.9`` and `` E11.9 `` are one code; the canonical
form is upper case with a dot after the three-character category (``E11.9``).
ICPC-2 codes are a chapter letter and two digits (``T90``), optionally with a
Finnish extension after a dot (``T90.1``). A value that cannot be read as a
code of its system becomes missing, and validation then names it.
"""
from __future__ import annotations

import pandas as pd

from features.contract.distinct import per_unique

_ICD10 = r"^([A-Z])(\d{2})\.?([0-9A-Z]{0,4})$"
_ICPC2 = r"^([A-Z])(\d{2})(?:\.?(\d{1,2}))?$"
#: Regular expressions of canonical codes, used by the schemas.
ICD10_CANONICAL = r"^[A-Z]\d{2}(\.[0-9A-Z]{1,4})?$"
ICPC2_CANONICAL = r"^[A-Z]\d{2}(\.\d{1,2})?$"

_SYSTEM_ALIASES = {
    "ICD10": "ICD-10", "ICD-10": "ICD-10", "ICD": "ICD-10", "ICD-10-FI": "ICD-10",
    "ICPC2": "ICPC-2", "ICPC-2": "ICPC-2", "ICPC": "ICPC-2",
}


def _clean(codes: pd.Series) -> pd.Series:
    # Daggers, asterisks and spaces are decoration in Finnish ICD-10 records
    # (e.g. "E10.3+ H36.0*"): keep the first code of a combination.
    s = codes.astype("string").str.upper().str.replace(r"[\s†*]", "", regex=True)
    return s.str.split("+", n=1).str[0]


def normalise_icd10(codes: pd.Series) -> pd.Series:
    """Return ICD-10 codes in canonical ``A00.0`` form (missing where unreadable)."""
    parts = _clean(codes).str.extract(_ICD10)
    out = parts[0] + parts[1]
    sub = parts[2].fillna("")
    return out.where(sub.eq(""), out + "." + sub)


def normalise_icpc2(codes: pd.Series) -> pd.Series:
    """Return ICPC-2 codes in canonical ``T90`` / ``T90.1`` form (missing where unreadable)."""
    parts = _clean(codes).str.extract(_ICPC2)
    out = parts[0] + parts[1]
    return out.where(parts[2].isna(), out + "." + parts[2])


def normalise_system(systems: pd.Series) -> pd.Series:
    """Map spellings such as ``icd10`` or ``ICPC2`` to ``ICD-10`` / ``ICPC-2``."""
    key = systems.astype("string").str.upper().str.replace(r"\s", "", regex=True)
    return key.map(_SYSTEM_ALIASES).astype("string")


def normalise_codes(codes: pd.Series, systems: pd.Series) -> pd.Series:
    """Normalise a code column whose system is given row by row.

    Parameters
    ----------
    codes, systems
        Aligned series; ``systems`` must already be canonical (``ICD-10`` / ``ICPC-2``).

    Returns
    -------
    pandas.Series
        Canonical codes; missing where a code is not valid for its system.
    """
    out = pd.Series(pd.NA, index=codes.index, dtype="string")
    for system, fn in (("ICD-10", normalise_icd10), ("ICPC-2", normalise_icpc2)):
        mask = systems.eq(system).fillna(False).to_numpy(bool)
        if mask.any():
            out[mask] = per_unique(codes[mask], fn)
    return out


def code_in_ranges(codes: pd.Series, ranges: list[tuple[str, str]]) -> pd.Series:
    """True where a canonical code's category lies in any inclusive range.

    ``ranges`` holds category bounds such as ``("E10", "E14")``; a bound of
    one letter (``("P", "P")``) matches a whole ICPC-2 chapter.
    """
    cat = codes.astype("string").str.slice(0, 3)
    hit = pd.Series(False, index=codes.index)
    for lo, hi in ranges:
        upper = hi if len(hi) >= 3 else hi + "99"
        lower = lo if len(lo) >= 3 else lo + "00"
        hit |= (cat >= lower).fillna(False) & (cat <= upper).fillna(False)
    return hit
