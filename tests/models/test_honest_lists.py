"""Lists that say what they are (issue 13), on constructed examples (no model, no county).

Honest probabilities (a capped isotonic bin is never shown as 99.9 %), the
intensive-service and prior-heavy-use flags, the cohort in plain words in
fi / sv / en on lists and reports, the reason-type mix and calibration at the top.
"""
import json

import numpy as np
import pandas as pd
import pytest

from features.targets.spec import Cohort, get_target
from models.calibration import (MEASURED, OVER, UNDER, ProbabilityCalibrator, calibration_at_top, readable_bound,
                                wilson_interval)
from models.explain import reason_features, reason_type_mix, top_share_rows
from models.risklists import (cohort_text, export_frame, list_about, list_description, list_kind, probability_text,
                              read_risklist, unit_view)
from models.scoring import RiskList, bound_columns, top_summary
from worklist.report import write_report

RISING = get_target("rising_high_use").cohort
HIGH_USE = get_target("high_use").cohort


def _capped_calibrator() -> ProbabilityCalibrator:
    """Scores 0..1 on 1,000 rows: the bottom 400 never have the outcome, the top 200 always do."""
    scores = np.linspace(0, 1, 1000)
    y = np.r_[np.zeros(400), (np.arange(400) % 2 == 0).astype(int), np.ones(200)].astype(int)
    return ProbabilityCalibrator("isotonic").fit(scores, y)


def test_the_calibrator_keeps_its_bins_and_marks_the_boundary_bins():
    cal = _capped_calibrator()
    bins = cal.bins_
    assert bins["clients"].sum() == 1000 and bins["outcomes"].sum() == 400
    top, bottom = bins.iloc[-1], bins.iloc[0]
    # the top bin: every held-out client had the outcome; its value is the cap, not a measured 100 %
    assert top["observed_rate"] == 1.0 and top["probability"] == pytest.approx(0.999)
    assert top["clients"] >= 200 and bottom["observed_rate"] == 0.0 and bottom["probability"] == pytest.approx(0.001)
    lo, _ = wilson_interval(top["outcomes"], top["clients"])
    assert cal.over_ == readable_bound(lo, OVER) and cal.over_ <= lo
    assert cal.over_ == 0.95  # Wilson's lower end for >= 200 of 200 is above 98 %, rounded down to a 5-point step
    _, hi = wilson_interval(bottom["outcomes"], bottom["clients"])
    assert cal.under_ >= hi and cal.under_ == 0.01
    codes = cal.bounds(np.array([0.0, 0.2, 0.5, 0.999, 1.0, 5.0]))
    assert codes.tolist() == [UNDER, UNDER, MEASURED, OVER, OVER, OVER]
    assert (cal.predict(np.array([0.99, 1.0, 3.0])) > 0.998).all()  # the capped values the lists must not print
    assert ProbabilityCalibrator("platt").fit(np.linspace(0, 1, 100), np.arange(100) % 2).bounds(
        np.array([0.0, 1.0])).tolist() == [MEASURED, MEASURED]


def test_wilson_and_readable_bounds():
    lo, hi = wilson_interval(50, 50)
    assert lo == pytest.approx(50 / (50 + 1.959963984540054 ** 2)) and hi == 1.0
    assert readable_bound(0.981, OVER) == 0.95 and readable_bound(0.934, OVER) == 0.9
    assert readable_bound(0.043, OVER) == 0.04 and readable_bound(0.0004, OVER) == 0.001
    assert readable_bound(0.00077, UNDER) == 0.001 and readable_bound(0.043, UNDER) == 0.05
    assert readable_bound(0.999, UNDER) == 0.999
    with pytest.raises(ValueError):
        readable_bound(0.5, 0)


def test_a_capped_bin_is_never_printed_as_its_value():
    cal = _capped_calibrator()
    scores = np.array([1.0, 0.95, 0.6, 0.1])
    codes = cal.bounds(scores)
    cols = bound_columns(cal, codes)
    assert [None if pd.isna(v) else v for v in cols["probability_bound"]] == ["over", "over", None, "under"]
    assert cols["probability_limit"][0] == 0.95 and np.isnan(cols["probability_limit"][2])
    # every client of the top bin had the outcome: "0 without" is a small cell, so its rate is not shown
    assert np.isnan(cols["bin_observed_rate"][0]) and np.isnan(cols["bin_observed_rate"][3])
    p = cal.predict(scores)
    texts = {lang: [probability_text(pi, b, lim, obs, lang) for pi, b, lim, obs in
                    zip(p, cols["probability_bound"], cols["probability_limit"], cols["bin_observed_rate"])]
             for lang in ("fi", "sv", "en")}
    assert texts["fi"][0].startswith("yli 95 %") and texts["sv"][0].startswith("över 95 %")
    assert texts["en"][0].startswith("over 95 %") and texts["en"][3].startswith("under 1 %")
    assert texts["en"][2] == f"{100 * p[2]:.1f} %"
    assert not any("99.9" in t for lang in texts for t in texts[lang])


