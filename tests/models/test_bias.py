"""Label bias: need at equal predicted risk across groups (models/bias.py), its MLflow log and the card section.

Unit tests use hand-made frames whose figures are known exactly. The county tests inject the bias the check
is for into the shared 3,000-client county (seed 5): 70 % of Mäntsälä's recorded events dropped, diagnoses,
assessments and deaths kept (features/synth/inject.py), scored by the shared ``trained_3000`` champion,
and the check must flag Mäntsälä; the same county without the injection must not. Language has
no power there (38 Swedish speakers at the validation date, a small cell), nor on a 20,000-client
Keski-Uusimaa county (203 Swedish speakers: 70 % of their use suppressed gave × 1.19 chronic conditions,
interval across zero): the language case runs in a slow test on a 6,000-client Itä-Uusimaa county, where
29 % speak Swedish.
"""
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.config.loader import ConfigError
from models.bias import LabelBiasConfig, label_bias, load_bias_config, log_label_bias, score_bins
from models.card import bias_section, checklist, model_card

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")

CFG = LabelBiasConfig(bins=2, groupings=("grp",), indicators=("chronic_conditions",), n_boot=50)


def _frame(cells):
    """Rows from (group, score, chronic_conditions, count) cells; client ids c0000..."""
    rows = [(g, s, x) for g, s, x, k in cells for _ in range(k)]
    frame = pd.DataFrame(rows, columns=["grp", "score", "chronic_conditions"])
    frame.insert(0, "client_id", [f"c{i:04d}" for i in range(len(frame))])
    return frame


#: Low-score bin: A has 2 conditions, B 1; high bin: A 4, B 3. A sits mostly in the low bin.
KNOWN = [("A", 0.1, 2, 50), ("B", 0.1, 1, 50), ("A", 0.9, 4, 20), ("B", 0.9, 3, 80)]
#: A small group (30 clients) in the high bin with B's values there, so A's rest keeps the same means.
SMALL = [("C", 0.9, 3, 30)]


def test_known_numbers_group_against_the_rest_at_equal_score():
    frame = _frame(KNOWN)
    result = label_bias(frame, frame["score"], CFG)
    t = result.table.set_index("group")
    # A: own mean over its bins (50 x 2 + 20 x 4) / 70; the rest (B) with A's bin weights (50 x 1 + 20 x 3) / 70
    assert t.loc["A", "group_mean"] == pytest.approx(180 / 70)
    assert t.loc["A", "expected"] == pytest.approx(110 / 70)
    assert t.loc["A", "difference"] == pytest.approx(1.0)
    assert t.loc["A", "ratio"] == pytest.approx(180 / 110)
    assert t.loc["A", "effect"] == pytest.approx(1.0 / frame["chronic_conditions"].std(ddof=0))
    # every resample has the same within-bin values: the interval is the point
    assert (t.loc["A", "ci_low"], t.loc["A", "ci_high"]) == pytest.approx((1.0, 1.0))
    assert t.loc["B", "difference"] == pytest.approx(-1.0)
    assert t.loc["B", "expected"] == pytest.approx((50 * 2 + 80 * 4) / 130)
    assert (t.loc["A", "n"], t.loc["A", "n_rest"]) == (70, 130)
    assert t["flagged"].to_dict() == {"A": True, "B": False}  # only higher need is flagged
    assert result.flagged["group"].tolist() == ["A"]
    assert result.clients == 200 and result.skipped == ()
    assert any(line.startswith("FLAGGED grp = A: chronic_conditions 2.571 against 1.571") for line in result.summary())


def test_higher_raw_need_from_higher_scores_is_not_flagged():
    # A's raw mean (3.4) is far above B's (1.6), but only because A sits in the high bin: at equal score no gap
    frame = _frame([("A", 0.1, 1, 20), ("B", 0.1, 1, 80), ("A", 0.9, 4, 80), ("B", 0.9, 4, 20)])
    t = label_bias(frame, frame["score"], CFG).table.set_index("group")
    assert frame.groupby("grp")["chronic_conditions"].mean().to_dict() == {"A": 3.4, "B": 1.6}
    assert t.loc["A", "difference"] == pytest.approx(0.0)
    assert t.loc["A", "ratio"] == pytest.approx(1.0)
    assert not t["flagged"].any()


