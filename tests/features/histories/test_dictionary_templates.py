"""Every text template of the feature dictionary, filled with each feature's observed range, in fi, sv and en.

Issue 11 case 8: the eGFR reason showed an unfilled ``{value:+.1f}`` for clients
without two eGFR tests. Here every template gets the observed minimum, maximum
and median of its feature on a small synthetic county, 0, a negative value where
the feature can be negative, and missing / non-finite values, and must give a
sentence with no placeholder left, no ``nan`` / ``inf`` and no exception.
"""
import math
import re

import numpy as np
import pandas as pd
import pytest

from features.contract.load import load_tables
from features.histories.build import build_features
from features.histories.dictionary import LANGS, NO_RECORD, describe, feature_dictionary, fill
from features.synth import SynthConfig, generate_county

AS_OF = "2024-01-01"
NOT_A_NUMBER = re.compile(r"(?i)(?<![a-zåäö])(nan|inf|infinity|none|<na>|nat)(?![a-zåäö])")
MISSING = (None, float("nan"), np.float32("nan"), pd.NA, float("inf"), -float("inf"))


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    data = tmp_path_factory.mktemp("dictionary") / "county"
    generate_county(data, SynthConfig(clients=1_000, seed=5, truth_reps=1, workers=1))
    return build_features(load_tables(data), AS_OF)


def _values(column: pd.Series) -> list:
    """The observed range of a feature: min, max, median, 0 and a negative value where one is observed."""
    present = column.dropna()
    if not pd.api.types.is_numeric_dtype(column):
        return sorted(present.astype(str).unique())[:3] or ["x"]
    if present.empty:
        return [0.0, 1.0]
    lo, hi = float(present.min()), float(present.max())
    values = [present.min(), present.max(), float(present.median()), 0]
    if lo < 0:
        values.append(-abs(hi) - 0.5)  # the other side of a change feature
    return values


def _check(text: str, template: str) -> None:
    assert "{" not in text and "}" not in text, (template, text)
    assert not NOT_A_NUMBER.search(text), (template, text)
    assert text.strip() and "  " not in text, (template, text)


def test_every_template_fills_over_the_observed_range_in_every_language(observed):
    dictionary = feature_dictionary()
    features = [c for c in observed.columns if c != "client_id"]
    assert sorted(dictionary["feature"]) == sorted(features)  # every feature has templates
    assert set(dictionary["kind"]) >= {"measurement_change", "cost", "continuity", "rai_change"}
    filled = 0
    for row in dictionary.itertuples(index=False):
        column = observed[row.feature]
        for lang in LANGS:
            template = getattr(row, f"template_{lang}")
            has_value = "{value" in template
            for value in _values(column):
                text = fill(template, value, lang)
                _check(text, template)
                if has_value and isinstance(value, (int, float, np.number)):
                    assert re.search(r"\d", text), (template, value, text)
                filled += 1
            for value in MISSING:
                text = fill(template, value, lang)
                _check(text, template)
                if has_value:
                    assert text.endswith(f": {NO_RECORD[lang]}"), (template, value, text)
                filled += 1
    assert filled >= len(dictionary) * 3 * 10


def test_the_egfr_change_sentence_with_and_without_a_value():
    unit = "ml/min/1.73m2"
    assert describe("egfr_change", -3.25, "en") == f"eGFR changed by -3.2 {unit} since the previous test"
    assert describe("egfr_change", 4, "fi") == f"eGFR muuttunut +4.0 {unit} edellisestä mittauksesta"
    assert describe("egfr_change", float("nan"), "en") == f"eGFR changed by {unit} since the previous test: no record"
    assert describe("egfr_change", None, "sv").endswith(": uppgift saknas")
    assert describe("egfr_change", None, "fi").endswith(": ei tietoa")


def test_every_placeholder_format_is_filled():
    assert fill("€{value:,.0f} in total", 12345.6, "en") == "€12,346 in total"
    assert fill("{value:.0%} with the same unit", 0.5, "en") == "50% with the same unit"
    assert fill("changed by {value:+.0f}", -2, "en") == "changed by -2"
    assert fill("sex {value}", "F", "en") == "sex F"
    assert fill("age {value:.0f}", "unknown", "en") == "age unknown"  # text where a number was expected
    assert fill("€{value:,.0f} of services", math.inf, "en") == "€ of services: no record"
    assert fill("{value:.0f} visits", np.int64(3), "sv") == "3 visits"


def test_reasons_for_clients_without_an_egfr_change_read_as_no_record(observed):
    from models.explain import reason_sentences

    X = observed.head(200).reset_index(drop=True)
    missing = X["egfr_change"].isna()
    assert missing.sum() > 0 and (~missing).sum() > 0
    contrib = pd.DataFrame(0.0, index=X.index, columns=X.columns)
    contrib["egfr_change"] = 1.0  # eGFR change is every client's top reason
    contrib = contrib.drop(columns="client_id")
    sentences = reason_sentences(contrib, X.drop(columns="client_id"), feature_dictionary(), top=1)
    for lang in LANGS:
        texts = [s[0] for s in sentences[lang]]
        assert all("{" not in t and not NOT_A_NUMBER.search(t) for t in texts)
        assert all(NO_RECORD[lang] in t for t, m in zip(texts, missing) if m)
        assert not any(NO_RECORD[lang] in t for t, m in zip(texts, missing) if not m)