def test_a_top_bin_that_is_no_small_cell_shows_its_observed_rate():
    scores = np.linspace(0, 1, 1000)
    y = np.r_[np.zeros(500), (np.arange(250) % 4 == 0), np.ones(240), np.zeros(10)].astype(int)  # pooled: 240 of 250
    cal = ProbabilityCalibrator().fit(scores, y)
    top = cal.bins_.iloc[-1]
    assert top["clients"] == 250 and top["outcomes"] == 240  # observed 96 %: a measured rate, the value itself
    assert top["probability"] == pytest.approx(0.96) and cal.over_ == 0.9  # Wilson's lower end 0.928
    cols = bound_columns(cal, cal.bounds(np.array([0.9999])))
    assert cols["bin_observed_rate"][0] == pytest.approx(0.96)
    text = probability_text(cal.predict(np.array([0.9999]))[0], "over", cal.over_, cols["bin_observed_rate"][0], "en")
    assert text == "over 90 % (observed 96 % in calibration)"


def test_a_small_top_bin_shows_the_bound_but_not_its_rate():
    scores = np.linspace(0, 1, 600)
    y = np.r_[np.zeros(300), (np.arange(280) % 3 == 0).astype(int), np.ones(20)].astype(int)
    cal = ProbabilityCalibrator().fit(scores, y)
    top = cal.bins_.iloc[-1]
    assert top["clients"] < 50 and top["observed_rate"] == 1.0
    cols = bound_columns(cal, cal.bounds(np.array([1.0])))
    assert cols["probability_bound"][0] == "over" and np.isnan(cols["bin_observed_rate"][0])  # a small cell
    assert probability_text(0.999, "over", cols["probability_limit"][0], np.nan, "en") == \
        f"over {100 * cols['probability_limit'][0]:.0f} %"


def test_cohort_in_plain_words_in_three_languages():
    assert cohort_text(RISING, "en") == (
        "On this list: not among the 10 % of residents with the highest service costs in the last 365 days; "
        "not in 24-hour service housing or inpatient care at the list date.")
    assert cohort_text(RISING, "fi") == (
        "Listalla: ei kuulunut niihin 10 %:iin asukkaista, joiden palvelukustannukset olivat suurimmat "
        "edeltäneiden 365 päivän aikana; ei listan päivänä ympärivuorokautisessa palveluasumisessa tai "
        "osastohoidossa.")
    assert cohort_text(RISING, "sv").startswith("På listan: hör inte till de 10 % av invånarna")
    assert cohort_text(HIGH_USE, "en") == "On this list: every resident of the county at the list date."
    young = cohort_text(Cohort(min_age=18, max_age=29, services_any=("mental_health_substance",), lookback_days=365),
                        "en")
    assert young == ("On this list: aged 18–29; with a contact with mental-health and substance-use services in "
                     "the last 365 days.")
    assert cohort_text(Cohort(min_age=75, exclude_ongoing="housing_24h"), "fi") == (
        "Listalla: 75 vuotta täyttäneet; ei listan päivänä ympärivuorokautisessa palveluasumisessa.")
    assert (list_kind(RISING), list_kind(HIGH_USE), list_kind(Cohort(min_age=75))) == ("rising", "all", "other")
    with pytest.raises(ValueError, match="language"):
        cohort_text(RISING, "de")