def test_threshold_is_the_configured_ratio():
    # A's need is 1.15 times B's at equal score, with no noise: flagged at min_ratio 1.1, not at 1.2
    frame = _frame([("A", 0.1, 2.3, 60), ("B", 0.1, 2.0, 60), ("A", 0.9, 4.6, 60), ("B", 0.9, 4.0, 60)])
    loose = label_bias(frame, frame["score"], LabelBiasConfig(**{**CFG.__dict__, "min_ratio": 1.1}))
    strict = label_bias(frame, frame["score"], CFG)
    assert loose.table.set_index("group").loc["A", "ratio"] == pytest.approx(1.15)
    assert loose.flagged["group"].tolist() == ["A"]
    assert strict.flagged.empty


def test_small_cells_are_not_judged_and_never_disclosed():
    # C has 30 clients (under 50): not judged, its figures blanked in what leaves; deaths: A has 3 (under 5)
    frame = _frame(KNOWN + SMALL)
    frame["died_in_horizon"] = False
    frame.loc[frame.index[:3], "died_in_horizon"] = True  # three of A's
    for group, deaths in (("B", 10), ("C", 5)):
        frame.loc[frame["grp"].eq(group).to_numpy().nonzero()[0][:deaths], "died_in_horizon"] = True
    cfg = LabelBiasConfig(**{**CFG.__dict__, "indicators": ("chronic_conditions", "died_in_horizon")})
    result = label_bias(frame, frame["score"], cfg)
    t = result.table.set_index(["group", "indicator"])
    assert t.loc[("C", "chronic_conditions"), "small_cell"] and not t.loc[("C", "chronic_conditions"), "flagged"]
    assert t.loc[("C", "chronic_conditions"), "ratio"] == pytest.approx(3 / 3.2)  # the analysts' table keeps it ...
    assert t.loc[("A", "died_in_horizon"), "events"] == 3 and t.loc[("A", "died_in_horizon"), "small_cell"]
    assert not t.loc[("B", "died_in_horizon"), "small_cell"]  # 10 deaths and 120 survivors; the rest 8 and 92
    out = result.disclosed().set_index(["group", "indicator"])
    figures = ["n", "n_rest", "events", "group_mean", "expected", "difference", "ci_low", "ci_high", "ratio", "effect"]
    assert out.loc[("C", "chronic_conditions"), figures].isna().all()  # ... what leaves does not
    assert out.loc[("A", "died_in_horizon"), figures].isna().all()
    assert out.loc[("A", "chronic_conditions"), "ratio"] == pytest.approx(180 / 110)
    assert "C" not in " ".join(result.summary())


def test_rai_scales_are_compared_among_the_assessed_only():
    frame = _frame(KNOWN)
    # half of each cell assessed; assessed A clients score 1 point higher than assessed B in the same bin
    frame["rai_adl_h_last"] = np.where(frame["grp"].eq("A"), 3.0, 2.0)
    frame.loc[frame.index % 2 == 1, "rai_adl_h_last"] = np.nan
    cfg = LabelBiasConfig(**{**CFG.__dict__, "indicators": ("rai_adl_h_last", "charlson_index")})
    result = label_bias(frame, frame["score"], cfg)
    t = result.table.set_index("group")
    assert (t.loc["A", "n"], t.loc["A", "n_rest"]) == (35, 65)  # assessed only: A is a small cell here
    assert t.loc["B", "difference"] == pytest.approx(-1.0)
    assert result.skipped == ("charlson_index",)


def test_score_bins_by_rank_and_ties_together():
    assert score_bins([0.5, 0.1, 0.9, 0.3], 2).tolist() == [1, 0, 1, 0]
    assert score_bins([0.2, 0.2, 0.2, 0.9], 2).tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="missing"):
        score_bins([0.1, np.nan], 2)


def test_age_band_comes_from_age_and_bad_input_is_refused():
    frame = _frame(KNOWN).assign(age=lambda d: np.where(d["grp"].eq("A"), 80, 40))
    cfg = LabelBiasConfig(**{**CFG.__dict__, "groupings": ("age_band",)})
    t = label_bias(frame, frame["score"], cfg).table
    assert set(t["group"]) == {"75+", "30-64"}
    with pytest.raises(ValueError, match="3 scores for 200 rows"):
        label_bias(frame, [0.1, 0.2, 0.3], cfg)
    with pytest.raises(ValueError, match="none of the groupings"):
        label_bias(frame[["score", "chronic_conditions"]], frame["score"], CFG)