def _risklist(n=120, bounded_top=3) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    prob = np.sort(rng.uniform(0.01, 0.6, n))[::-1]
    prob[:bounded_top] = 0.999
    bound = np.array([None] * n, dtype=object)
    bound[:bounded_top] = "over"
    frame = pd.DataFrame({
        "client_id": [f"c{i:04d}" for i in range(n)], "unit": np.where(np.arange(n) % 2 == 0, "hyvinkää", "kerava"),
        "municipality": "Hyvinkää", "probability": prob, "rank": np.arange(1, n + 1, dtype=np.int64),
        "percentile": 100.0 * (1 - np.arange(n) / n), "segment": pd.array(["s"] * n, dtype="string"),
        **{f"reasons_{lang}": pd.array(["a (raises risk) | b (raises risk)"] * n, dtype="string")
           for lang in ("fi", "sv", "en")},
        "model_name": "high_use", "model_version": "1", "run_id": "r", "data_digest": "d",
        "as_of": pd.Timestamp("2025-01-01"),
        "probability_bound": pd.array(bound, dtype="string"),
        "probability_limit": np.where(np.arange(n) < bounded_top, 0.9, np.nan),
        "bin_observed_rate": np.where(np.arange(n) < bounded_top, 0.97, np.nan),
        "intensive_ongoing": np.arange(n) % 4 == 0, "prior_high_use": np.arange(n) % 3 == 0,
        "reason_types": pd.array(["change|level"] * n, dtype="string"),
    })
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    return RiskList.validate(frame)


@pytest.mark.parametrize("lang, words", [
    ("fi", ("yli 90 %", "Kapasiteetin suunnitteluun", "Listalla: kaikki alueen asukkaat", "tehostetuissa palveluissa")),
    ("sv", ("över 90 %", "För kapacitetsplanering", "På listan: alla invånare", "i intensiva tjänster")),
    ("en", ("over 90 %", "For capacity planning", "On this list: every resident", "in intensive services")),
])
def test_reports_state_the_cohort_flag_clients_and_never_print_a_capped_value(tmp_path, lang, words):
    risk = _risklist()
    risk.attrs = {"sote_list": list_description("high_use", HIGH_USE)}
    risk.to_parquet(tmp_path / "risk.parquet", index=False)
    back = read_risklist(tmp_path / "risk.parquet")
    assert back.attrs["sote_list"]["cohort"][lang] == cohort_text(HIGH_USE, lang)  # the Parquet metadata kept it
    paths = write_report(tmp_path / "risk.parquet", tmp_path / f"r_{lang}", unit="hyvinkää", top=20, lang=lang)
    html = paths["html"].read_text(encoding="utf-8")
    for word in words:
        assert word in html
    assert "99.9" not in html and "0.999" not in html
    csv = pd.read_csv(paths["csv"])
    view = unit_view(back, "hyvinkää", 20)
    assert csv["intensive_ongoing"].tolist() == view["intensive_ongoing"].tolist()
    assert csv["prior_high_use"].tolist() == view["prior_high_use"].tolist()
    assert csv["probability_shown"].iloc[0].startswith(words[0]) and pd.isna(csv["probability"].iloc[0])
    assert csv["probability"].iloc[5] == pytest.approx(view["probability"].iloc[5])
    assert html.count("class='flag'") == int(view["intensive_ongoing"].sum() + view["prior_high_use"].sum())


def test_a_csv_list_keeps_its_flags_and_the_sidecar_gives_the_cohort(tmp_path):
    risk = _risklist()
    risk.to_csv(tmp_path / "risk.csv", index=False)
    about = list_description("rising_high_use", RISING)
    (tmp_path / "risk.csv.json").write_text(json.dumps(about, ensure_ascii=False), encoding="utf-8")
    back = read_risklist(tmp_path / "risk.csv")
    assert back["intensive_ongoing"].dtype == bool and back["intensive_ongoing"].tolist() == \
        risk["intensive_ongoing"].tolist()
    assert back["probability_bound"].iloc[0] == "over" and pd.isna(back["probability_bound"].iloc[10])
    assert list_about(back, tmp_path / "risk.csv")["cohort"]["sv"] == cohort_text(RISING, "sv")
    # without metadata or sidecar: from the declared target the list's model is named after
    assert list_about(back)["cohort"]["en"] == cohort_text(HIGH_USE, "en")
    html = write_report(tmp_path / "risk.csv", tmp_path / "r", unit="kerava", top=5, lang="en")["html"].read_text()
    assert "Rising-risk list" in html and cohort_text(RISING, "en") in html
    # a list written before these columns existed still reads and reports (plain numbers, no flag column)
    old = risk.drop(columns=["probability_bound", "probability_limit", "bin_observed_rate", "intensive_ongoing",
                             "prior_high_use", "reason_types"])
    old.iloc[3:].to_parquet(tmp_path / "old.parquet", index=False)
    frame = export_frame(unit_view(read_risklist(tmp_path / "old.parquet"), None, 5), "en")
    assert "intensive_ongoing" not in frame and frame["probability_shown"].iloc[0] == \
        f"{100 * old['probability'].iloc[3]:.1f} %"