def test_config_is_read_with_the_loader(tmp_path):
    packaged = load_bias_config()
    assert packaged == LabelBiasConfig()  # the packaged YAML states the defaults
    assert packaged.min_ratio == 1.2 and packaged.bins == 10 and "died_in_horizon" in packaged.indicators
    path = tmp_path / "bias.yaml"
    path.write_text("min_ratio: 1.5\nn_boot: 100\n")
    assert load_bias_config(path).min_ratio == 1.5
    path.write_text("min_ratio: 0.9\n")
    with pytest.raises(ConfigError, match=r"bias.yaml: min_ratio: expected a value > 1"):
        load_bias_config(path)
    path.write_text("threshold: 1.5\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['threshold'\]"):
        label_bias(_frame(KNOWN), _frame(KNOWN)["score"], path)


def _artifact_text(uri: str, run_id: str) -> str:
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    parts = [str(run.data.params), str(run.data.metrics), str(run.data.tags)]
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, tracking_uri=uri))
    parts += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def store(trained_3000):
    """The shared county's MLflow store for this module's logging tests (creating a store costs 5-10 s of CPU)."""
    return trained_3000.uri


def test_log_label_bias_aggregates_only(store):
    from segmentation.tracking import use_experiment

    frame = _frame(KNOWN + SMALL)
    result = label_bias(frame, frame["score"], CFG)
    uri = store
    with pytest.raises(RuntimeError, match="active MLflow run"):
        log_label_bias(result)
    use_experiment("bias-test", uri)
    with mlflow.start_run() as run:
        logged = log_label_bias(result)
    assert logged["label_bias_flags"] == 1 and logged["label_bias_judged"] == 2
    assert logged["label_bias_max_ratio"] == pytest.approx(180 / 110)  # C (a small cell) does not count
    data = mlflow.MlflowClient(tracking_uri=uri).get_run(run.info.run_id).data
    assert data.tags["label_bias"] == "flagged" and data.params["label_bias_min_ratio"] == "1.2"
    csv = pd.read_csv(Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, tracking_uri=uri))
                      / "evaluation" / "label_bias.csv")
    assert csv.loc[csv["group"].eq("C"), ["n", "ratio", "group_mean"]].isna().all().all()
    text = _artifact_text(uri, run.info.run_id)
    assert not any(cid in text for cid in frame["client_id"])


def _card(**extra):
    metrics = pd.DataFrame([{"model": "lightgbm", "auroc": 0.8, "auprc": 0.4}])
    groups = pd.DataFrame({"grouping": ["sex"], "group": ["F"], "auroc": [0.8], "auroc_gap": [0.0],
                           "mean_predicted": [0.1], "observed_rate": [0.1], "gap_flag": [False]})
    importance = pd.DataFrame({"feature": ["age"], "mean_abs_shap": [0.5]})
    return model_card(target="high_use", description="d", cohort="everyone", train_as_of="2023-01-01",
                      valid_as_of="2024-01-01", horizon_days=365, n_train=200, n_valid=200, metrics=metrics,
                      groups=groups, importance=importance, params={"seed": 1}, gate="passed", **extra)


def test_card_has_the_bias_summary_and_the_checklist():
    frame = _frame(KNOWN + SMALL)
    card = _card(bias=label_bias(frame, frame["score"], CFG))
    assert "## Label bias: need at equal predicted risk" in card
    assert "**Flagged (1):**" in card
    assert "- grp = A, chronic_conditions: 2.571 against 1.571 for the rest at the same scores (× 1.64" in card
    assert "2 of 3 comparisons judged" in card and "grp = C" not in card and ", C," not in card
    assert "## Reporting checklist (TRIPOD+AI, short)" in card
    assert "| 14 | label bias (need at equal predicted risk) | yes | label bias section |" in card
    without = _card()
    assert "Not run for this model" in without
    assert "| 14 | label bias (need at equal predicted risk) | no | label bias section |" in without
    assert "performance table (top not given)" in without
    assert bias_section(None)[0] == "## Label bias: need at equal predicted risk"
    assert len([r for r in checklist(gate=True, top=True, bias=True) if r.startswith("| ") and "yes" in r]) == 13



def test_a_75_plus_flag_is_explained_not_raised(store):
    """Older people have more need at equal score by construction of a use label: flagged, counted, explained."""
    from segmentation.tracking import use_experiment

    frame = _frame(KNOWN).rename(columns={"grp": "age_band"})
    frame["age_band"] = frame["age_band"].map({"A": "75+", "B": "30-64"})
    result = label_bias(frame, frame["score"], LabelBiasConfig(**{**CFG.__dict__, "groupings": ("age_band",)}))
    assert result.flagged["group"].tolist() == ["75+"] and result.unexplained.empty
    assert any(line.startswith("FLAGGED [explained by the label, see the model card] age_band = 75+")
               for line in result.summary())
    card = _card(bias=result)
    assert "**No group flagged beyond what the label explains (below).**" in card and "**Flagged (" not in card
    assert "**Flagged, explained by the label (age_band = 75+):** at the same predicted risk" in card
    assert "- age_band = 75+, chronic_conditions: 2.571 against 1.571" in card
    use_experiment("bias-test", store)
    with mlflow.start_run() as run:
        logged = log_label_bias(result)
    assert logged["label_bias_flags"] == 1 and logged["label_bias_flags_unexplained"] == 0
    assert mlflow.MlflowClient(tracking_uri=store).get_run(run.info.run_id).data.tags["label_bias"] == "explained"


def test_card_and_log_of_a_check_with_no_flag():
    """Nothing flagged (the demo's smaller targets): the card says so; the explained/alarm split keeps its columns."""
    frame = _frame(KNOWN)
    result = label_bias(frame, frame["score"], LabelBiasConfig(**{**CFG.__dict__, "min_ratio": 2.0}))
    assert result.flagged.empty and result.unexplained.empty
    assert list(result.unexplained.columns) == list(result.table.columns)
    card = _card(bias=result)
    assert "**No group flagged.**" in card and "explained by the label" not in card


def test_card_gives_the_corrected_oracle_limit():
    card = _card(oracle={"auroc": 0.78, "auroc_half": 0.76, "auroc_limit": 0.80})
    assert ("**Oracle (synthetic data):** the generator's true probabilities rank with AUROC 0.780 as estimated, "
            "0.800 corrected") in card and "the model reaches 1.000 of it" in card
    assert "Oracle (synthetic data)" not in _card(oracle={"auroc": 0.78, "auroc_half": float("nan"),
                                                          "auroc_limit": float("nan")})

# ------------------------------------------------------------------ on the synthetic county

VALID = "2024-01-01"


def _validation(tables):
    from features.targets.labels import build_training_set

    return build_training_set(tables, [VALID], "high_use").reset_index(drop=True)


@pytest.fixture(scope="module")
def control(trained_3000):
    """The shared county and its champion (no injection): the validation cohort and its scores."""
    validation = _validation(trained_3000.tables)
    return validation, trained_3000.result.model.predict_proba(validation)[:, 1]


def _train_and_score(path):
    """high_use fitted as training does (models.train.fit_model) on 2023-01-01; scores of 2024-01-01."""
    from features.contract.load import load_tables
    from features.histories.dictionary import feature_dictionary
    from features.histories.spec import load_spec
    from features.targets.labels import build_training_set
    from models.train import TrainConfig, fit_model

    tables = load_tables(path)
    both = build_training_set(tables, ["2023-01-01", VALID], "high_use")
    training = both[both["as_of"] == pd.Timestamp("2023-01-01")].reset_index(drop=True)
    validation = both[both["as_of"] == pd.Timestamp(VALID)].reset_index(drop=True)
    spec = load_spec(None)
    model = fit_model(training, TrainConfig(target="high_use"), spec, "", feature_dictionary(spec))
    return validation, model.predict_proba(validation)[:, 1]