def test_reason_type_share_on_a_constructed_example():
    dictionary = pd.DataFrame({"feature": ["age", "cost_total_365d", "emergency_change_6m", "new_diagnoses",
                                           "sex"],
                               "reason_type": ["demographic", "level", "change", "change", "demographic"]})
    contrib = pd.DataFrame([[0.9, 0.5, 0.3, 0.1, -0.2],    # age, cost, emergency change
                            [0.1, 0.0, 0.8, 0.7, 0.05],    # emergency change, new diagnoses, age
                            [-0.1, 0.4, -0.3, -0.2, -0.5],  # cost only (the others lower the risk)
                            [0.2, 0.2, 0.0, 0.0, 0.0]],     # age, cost (tie: the lower column first)
                           columns=dictionary["feature"])
    feats = reason_features(contrib, top=3)
    assert feats == [["age", "cost_total_365d", "emergency_change_6m"],
                     ["emergency_change_6m", "new_diagnoses", "age"],
                     ["cost_total_365d"], ["age", "cost_total_365d"]]
    mix = reason_type_mix(feats, dictionary, top=3)
    # 9 reasons: change 3, level 3, demographic 3; 2 of 4 clients have a change reason
    assert mix == {"clients": 4, "reasons": 9, "change": 3 / 9, "level": 3 / 9, "demographic": 3 / 9,
                   "clients_with_change": 0.5}
    top2 = reason_type_mix(feats, dictionary, top=2)
    assert top2["reasons"] == 7 and top2["change"] == pytest.approx(2 / 7) and top2["demographic"] == 2 / 7
    assert np.isnan(reason_type_mix([], dictionary)["change"])
    # the top 5 % of a list: summary of flags and reason types
    risk = _risklist(n=80)
    summary = top_summary(risk, feats, dictionary)
    assert summary["clients"] == 4 and summary["intensive_ongoing"] == 0.25  # ranks 1-4: row 0 of every 4th
    assert summary["prior_high_use"] == 0.5 and summary["either"] == 0.5 and summary["reason_types"] == mix


def test_calibration_at_the_top_and_top_rows():
    p = np.r_[np.full(20, 0.9), np.full(30, 0.5), np.full(950, 0.05)]
    y = np.r_[np.ones(16), np.zeros(4), np.ones(10), np.zeros(20), np.r_[np.ones(50), np.zeros(900)]]
    table = calibration_at_top(y, p).set_index("share")
    assert table.loc[0.02, "n"] == 20 and table.loc[0.02, "observed"] == 0.8
    assert table.loc[0.02, "gap"] == pytest.approx(0.1) and bool(table.loc[0.02, "small_cell"])  # 4 without
    assert table.loc[0.05, "n"] == 50 and table.loc[0.05, "predicted"] == pytest.approx((18 + 15) / 50)
    assert table.loc[0.05, "observed"] == pytest.approx(26 / 50) and not table.loc[0.05, "small_cell"]
    rows = top_share_rows(np.array([0.1, 0.5, 0.5, 0.9]), 0.5, ids=np.array(["d", "c", "b", "a"]))
    assert rows.tolist() == [3, 2]  # 0.9 first, then the tie at 0.5 broken by id ("b" before "c")


def test_a_score_in_the_gap_below_the_top_bin_is_a_boundary_value_too():
    # isotonic interpolates between bins: a score between the second bin's highest and the top bin's lowest
    # held-out score got 0.996 in a demo list, printed as a measured "99.6 %"
    scores = np.r_[np.linspace(0.0, 0.4, 300), np.linspace(0.6, 0.7, 300), np.linspace(0.9, 1.0, 300)]
    y = np.r_[np.zeros(300, int), np.arange(300) % 2, np.ones(300, int)]
    cal = ProbabilityCalibrator("isotonic").fit(scores, y)
    gap_high = (cal.bins_["upper"].iloc[-2] + cal.bins_["lower"].iloc[-1]) / 2
    gap_low = (cal.bins_["upper"].iloc[0] + cal.bins_["lower"].iloc[1]) / 2
    p = cal.predict(np.array([gap_high, gap_low]))
    assert 0.5 < p[0] < 0.999 and 0.001 < p[1] < 0.5  # interpolated toward the capped ends
    assert cal.bounds(np.array([gap_high, gap_low, 0.65])).tolist() == [OVER, UNDER, MEASURED]