@pytest.fixture(scope="module")
def injected(trained_3000, tmp_path_factory):
    """The shared county with 70 % of Mäntsälä's events dropped, scored by the shared county's champion.

    The champion was trained on the county before the injection: a deployed model scoring a county where
    one group's use goes unrecorded (history and horizon alike). Refitting on the injected county gives
    nearly the same figures (chronic conditions x 1.44 against x 1.42, Charlson x 1.65 against x 1.59, both
    flagged) for 13 s more of CPU; the slow Swedish-speaker test below refits.
    """
    from features.contract.load import load_tables
    from features.synth.inject import suppress_group_use

    out = tmp_path_factory.mktemp("bias") / "county_mantsala"
    manifest = suppress_group_use(trained_3000.data, out, column="municipality", value="Mäntsälä", share=0.7,
                                  seed=1)
    validation = _validation(load_tables(out))
    return validation, trained_3000.result.model.predict_proba(validation)[:, 1], manifest


def _rows(result, grouping, group):
    t = result.table
    return t[(t["grouping"] == grouping) & (t["group"] == group)].set_index("indicator")


@pytest.fixture(scope="module")
def biased(injected):
    return label_bias(*injected[:2])


def test_injected_suppression_is_flagged_and_the_control_is_not(control, injected, biased):
    base = label_bias(*control)
    manifest = injected[2]
    assert manifest["injection"]["events_removed"] > 10_000
    hit, before = _rows(biased, "municipality", "Mäntsälä"), _rows(base, "municipality", "Mäntsälä")
    # injected: at equal predicted risk Mäntsälä's clients have clearly more conditions than the rest
    assert hit.loc["chronic_conditions", "flagged"] and hit.loc["charlson_index", "flagged"]
    assert hit.loc["chronic_conditions", "ratio"] > 1.3 and hit.loc["charlson_index", "ratio"] > 1.4
    assert hit.loc["chronic_conditions", "ci_low"] > 0.05
    # negative control: the same county without the injection
    assert not before["flagged"].any()
    # below the injection's bar (chance alone on ~300 residents: 1.16 and 1.24 on the county of issue 18's calibration)
    assert before.loc["chronic_conditions", "ratio"] < 1.3 and before.loc["charlson_index", "ratio"] < 1.3
    # no other municipality, language or sex is flagged, with or without the injection
    for result in (base, biased):
        others = result.flagged[result.flagged["grouping"] != "age_band"]
        assert set(others["group"]) <= ({"Mäntsälä"} if result is biased else set()), others
    # the language groups other than Finnish are small cells or unflagged here (38 Swedish speakers)
    assert _rows(base, "language", "sv")["small_cell"].all()


def test_log_of_a_county_check_holds_no_client_id(injected, biased, store):
    from segmentation.tracking import use_experiment

    validation, uri = injected[0], store
    use_experiment("bias-county", uri)
    with mlflow.start_run() as run:
        logged = log_label_bias(biased)
    assert logged["label_bias_flags"] >= 2
    text = _artifact_text(uri, run.info.run_id)
    assert "Mäntsälä" in text
    assert not any(cid in text for cid in validation["client_id"].astype(str))


@pytest.mark.slow
def test_language_suppression_is_flagged_where_many_speak_swedish(tmp_path_factory):
    """Itä-Uusimaa preset (29 % Swedish-speaking), 6,000 clients: half of the Swedish speakers' use suppressed."""
    from features.synth import SynthConfig, generate_county
    from features.synth.inject import suppress_group_use

    root = tmp_path_factory.mktemp("bias_language")
    generate_county(root / "county", SynthConfig(clients=6_000, seed=7, truth_reps=1, workers=1,
                                                 county="ita-uusimaa"))
    suppress_group_use(root / "county", root / "county_sv", column="language", value="sv", share=0.5, seed=1)
    base, biased = label_bias(*_train_and_score(root / "county")), label_bias(*_train_and_score(root / "county_sv"))
    hit, before = _rows(biased, "language", "sv"), _rows(base, "language", "sv")
    assert hit.loc["chronic_conditions", "n"] > 1_500
    assert hit.loc["chronic_conditions", "flagged"] and hit.loc["charlson_index", "flagged"]
    assert hit.loc["chronic_conditions", "ratio"] > 1.4 and hit.loc["chronic_conditions", "ci_low"] > 0.1
    assert not before["flagged"].any()
    assert before.loc["chronic_conditions", "ratio"] == pytest.approx(1.0, abs=0.2)  # 1.16 since issue 18's calibration
    for result in (base, biased):
        others = result.flagged[result.flagged["grouping"] != "age_band"]
        assert set(others["group"]) <= ({"sv"} if result is biased else set()), others
